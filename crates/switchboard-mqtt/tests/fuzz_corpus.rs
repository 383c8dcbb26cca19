//! Replays every checked-in corpus file of this crate's fuzz targets through
//! the same functions, so CI catches regressions without the fuzzer.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::path::Path;

fn replay(target: &str, f: fn(&[u8])) {
    switchboard_model::fuzzing::replay_corpus(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("../.."),
        target,
        f,
    );
}

#[test]
fn mqtt_packets_corpus() {
    replay("mqtt_packets", switchboard_mqtt::fuzzing::mqtt_packets);
}

#[test]
fn mqtt_config_corpus() {
    replay("mqtt_config", switchboard_mqtt::fuzzing::mqtt_config);
}

/// Every prefix of every file of a target's corpus (truncation at each byte).
fn replay_truncated(target: &str, f: fn(&[u8])) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../fuzz/corpus")
        .join(target);
    for entry in std::fs::read_dir(&dir).unwrap() {
        let data = std::fs::read(entry.unwrap().path()).unwrap();
        for n in 0..=data.len() {
            f(&data[..n]);
        }
    }
}

#[test]
fn mqtt_packets_truncated() {
    replay_truncated("mqtt_packets", switchboard_mqtt::fuzzing::mqtt_packets);
}

#[test]
fn mqtt_client_inbound_corpus() {
    replay(
        "mqtt_client_inbound",
        switchboard_mqtt::fuzzing::mqtt_client_inbound,
    );
}

#[test]
fn mqtt_client_inbound_truncated() {
    replay_truncated(
        "mqtt_client_inbound",
        switchboard_mqtt::fuzzing::mqtt_client_inbound,
    );
}
