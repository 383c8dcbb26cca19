//! Replays every checked-in corpus file of this crate's fuzz targets through
//! the same functions, so CI catches regressions without the fuzzer.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::path::Path;

fn replay(target: &str, f: fn(&[u8])) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../fuzz/corpus")
        .join(target);
    let mut n = 0;
    for entry in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        let path = entry.unwrap().path();
        if path.is_file() {
            f(&std::fs::read(&path).unwrap());
            n += 1;
        }
    }
    assert!(n > 0, "empty corpus {}", dir.display());
}

#[test]
fn mqtt_packets_corpus() {
    replay("mqtt_packets", switchboard_mqtt::fuzzing::mqtt_packets);
}

#[test]
fn mqtt_config_corpus() {
    replay("mqtt_config", switchboard_mqtt::fuzzing::mqtt_config);
}

/// Every prefix of every packet corpus file (truncation at each byte).
#[test]
fn mqtt_packets_truncated() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/corpus/mqtt_packets");
    for entry in std::fs::read_dir(&dir).unwrap() {
        let data = std::fs::read(entry.unwrap().path()).unwrap();
        for n in 0..=data.len() {
            switchboard_mqtt::fuzzing::mqtt_packets(&data[..n]);
        }
    }
}
