//! Unit tests of the broker core.
#![allow(clippy::unwrap_used)]

use super::*;
use crate::broker::codec::Version;

fn limits() -> Limits {
    Limits {
        max_clients: 2,
        max_sessions: 3,
        max_inflight: 2,
        max_queued: 3,
    }
}

fn req(clean: bool, expiry: u32) -> ConnectReq {
    ConnectReq {
        version: Version::V4,
        client_id: String::new(),
        clean_start: clean,
        keep_alive: 0,
        will: None,
        username: None,
        password: None,
        session_expiry: expiry,
        receive_max: u16::MAX,
        max_packet_size: None,
        auth_method: None,
    }
}

fn sub(f: &str, qos: u8) -> SubReq {
    SubReq {
        filter: f.into(),
        qos,
        no_local: false,
        retain_as_published: false,
        retain_handling: 0,
    }
}

fn publ(topic: &str, qos: u8) -> Publish {
    Publish {
        topic: Arc::from(topic),
        payload: bytes::Bytes::from_static(b"x"),
        qos,
        retain: true,
        dup: false,
        pkid: 0,
        props: None,
        topic_alias: None,
        expires: None,
    }
}

#[test]
fn qos1_window_and_offline_queue() {
    let mut c = Core::new(limits(), CoreStats::new(&AdapterMetrics::default()));
    let a: Arc<str> = Arc::from("a");
    let now = Instant::now();
    let (l, present) = c.connect(&a, &req(false, u32::MAX), now).unwrap();
    assert!(!present);
    assert!(c.subscribe(&a, &sub("t/#", 1), 1, None));
    for _ in 0..3 {
        c.route(&publ("t/1", 2), None);
    }
    let mut out = Vec::new();
    c.pull(&a, l.id, &mut out);
    // Window of 2; QoS downgraded to the subscription's; retain cleared.
    assert_eq!(out.len(), 2);
    let Outbound::Publish(p) = &out[0] else {
        panic!()
    };
    assert_eq!((p.qos, p.retain, p.pkid), (1, false, 1));
    c.puback(&a, l.id, 1);
    out.clear();
    c.pull(&a, l.id, &mut out);
    assert_eq!(out.len(), 1);
    // Offline: QoS 1 kept, QoS 0 not; the unacked one is resent with DUP.
    c.disconnected(&a, l.id, now);
    c.route(&publ("t/2", 1), None);
    c.route(&publ("t/3", 0), None);
    let (l2, present) = c.connect(&a, &req(false, u32::MAX), now).unwrap();
    assert!(present);
    out.clear();
    c.resume(&a, l2.id, &mut out);
    c.pull(&a, l2.id, &mut out);
    let dups: Vec<(bool, u16)> = out
        .iter()
        .map(|o| match o {
            Outbound::Publish(p) => (p.dup, p.pkid),
            _ => panic!(),
        })
        .collect();
    assert_eq!(dups.len(), 2);
    assert!(dups[0].0 && dups.iter().all(|(_, id)| *id != 0));
}

#[test]
fn clean_session_ends_and_limits_refuse() {
    let mut c = Core::new(limits(), CoreStats::new(&AdapterMetrics::default()));
    let now = Instant::now();
    let (la, _) = c.connect(&Arc::from("a"), &req(true, 0), now).unwrap();
    let (_lb, _) = c.connect(&Arc::from("b"), &req(true, 0), now).unwrap();
    assert_eq!(
        c.connect(&Arc::from("c"), &req(true, 0), now).unwrap_err(),
        0x97
    );
    // Takeover is allowed at the limit and kicks the old connection.
    let (la2, _) = c.connect(&Arc::from("a"), &req(true, 0), now).unwrap();
    assert_eq!(la.kick.load(Ordering::Relaxed), 0x8E);
    c.disconnected("a", la.id, now);
    assert_eq!(c.sessions(), 2);
    c.disconnected("a", la2.id, now);
    assert_eq!(c.sessions(), 1);
}

