//! The DDS adapter against Cyclone DDS (Python binding) in a loopback-only
//! network namespace. Run with scripts/dds-tests.sh; each test has its own
//! domain id.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use common::{Peer, Running, cdr_message, encode};
use switchboard_model::{Format, Qos};

const T: Duration = Duration::from_secs(30);

/// Same encapsulation kind and body, ignoring the options bytes and the up
/// to 3 padding bytes a writer may append (XCDR1 pads the body to 4).
fn assert_same_cdr(got: &[u8], want: &[u8]) {
    assert!(got.len() >= 4 && want.len() >= 4, "short CDR");
    assert_eq!(got[..2], want[..2], "representation identifier");
    let (g, w) = (&got[4..], &want[4..]);
    assert!(
        g.starts_with(w),
        "body differs:\n got {g:02x?}\nwant {w:02x?}"
    );
    assert!(g.len() - w.len() <= 3 && g[w.len()..].iter().all(|b| *b == 0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn discovered_final_and_appendable_arrive_raw() {
    let mut a = Running::start("domain = 11\ndiscover = true").await;
    let mut w1 = Peer::spawn(&[
        "write",
        "11",
        "final_topic",
        "Reading",
        r#"[{"id":1,"value":2.5,"label":"hi"}]"#,
        "--wait-match",
        "--linger",
        "5",
    ]);
    let m = a.next(T, |m| m.topic.as_str() == "final_topic").await;
    w1.expect("done", T).await;
    assert_eq!(m.format, Format::Cdr(Some("test::Reading".into())));
    assert_eq!(m.qos, Qos::AtLeastOnce);
    assert!(!m.retain);
    let want = encode("Reading", r#"{"id":1,"value":2.5,"label":"hi"}"#).await;
    assert_same_cdr(&m.payload, &want);
    assert_eq!(&m.payload[..2], &[0, 1]);

    let mut w2 = Peer::spawn(&[
        "write",
        "11",
        "app_topic",
        "AReading",
        r#"[{"id":2,"value":-1.0,"label":"xcdr2"}]"#,
        "--wait-match",
        "--linger",
        "5",
    ]);
    let m = a.next(T, |m| m.topic.as_str() == "app_topic").await;
    w2.expect("done", T).await;
    assert_eq!(m.format, Format::Cdr(Some("test::AReading".into())));
    let want = encode("AReading", r#"{"id":2,"value":-1.0,"label":"xcdr2"}"#).await;
    assert_eq!(&m.payload[..2], &[0, 9], "appendable arrives as D_CDR2 LE");
    assert_same_cdr(&m.payload, &want);
    a.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn configured_topic_without_discovery() {
    let mut a = Running::start(
        r#"
domain = 12
discover = false
[[topic]]
name = "cfg"
type = "test::Reading"
reliability = "best_effort"
"#,
    )
    .await;
    let mut w = Peer::spawn(&[
        "write",
        "12",
        "cfg",
        "Reading",
        r#"[{"id":5,"value":0.5,"label":"cfg"}]"#,
        "--best-effort",
        "--repeat",
        "50",
        "--interval",
        "0.1",
        "--wait-match",
        "--linger",
        "5",
    ]);
    let m = a.next(T, |m| m.topic.as_str() == "cfg").await;
    w.expect("done", T).await;
    assert_eq!(m.qos, Qos::AtMostOnce, "best effort is at most once");
    let want = encode("Reading", r#"{"id":5,"value":0.5,"label":"cfg"}"#).await;
    assert_same_cdr(&m.payload, &want);
    a.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn adapter_writes_final_and_appendable_to_cyclone_readers() {
    let a = Running::start("domain = 13\ndiscover = false").await;
    let mut r = Peer::spawn(&["read", "13", "out_final", "Reading", "1"]);
    r.expect("ready", T).await;
    let cdr = encode("Reading", r#"{"id":7,"value":1.25,"label":"to cyclone"}"#).await;
    let s = a
        .deliver_until_read(&mut r, cdr_message("out_final", "test::Reading", cdr))
        .await;
    assert_eq!(
        s,
        serde_json::json!({"id":7,"value":1.25,"label":"to cyclone"})
    );

    // XCDR2 (D_CDR2) samples go out on a writer advertising XCDR2.
    let mut r = Peer::spawn(&["read", "13", "out_app", "AReading", "1"]);
    r.expect("ready", T).await;
    let cdr = encode("AReading", r#"{"id":8,"value":2.0,"label":"appendable"}"#).await;
    assert_eq!(&cdr[..2], &[0, 9]);
    let s = a
        .deliver_until_read(&mut r, cdr_message("out_app", "test::AReading", cdr))
        .await;
    assert_eq!(
        s,
        serde_json::json!({"id":8,"value":2.0,"label":"appendable"})
    );
    a.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keyed_topic_with_two_instances_and_a_dispose() {
    let mut a = Running::start(
        r#"
domain = 14
discover = false
[[topic]]
name = "keyed"
type = "test::Keyed"
keyed = true
[[topic]]
name = "keyed_out"
type = "test::Keyed"
keyed = true
durability = "transient_local"
"#,
    )
    .await;
    let mut w = Peer::spawn(&[
        "write",
        "14",
        "keyed",
        "Keyed",
        r#"[{"id":1,"value":1.5},{"id":2,"value":2.5}]"#,
        "--dispose",
        "1",
        "--wait-match",
        "--linger",
        "5",
    ]);
    let one = a.next(T, |m| !m.payload.is_empty()).await;
    let two = a.next(T, |m| !m.payload.is_empty()).await;
    assert_same_cdr(
        &one.payload,
        &encode("Keyed", r#"{"id":1,"value":1.5}"#).await,
    );
    assert_same_cdr(
        &two.payload,
        &encode("Keyed", r#"{"id":2,"value":2.5}"#).await,
    );
    let gone = a
        .next(T, |m| m.properties.get("dds.instance_state").is_some())
        .await;
    w.expect("disposed", T).await;
    assert_eq!(gone.properties.get("dds.instance_state"), Some("disposed"));
    assert_eq!(gone.properties.get("dds.key"), Some("0001000001000000"));
    assert!(gone.payload.is_empty());

    // The same three messages written back to a keyed topic reach a Cyclone
    // reader as two instances and a dispose.
    let mut r = Peer::spawn(&[
        "read",
        "14",
        "keyed_out",
        "Keyed",
        "3",
        "--states",
        "--tl",
        "--timeout",
        "25",
    ]);
    r.expect("ready", T).await;
    for m in [one, two, gone] {
        let mut m = m.clone();
        m.topic = switchboard_model::Topic::new("keyed_out").unwrap();
        a.deliver(m);
    }
    // Cyclone's InstanceState: 16 alive, 32 disposed. The dispose shows either
    // on a sample of instance 1 not yet taken, or as an invalid sample.
    let (mut samples, mut disposed) = (Vec::new(), false);
    let deadline = tokio::time::Instant::now() + T;
    while !(disposed && samples.len() == 2) {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        let Some(v) = r.next_line(left).await else {
            panic!("no dispose at the Cyclone reader; saw {:?}", r.seen);
        };
        if let Some(s) = v.get("sample") {
            samples.push(s.clone());
            disposed |= v["state"] == "32" && s["id"] == 1;
        }
        disposed |= v.get("instance_state").is_some_and(|s| s == "32");
    }
    assert_eq!(samples[0], serde_json::json!({"id":1,"value":1.5}));
    assert_eq!(samples[1], serde_json::json!({"id":2,"value":2.5}));
    a.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transient_local_late_joiner_into_the_adapter() {
    // Cyclone writes first and lingers; the adapter joins late.
    let mut w = Peer::spawn(&[
        "write",
        "15",
        "tl_in",
        "Reading",
        r#"[{"id":1,"value":1.0,"label":"early"}]"#,
        "--tl",
        "--linger",
        "20",
    ]);
    w.expect("done", T).await;
    let mut a = Running::start(
        r#"
domain = 15
discover = false
[[topic]]
name = "tl_in"
type = "test::Reading"
durability = "transient_local"
"#,
    )
    .await;
    let m = a.next(T, |m| m.topic.as_str() == "tl_in").await;
    assert!(m.retain, "TRANSIENT_LOCAL is retain");
    assert_same_cdr(
        &m.payload,
        &encode("Reading", r#"{"id":1,"value":1.0,"label":"early"}"#).await,
    );
    a.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transient_local_late_joiner_out_of_the_adapter() {
    let a = Running::start(
        r#"
domain = 16
discover = false
[[topic]]
name = "tl_out"
type = "test::Reading"
durability = "transient_local"
history = 1
"#,
    )
    .await;
    let cdr = encode("Reading", r#"{"id":9,"value":9.5,"label":"retained"}"#).await;
    a.deliver(cdr_message("tl_out", "test::Reading", cdr));
    // Wait until the adapter has written it, then start the late reader.
    let deadline = tokio::time::Instant::now() + T;
    while a
        .ctx
        .metrics
        .sent
        .load(std::sync::atomic::Ordering::Relaxed)
        == 0
    {
        assert!(
            tokio::time::Instant::now() < deadline,
            "adapter did not write"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let mut r = Peer::spawn(&["read", "16", "tl_out", "Reading", "1", "--tl"]);
    let s = r.expect("sample", T).await;
    assert_eq!(
        s,
        serde_json::json!({"id":9,"value":9.5,"label":"retained"})
    );
    a.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ros2_chatter_both_ways() {
    let mut a = Running::start("domain = 17\ndiscover = true\nros2 = true").await;
    let mut w = Peer::spawn(&[
        "write",
        "17",
        "rt/chatter",
        "String",
        r#"[{"data":"hello ros"}]"#,
        "--wait-match",
        "--linger",
        "5",
    ]);
    let m = a.next(T, |m| m.topic.as_str() == "chatter").await;
    w.expect("done", T).await;
    assert_eq!(m.format, Format::Cdr(Some("std_msgs::msg::String".into())));
    assert_eq!(
        m.properties.get("dds.type"),
        Some("std_msgs::msg::dds_::String_")
    );
    assert_same_cdr(
        &m.payload,
        &encode("String", r#"{"data":"hello ros"}"#).await,
    );

    let mut r = Peer::spawn(&["read", "17", "rt/chatter_back", "String", "1"]);
    r.expect("ready", T).await;
    let cdr = encode("String", r#"{"data":"from the bridge"}"#).await;
    let s = a
        .deliver_until_read(
            &mut r,
            cdr_message("chatter_back", "std_msgs::msg::String", cdr),
        )
        .await;
    assert_eq!(s, serde_json::json!({"data":"from the bridge"}));
    a.stop().await;
}

/// A sequence<octet> whose encapsulated sample is just under 1 MiB.
const BLOB: usize = (1 << 20) - 16;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_mebibyte_samples_both_ways() {
    let mut a = Running::start("domain = 18\ndiscover = true").await;
    let blob = format!(r#"[{{"__bytes__":{BLOB}}}]"#);
    let mut w = Peer::spawn(&[
        "write",
        "18",
        "blob_in",
        "Blob",
        &blob,
        "--wait-match",
        "--linger",
        "10",
    ]);
    let m = a.next(T, |m| m.topic.as_str() == "blob_in").await;
    w.expect("done", T).await;
    assert_eq!(m.payload.len(), 4 + 4 + BLOB);
    assert!(
        m.payload[8..]
            .iter()
            .enumerate()
            .all(|(i, b)| usize::from(*b) == i % 251)
    );

    let mut r = Peer::spawn(&["read", "18", "blob_out", "Blob", "1"]);
    r.expect("ready", T).await;
    let out = cdr_message("blob_out", "test::Blob", m.payload.to_vec());
    let s = a.deliver_until_read(&mut r, out).await;
    assert_eq!(
        s,
        serde_json::json!({"__bytes__": BLOB, "pattern_ok": true})
    );
    a.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn own_samples_are_never_bridged_back() {
    let mut a = Running::start("domain = 19\ndiscover = true").await;
    // A Cyclone writer makes the topic discovered, so the adapter reads it.
    let mut w = Peer::spawn(&[
        "write",
        "19",
        "echo",
        "Reading",
        r#"[{"id":1,"value":1.0,"label":"peer"}]"#,
        "--wait-match",
        "--linger",
        "15",
    ]);
    a.next(T, |m| m.topic.as_str() == "echo").await;
    w.expect("done", T).await;
    // What the adapter writes to the same topic must not come back in.
    let cdr = encode("Reading", r#"{"id":2,"value":2.0,"label":"bridge"}"#).await;
    for _ in 0..5 {
        a.deliver(cdr_message("echo", "test::Reading", cdr.clone()));
    }
    let deadline = tokio::time::Instant::now() + Duration::from_secs(3);
    while tokio::time::Instant::now() < deadline {
        if let Some(m) = a.quiet(Duration::from_millis(200)).await {
            panic!("own sample came back: {m:?}");
        }
    }
    assert_eq!(
        a.ctx
            .metrics
            .sent
            .load(std::sync::atomic::Ordering::Relaxed),
        5
    );
    a.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_bridges_on_one_domain_do_not_loop() {
    let mut a = Running::start("domain = 20\ndiscover = true").await;
    let mut b = Running::start("domain = 20\ndiscover = true").await;
    // A Cyclone writer makes `shared` a discovered topic for both bridges.
    let mut w = Peer::spawn(&[
        "write",
        "20",
        "shared",
        "Reading",
        r#"[{"id":1,"value":1.0,"label":"cyclone"}]"#,
        "--wait-match",
        "--repeat",
        "200",
        "--interval",
        "0.1",
    ]);
    w.expect("matched", T).await;
    b.next(T, |m| m.topic.as_str() == "shared").await;
    // Bridge A writes the topic (as if from its MQTT side); bridge B reads
    // A's samples but recognises A as a bridge and does not bridge them again.
    let cdr = encode("Reading", r#"{"id":3,"value":3.0,"label":"from A"}"#).await;
    let drops = b.ctx.metrics.counter("dds_loop_drops", "");
    let deadline = tokio::time::Instant::now() + T;
    while drops.get() == 0 {
        a.deliver(cdr_message("shared", "test::Reading", cdr.clone()));
        if let Some(m) = b.quiet(Duration::from_millis(200)).await {
            assert!(
                !m.payload.windows(6).any(|w| w == b"from A"),
                "bridge B bridged bridge A's sample"
            );
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "B never saw A's samples"
        );
    }
    // B still bridges the Cyclone writer's samples, and A never reads its
    // own samples back.
    b.next(T, |m| m.topic.as_str() == "shared").await;
    let until = tokio::time::Instant::now() + Duration::from_secs(2);
    while tokio::time::Instant::now() < until {
        if let Some(m) = a.quiet(Duration::from_millis(200)).await {
            assert!(
                !m.payload.windows(6).any(|w| w == b"from A"),
                "A read its own sample"
            );
        }
    }
    a.stop().await;
    b.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn localhost_only_still_talks_over_loopback() {
    let mut a = Running::start("domain = 21\ndiscover = true\nlocalhost_only = true").await;
    let mut w = Peer::spawn(&[
        "write",
        "21",
        "lo_only",
        "Reading",
        r#"[{"id":1,"value":1.0,"label":"lo"}]"#,
        "--wait-match",
        "--linger",
        "5",
    ]);
    let m = a.next(T, |m| m.topic.as_str() == "lo_only").await;
    w.expect("done", T).await;
    assert_same_cdr(
        &m.payload,
        &encode("Reading", r#"{"id":1,"value":1.0,"label":"lo"}"#).await,
    );
    a.stop().await;
}
