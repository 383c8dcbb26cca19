#![no_main]
//! Fuzz target: switchboard_codec::fuzzing::idl_parser.
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    switchboard_codec::fuzzing::idl_parser(data);
});
