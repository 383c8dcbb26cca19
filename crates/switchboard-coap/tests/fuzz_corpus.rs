//! Replays the checked-in fuzz corpora through the fuzz target bodies.
#![allow(clippy::unwrap_used)]

use std::path::Path;

fn replay(target: &str, f: fn(&[u8])) {
    switchboard_model::fuzzing::replay_corpus(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("../.."),
        target,
        f,
    );
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
