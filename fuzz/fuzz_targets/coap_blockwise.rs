//! CoAP Block1 reassembly fed arbitrary blocks.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    switchboard_coap::fuzzing::blockwise(data);
});
