#![no_main]
//! Fuzz target: switchboard_codec::fuzzing::json_encode.
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    switchboard_codec::fuzzing::json_encode(data);
});
