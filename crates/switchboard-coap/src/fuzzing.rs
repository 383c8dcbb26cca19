//! Bodies of the fuzz targets (`fuzz/fuzz_targets/coap_*.rs`), public so the
//! fuzz crate and the corpus replay test call the same code.
#![doc(hidden)]

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use switchboard_model::{Format, Message, Topic};

use crate::config::Config;
use crate::core::{Core, Event, Store};
use crate::upload::Uploads;
use crate::wire::Block;

/// An in-memory [`Store`] that applies the core's events.
#[derive(Debug, Default)]
pub struct MemStore {
    /// Values by topic.
    pub values: HashMap<Topic, Message>,
}

impl Store for MemStore {
    fn latest(&self, topic: &Topic) -> Option<Message> {
        self.values.get(topic).cloned()
    }
    fn topics(&self) -> Vec<(Topic, Format)> {
        self.values
            .iter()
            .map(|(t, m)| (t.clone(), m.format.clone()))
            .collect()
    }
}

impl MemStore {
    /// Applies the core's pending events; returns them.
    pub fn apply(&mut self, core: &mut Core) -> Vec<Event> {
        let mut out = Vec::new();
        while let Some(e) = core.poll_event() {
            match &e {
                Event::Publish {
                    topic,
                    payload,
                    format,
                    ..
                } => {
                    let m = Message::new("coap", topic.clone(), payload.clone())
                        .with_format(format.clone());
                    if self.values.len() < 1000 || self.values.contains_key(topic) {
                        self.values.insert(topic.clone(), m);
                    }
                }
                Event::Forget { topic } => {
                    self.values.remove(topic);
                }
                Event::Delivered { .. } => {}
            }
            out.push(e);
        }
        out
    }
}

/// Small limits so that the fuzzer reaches them.
pub fn fuzz_config() -> Config {
    let mut c = Config {
        max_observers: 8,
        max_observers_per_resource: 4,
        dedup_capacity: 64,
        max_uploads: 4,
        block_size: switchboard_model::units::ByteSize(64),
        max_payload: switchboard_model::units::ByteSize(4096),
        ..Config::default()
    };
    c.mount.push(crate::config::Mount {
        prefix: "dev".into(),
        url: "coap://127.0.0.1:5999".into(),
        observe: vec!["state".into()],
    });
    c
}

/// The exchange core fed arbitrary input: each record is
/// `[peer (1 byte), time step (1 byte), len (1 byte), datagram...]`; peer
/// 0xff is the mounted device, 0xfe injects a delivery. Never panics; state
/// stays bounded.
pub fn exchange(data: &[u8]) {
    let cfg = fuzz_config();
    let mut now = Instant::now();
    let mut core = Core::new(&cfg, 42, now);
    let mut store = MemStore::default();
    let device: SocketAddr = SocketAddr::from(([127, 0, 0, 1], 5999));
    let mut rest = data;
    let mut id = 0;
    while rest.len() >= 3 {
        let (peer, step, len) = (rest[0], rest[1], rest[2] as usize);
        rest = &rest[3..];
        let len = len.min(rest.len());
        let (dg, tail) = rest.split_at(len);
        rest = tail;
        now += Duration::from_millis(u64::from(step) * u64::from(step) * 10);
        match peer {
            0xff => core.handle_datagram(device, dg, &store, now),
            0xfe => {
                id += 1;
                if let Ok(t) = Topic::new(if dg.first().is_some_and(|b| b & 1 == 1) {
                    "dev/x"
                } else {
                    "a"
                }) {
                    let m = Message::new("x", t.clone(), dg.to_vec());
                    if !core.send_to_mount(id, &t, m.payload.clone(), &Format::Json, now) {
                        core.notify(&m, switchboard_model::Qos::AtLeastOnce, now);
                    }
                }
            }
            p => core.handle_datagram(
                SocketAddr::from(([127, 0, 0, 1], u16::from(p % 8) + 1)),
                dg,
                &store,
                now,
            ),
        }
        if core.poll_timeout().is_some_and(|t| t <= now) {
            core.handle_timeout(now);
        }
        for t in core.drain_transmits() {
            assert!(t.bytes.len() <= 2048, "oversized datagram");
        }
        store.apply(&mut core);
        assert!(
            core.state_size() < 64 + 8 + 4 + 8 + 1100 + 4096 + 64,
            "unbounded state"
        );
    }
}

/// Block1 reassembly fed arbitrary blocks: `[num, flags, len, data...]`.
pub fn blockwise(data: &[u8]) {
    let now = Instant::now();
    let mut u = Uploads::default();
    let topic = Topic::new("t").ok();
    let Some(topic) = topic else { return };
    let mut rest = data;
    while rest.len() >= 3 {
        let (num, flags, len) = (rest[0], rest[1], rest[2] as usize);
        rest = &rest[3..];
        let len = len.min(rest.len());
        let (chunk, tail) = rest.split_at(len);
        rest = tail;
        let blk = Block {
            num: u32::from(num),
            more: flags & 8 != 0,
            szx: flags % 7,
        };
        let peer = SocketAddr::from(([127, 0, 0, 1], u16::from(flags >> 4)));
        let _ = u.feed(peer, &topic, blk, chunk, None, 2048, 4, now);
        assert!(u.len() <= 4);
    }
}
