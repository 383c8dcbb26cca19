//! Replays every file of the DDS fuzz corpus (fuzz/corpus/dds_payload)
//! through the fuzz target's function, so CI catches regressions without
//! the fuzzer. Opens no participant.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;

#[test]
fn dds_payload_corpus() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/corpus/dds_payload");
    let mut n = 0;
    for e in std::fs::read_dir(&dir).unwrap() {
        let data = std::fs::read(e.unwrap().path()).unwrap();
        switchboard_dds::fuzzing::dds_payload(&data);
        n += 1;
    }
    assert!(n > 0, "empty corpus {}", dir.display());
}
