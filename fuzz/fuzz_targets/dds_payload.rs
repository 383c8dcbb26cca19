#![no_main]
//! Fuzz target: switchboard_dds::fuzzing::dds_payload.
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    switchboard_dds::fuzzing::dds_payload(data);
});
