//! Replays every checked-in fuzz corpus file through its target's function,
//! so that CI catches regressions without running the fuzzer.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::path::Path;

fn replay(target: &str, f: fn(&[u8])) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz/corpus")
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
fn topic_pattern_corpus() {
    replay("topic_pattern", switchboard_model::fuzzing::topic_pattern);
}

#[test]
fn template_corpus() {
    replay("template", switchboard_router::fuzzing::template);
}

#[test]
fn pattern_index_corpus() {
    replay("pattern_index", switchboard_router::fuzzing::index);
}

#[test]
fn config_corpus() {
    replay("config", switchboard::fuzzing::config);
}

#[test]
fn coap_exchange_corpus() {
    replay("coap_exchange", switchboard_coap::fuzzing::exchange);
}

#[test]
fn coap_blockwise_corpus() {
    replay("coap_blockwise", switchboard_coap::fuzzing::blockwise);
}
