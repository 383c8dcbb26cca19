//! The CoAP exchange core fed arbitrary datagrams and time steps.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    switchboard_coap::fuzzing::exchange(data);
});
