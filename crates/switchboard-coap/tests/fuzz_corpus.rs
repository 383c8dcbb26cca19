//! Replays the checked-in fuzz corpora through the fuzz target bodies.
#![allow(clippy::unwrap_used)]

use std::path::Path;

fn replay(dir: &str, f: fn(&[u8])) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../fuzz/corpus")
        .join(dir);
    let mut n = 0;
    for e in std::fs::read_dir(&root).unwrap() {
        let data = std::fs::read(e.unwrap().path()).unwrap();
        f(&data);
        n += 1;
    }
    assert!(n > 0, "empty corpus {}", root.display());
}

#[test]
fn coap_exchange_corpus() {
    replay("coap_exchange", switchboard_coap::fuzzing::exchange);
}

#[test]
fn coap_blockwise_corpus() {
    replay("coap_blockwise", switchboard_coap::fuzzing::blockwise);
}

#[test]
fn coap_exchange_random_inputs() {
    let mut s: u64 = 0x2545_f491_4f6c_dd1d;
    for _ in 0..3000 {
        let len = 3 + (s % 400) as usize;
        let data: Vec<u8> = (0..len)
            .map(|_| {
                s ^= s << 13;
                s ^= s >> 7;
                s ^= s << 17;
                s as u8
            })
            .collect();
        switchboard_coap::fuzzing::exchange(&data);
        switchboard_coap::fuzzing::blockwise(&data);
    }
}
