//! Typed topics against Cyclone DDS: samples of types from the IDL files
//! become JSON, JSON and CBOR become typed samples. Loopback-only network
//! namespace (scripts/dds-tests.sh); each test has its own domain id.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use common::{Peer, Running};
use serde_json::{Value, json};
use switchboard_model::{Format, Message, Qos};

const T: Duration = Duration::from_secs(30);

fn idl() -> String {
    format!("{}/tests/idl/test.idl", env!("CARGO_MANIFEST_DIR"))
}

fn config(domain: u16, extra: &str) -> String {
    format!("domain = {domain}\nidl = [\"{}\"]\n{extra}", idl())
}

fn json_of(m: &Message) -> Value {
    assert_eq!(m.format, Format::Json, "typed samples arrive as JSON");
    serde_json::from_slice(&m.payload).unwrap()
}

fn json_message(topic: &str, v: &Value) -> Message {
    Message::json(&format!("mqtt:{topic}"), v.to_string())
        .unwrap()
        .with_qos(Qos::AtLeastOnce)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cyclone_final_and_appendable_samples_become_json() {
    let mut a = Running::start(&config(31, "discover = true")).await;
    for (topic, ty, sample) in [
        (
            "t_final",
            "Reading",
            json!({"id": 1, "value": 2.5, "label": "final"}),
        ),
        (
            "t_app",
            "AReading",
            json!({"id": 2, "value": -0.125, "label": "appendable"}),
        ),
    ] {
        let mut w = Peer::spawn(&[
            "write",
            "31",
            topic,
            ty,
            &format!("[{sample}]"),
            "--wait-match",
            "--linger",
            "5",
        ]);
        let m = a.next(T, |m| m.topic.as_str() == topic).await;
        w.expect("done", T).await;
        assert_eq!(json_of(&m), sample);
        assert_eq!(m.properties.get("dds.type"), Some(&*format!("test::{ty}")));
    }
    a.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_and_cbor_become_typed_samples_for_cyclone() {
    let a = Running::start(&config(
        32,
        r#"discover = false
[[topic]]
name = "j_final"
type = "test::Reading"
[[topic]]
name = "j_app"
type = "test::AReading"
"#,
    ))
    .await;
    let v = json!({"id": 7, "value": 1.25, "label": "from json"});
    let mut r = Peer::spawn(&["read", "32", "j_final", "Reading", "1"]);
    r.expect("ready", T).await;
    assert_eq!(
        a.deliver_until_read(&mut r, json_message("j_final", &v))
            .await,
        v
    );

    // CBOR for an appendable type: written as XCDR2, which Cyclone requires.
    let v = json!({"id": 8, "value": 2.0, "label": "from cbor"});
    let mut cbor = Vec::new();
    ciborium::into_writer(&v, &mut cbor).unwrap();
    let m = Message::at("mqtt:j_app", cbor, Format::Cbor).unwrap();
    let mut r = Peer::spawn(&["read", "32", "j_app", "AReading", "1"]);
    r.expect("ready", T).await;
    assert_eq!(a.deliver_until_read(&mut r, m).await, v);
    a.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn payload_that_does_not_fit_the_type_is_dropped_and_counted() {
    let a = Running::start(&config(
        33,
        "discover = false\n[[topic]]\nname = \"bad\"\ntype = \"test::Reading\"\n",
    ))
    .await;
    a.deliver(json_message("bad", &json!({"id": "nope"})));
    a.deliver(json_message("bad", &json!({"id": 1, "colour": "red"})));
    let failures = a.ctx.metrics.counter("dds_decode_failures", "");
    let deadline = tokio::time::Instant::now() + T;
    while a
        .ctx
        .metrics
        .dropped
        .load(std::sync::atomic::Ordering::Relaxed)
        < 2
    {
        assert!(tokio::time::Instant::now() < deadline, "not dropped");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(failures.get(), 2);
    assert_eq!(
        a.ctx
            .metrics
            .sent
            .load(std::sync::atomic::Ordering::Relaxed),
        0
    );
    a.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keyed_json_instances_and_dispose_both_ways() {
    let mut a = Running::start(&config(
        34,
        r#"discover = false
[[topic]]
name = "k_in"
type = "test::Keyed"
[[topic]]
name = "k_out"
type = "test::Keyed"
durability = "transient_local"
"#,
    ))
    .await;
    let mut w = Peer::spawn(&[
        "write",
        "34",
        "k_in",
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
    assert_eq!(json_of(&one), json!({"id": 1, "value": 1.5}));
    assert_eq!(one.properties.get("dds.key"), Some(r#"{"id":1}"#));
    assert_eq!(json_of(&two), json!({"id": 2, "value": 2.5}));
    assert_eq!(two.properties.get("dds.key"), Some(r#"{"id":2}"#));
    let gone = a
        .next(T, |m| m.properties.get("dds.instance_state").is_some())
        .await;
    w.expect("disposed", T).await;
    assert_eq!(gone.properties.get("dds.instance_state"), Some("disposed"));
    assert_eq!(gone.properties.get("dds.key"), Some(r#"{"id":1}"#));

    // JSON back out: two instances, then a dispose named by its JSON key.
    let mut r = Peer::spawn(&[
        "read",
        "34",
        "k_out",
        "Keyed",
        "3",
        "--states",
        "--tl",
        "--timeout",
        "25",
    ]);
    r.expect("ready", T).await;
    a.deliver(json_message("k_out", &json!({"id": 1, "value": 1.5})));
    a.deliver(json_message("k_out", &json!({"id": 2, "value": 2.5})));
    let mut dispose = Message::new(
        "mqtt",
        switchboard_model::Topic::new("k_out").unwrap(),
        Vec::new(),
    );
    dispose.properties.push("dds.instance_state", "disposed");
    dispose.properties.push("dds.key", r#"{"id":1}"#);
    a.deliver(dispose);
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
    assert_eq!(
        samples,
        vec![json!({"id":1,"value":1.5}), json!({"id":2,"value":2.5})]
    );
    a.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ros2_chatter_as_json_both_ways() {
    let mut a = Running::start(&config(35, "discover = true\nros2 = true")).await;
    let mut w = Peer::spawn(&[
        "write",
        "35",
        "rt/chatter",
        "String",
        r#"[{"data":"hello ros"}]"#,
        "--wait-match",
        "--linger",
        "5",
    ]);
    let m = a.next(T, |m| m.topic.as_str() == "chatter").await;
    w.expect("done", T).await;
    assert_eq!(json_of(&m), json!({"data": "hello ros"}));
    assert_eq!(
        m.properties.get("dds.type"),
        Some("std_msgs::msg::dds_::String_")
    );

    // A JSON message to a ROS 2 topic the bridge knows from discovery.
    let mut r = Peer::spawn(&["read", "35", "rt/chatter", "String", "2"]);
    r.expect("ready", T).await;
    let deadline = tokio::time::Instant::now() + T;
    loop {
        a.deliver(json_message("chatter", &json!({"data": "from json"})));
        if let Some(s) = r.try_expect("sample", Duration::from_millis(300)).await
            && s == json!({"data": "from json"})
        {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "saw {:?}", r.seen);
    }
    a.stop().await;
}
