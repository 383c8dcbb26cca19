//! Replays every checked-in fuzz corpus file of the facade, model, router and
//! HTTP targets through its target's function, so that CI catches
//! regressions without running the fuzzer. Each adapter crate replays its own
//! corpora (`crates/*/tests/fuzz_corpus.rs`).

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::path::Path;

fn replay(target: &str, f: fn(&[u8])) {
    switchboard_model::fuzzing::replay_corpus(Path::new(env!("CARGO_MANIFEST_DIR")), target, f);
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
fn ws_ops_corpus() {
    replay("ws_ops", switchboard_http::fuzzing::ws_ops);
}

#[test]
fn http_paths_corpus() {
    replay("http_paths", switchboard_http::fuzzing::http_paths);
}
