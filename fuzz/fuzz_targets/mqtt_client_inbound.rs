#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| switchboard_mqtt::fuzzing::mqtt_client_inbound(data));