#[test]
fn qos2_both_directions() {
    let mut c = Core::new(limits(), CoreStats::new(&AdapterMetrics::default()));
    let a: Arc<str> = Arc::from("a");
    let now = Instant::now();
    let (l, _) = c.connect(&a, &req(true, 0), now).unwrap();
    assert_eq!(c.qos2_received(&a, l.id, 7), Qos2In::New);
    assert_eq!(c.qos2_received(&a, l.id, 7), Qos2In::Duplicate);
    assert_eq!(c.qos2_received(&a, l.id, 8), Qos2In::New);
    assert_eq!(c.qos2_received(&a, l.id, 9), Qos2In::TooMany);
    assert!(c.qos2_released(&a, l.id, 7));
    assert!(!c.qos2_released(&a, l.id, 7));
    c.subscribe(&a, &sub("q", 2), 2, None);
    c.route(&publ("q", 2), None);
    let mut out = Vec::new();
    c.pull(&a, l.id, &mut out);
    assert_eq!(c.pubrec(&a, l.id, 1, 0), Some(Outbound::PubRel(1)));
    c.puback(&a, l.id, 1);
    assert_eq!(c.pending("a"), 1);
    c.pubcomp(&a, l.id, 1);
    assert_eq!(c.pending("a"), 0);
}

#[test]
fn message_expiry_counts_down() {
    let mut c = Core::new(limits(), CoreStats::new(&AdapterMetrics::default()));
    let a: Arc<str> = Arc::from("a");
    let t0 = Instant::now();
    let (l, _) = c.connect(&a, &req(true, 0), t0).unwrap();
    c.subscribe(&a, &sub("e", 0), 0, None);
    let mut p = publ("e", 0);
    p.props = Some(Arc::new(crate::broker::codec::PubProps {
        message_expiry: Some(10),
        ..Default::default()
    }));
    p.expires = Some(t0 + Duration::from_secs(10));
    c.route(&p, None);
    let mut out = Vec::new();
    c.pull_at(&a, l.id, &mut out, t0 + Duration::from_secs(4));
    let Outbound::Publish(sent) = &out[0] else {
        panic!()
    };
    assert_eq!(sent.props.as_ref().unwrap().message_expiry, Some(6));
    // The shared properties of the original are untouched.
    assert_eq!(p.props.as_ref().unwrap().message_expiry, Some(10));
    c.route(&p, None);
    out.clear();
    c.pull_at(&a, l.id, &mut out, t0 + Duration::from_secs(11));
    assert!(out.is_empty());
    assert_eq!(c.stats.expired.get(), 1);
}

#[test]
fn no_local_and_queue_bound() {
    let mut c = Core::new(limits(), CoreStats::new(&AdapterMetrics::default()));
    let a: Arc<str> = Arc::from("a");
    let now = Instant::now();
    let (_l, _) = c.connect(&a, &req(true, 0), now).unwrap();
    let mut s = sub("n", 0);
    s.no_local = true;
    c.subscribe(&a, &s, 0, None);
    assert!(c.route(&publ("n", 0), Some("a")).is_empty());
    for _ in 0..5 {
        c.route(&publ("n", 0), Some("b"));
    }
    assert_eq!(c.pending("a"), 3);
    assert_eq!(c.stats.queue_full.get(), 2);
}

#[test]
fn subscription_identifiers_are_merged_per_client() {
    let mut c = Core::new(limits(), CoreStats::new(&AdapterMetrics::default()));
    let a: Arc<str> = Arc::from("a");
    let now = Instant::now();
    let (l, _) = c.connect(&a, &req(true, 0), now).unwrap();
    c.subscribe(&a, &sub("t/#", 1), 1, Some(5));
    c.subscribe(&a, &sub("t/x", 0), 0, Some(7));
    c.subscribe(&a, &sub("+/y", 0), 0, None);
    c.route(&publ("t/x", 1), None);
    c.route(&publ("t/y", 1), None);
    let mut out = Vec::new();
    c.pull(&a, l.id, &mut out);
    let ids: Vec<Vec<u32>> = out
        .iter()
        .map(|o| match o {
            Outbound::Publish(p) => {
                let mut v = p
                    .props
                    .as_ref()
                    .map(|pp| pp.sub_ids.clone())
                    .unwrap_or_default();
                v.sort();
                v
            }
            _ => panic!(),
        })
        .collect();
    assert_eq!(ids, [vec![5, 7], vec![5]]);
}
