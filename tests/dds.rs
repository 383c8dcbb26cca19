//! Black-box tests of the bridge binary with its DDS adapter, against Cyclone
//! DDS (Python binding) and curl through the HTTP adapter. They open DDS
//! participants, so they run only inside a loopback-only network namespace:
//! scripts/test.sh runs the whole suite there, scripts/dds-tests.sh only the
//! tests named `dds_*`. Each test uses its own domain id (domain 0 only by
//! the default-config test).

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod common;

use std::time::Duration;

use common::{BridgeProc, Streaming, curl, put_json, python, wait_for};
use serde_json::{Value, json};

const T: Duration = Duration::from_secs(30);

fn ensure_isolated() {
    let dev = std::fs::read_to_string("/proc/self/net/dev").unwrap();
    let only_lo = dev
        .lines()
        .skip(2)
        .all(|l| l.split(':').next().is_some_and(|i| i.trim() == "lo"));
    assert!(
        only_lo,
        "DDS tests must run in a loopback-only network namespace: scripts/dds-tests.sh"
    );
}

fn peer() -> String {
    format!(
        "{}/crates/switchboard-dds/tests/peers/peer.py",
        env!("CARGO_MANIFEST_DIR")
    )
}

fn config(domain: u16) -> String {
    format!(
        r#"
[bridge]
shutdown_timeout = "3s"

[adapter.http]
listen = "127.0.0.1:0"

[adapter.dds]
domain = {domain}
idl = ["{}/crates/switchboard-dds/tests/idl/test.idl"]
discover = true

[[route]]
from = "dds:#"
to = ["http:dds/{{0}}"]

[[route]]
from = "http:cmd/#"
to = ["dds:{{1}}"]
"#,
        env!("CARGO_MANIFEST_DIR")
    )
}

fn cyclone(args: &[&str]) -> Streaming {
    let mut a = vec![peer()];
    a.extend(args.iter().map(|s| s.to_string()));
    let a: Vec<&str> = a.iter().map(String::as_str).collect();
    Streaming::spawn(&python(), &a)
}

/// Publishes with `publish` until the Cyclone reader `r` prints a sample (the
/// bridge's writer may match it a moment after the reader is ready), and
/// returns that sample.
fn publish_until_read(r: &Streaming, mut publish: impl FnMut()) -> Value {
    let line = wait_for("a sample at the Cyclone reader", T, || {
        publish();
        r.wait_line(Duration::from_millis(300), |l| l.contains("\"sample\""))
    });
    let v: Value = serde_json::from_str(&line).unwrap();
    v["sample"].clone()
}

#[test]
fn dds_cyclone_sample_reaches_http_as_json() {
    ensure_isolated();
    let b = BridgeProc::start(&config(51));
    let sample = json!({"id": 4, "value": 0.75, "label": "via the router"});
    let _w = cyclone(&[
        "write",
        "51",
        "sensor",
        "Reading",
        &format!("[{sample}]"),
        "--repeat",
        "100",
        "--interval",
        "0.2",
    ]);
    let url = format!("{}/topics/dds/sensor", b.http("http"));
    let body = wait_for("the sample at http:dds/sensor", T, || {
        let (code, body) = curl(&[], &url);
        (code == 200).then_some(body)
    });
    let v: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v, sample);
}

#[test]
fn dds_http_json_reaches_cyclone_reader_typed() {
    ensure_isolated();
    let b = BridgeProc::start(&config(52));
    // The Cyclone reader makes `command` a discovered topic of type test::Reading.
    let r = cyclone(&["read", "52", "command", "Reading", "1"]);
    assert!(r.wait_line(T, |l| l.contains("ready")).is_some());
    let sample = json!({"id": 9, "value": -3.5, "label": "from curl"});
    let url = format!("{}/topics/cmd/command", b.http("http"));
    let got = publish_until_read(&r, || put_json(&url, &sample.to_string()));
    assert_eq!(got, sample);
}

#[test]
fn dds_relay_between_domains_keeps_cdr_untouched() {
    ensure_isolated();
    // Two DDS adapters on two domains, no IDL: samples relay as raw CDR.
    let b = BridgeProc::start(
        r#"
[bridge]
shutdown_timeout = "3s"

[adapter.http]
listen = "127.0.0.1:0"

[adapter.dds]
domain = 53
discover = true

[adapter.far]
kind = "dds"
domain = 54
discover = false

[[route]]
from = "dds:#"
to = ["far:{0}", "http:seen/{0}"]
"#,
    );
    let r = cyclone(&["read", "54", "relay", "AReading", "1"]);
    assert!(r.wait_line(T, |l| l.contains("ready")).is_some());
    let sample = json!({"id": 5, "value": 5.5, "label": "xcdr2 relayed"});
    let _w = cyclone(&[
        "write",
        "53",
        "relay",
        "AReading",
        &format!("[{sample}]"),
        "--repeat",
        "150",
        "--interval",
        "0.2",
    ]);
    let line = r
        .wait_line(T, |l| l.contains("\"sample\""))
        .unwrap_or_else(|| panic!("nothing relayed; reader saw {:?}", r.lines()));
    let v: Value = serde_json::from_str(&line).unwrap();
    assert_eq!(v["sample"], sample);
    // The HTTP copy is the raw encapsulation: D_CDR2 little endian.
    let out = common::run(
        "curl",
        &["-s", "-i", &format!("{}/topics/seen/relay", b.http("http"))],
    );
    assert!(out.stdout.starts_with("HTTP/1.1 200"), "{}", out.stdout);
    assert!(
        out.stdout
            .to_ascii_lowercase()
            .contains("content-type: application/x-cdr; type=test::areading"),
        "{}",
        out.stdout
    );
}

fn mqtt_config(domain: u16) -> String {
    format!(
        r#"
[bridge]
shutdown_timeout = "3s"

[adapter.mqtt]
listen = "127.0.0.1:0"

[adapter.dds]
domain = {domain}
idl = ["{}/crates/switchboard-dds/tests/idl/test.idl"]
discover = true
[[adapter.dds.topic]]
name = "cmd_reading"
type = "test::Reading"

[[route]]
from = "dds:#"
to = ["mqtt:dds/{{0}}"]

[[route]]
from = "mqtt:cmd/#"
to = ["dds:{{1}}"]
"#,
        env!("CARGO_MANIFEST_DIR")
    )
}

#[test]
fn dds_cyclone_final_and_appendable_reach_mosquitto_sub_as_json() {
    ensure_isolated();
    let b = BridgeProc::start(&mqtt_config(55));
    let port = b.addr("mqtt", "mqtt").port().to_string();
    let sub = Streaming::spawn(
        "mosquitto_sub",
        &["-h", "127.0.0.1", "-p", &port, "-v", "-t", "dds/#"],
    );
    let final_sample = json!({"id": 1, "value": 2.5, "label": "final"});
    let app_sample = json!({"id": 2, "value": -1.5, "label": "appendable"});
    let _w1 = cyclone(&[
        "write",
        "55",
        "r_final",
        "Reading",
        &format!("[{final_sample}]"),
        "--repeat",
        "150",
        "--interval",
        "0.2",
    ]);
    let _w2 = cyclone(&[
        "write",
        "55",
        "r_app",
        "AReading",
        &format!("[{app_sample}]"),
        "--repeat",
        "150",
        "--interval",
        "0.2",
    ]);
    for (topic, want) in [("dds/r_final", &final_sample), ("dds/r_app", &app_sample)] {
        let line = sub
            .wait_line(T, |l| l.starts_with(&format!("{topic} ")))
            .unwrap_or_else(|| panic!("nothing on {topic}; mosquitto_sub saw {:?}", sub.lines()));
        let v: Value = serde_json::from_str(&line[topic.len() + 1..]).unwrap();
        assert_eq!(&v, want, "{topic}");
    }
}

#[test]
fn dds_mosquitto_pub_json_reaches_cyclone_reader_typed() {
    ensure_isolated();
    let b = BridgeProc::start(&mqtt_config(56));
    let port = b.addr("mqtt", "mqtt").port().to_string();
    let r = cyclone(&["read", "56", "cmd_reading", "Reading", "1"]);
    assert!(r.wait_line(T, |l| l.contains("ready")).is_some());
    let sample = json!({"id": 12, "value": 0.5, "label": "from mosquitto_pub"});
    let got = publish_until_read(&r, || {
        let out = common::run(
            "mosquitto_pub",
            &[
                "-h",
                "127.0.0.1",
                "-p",
                &port,
                "-q",
                "1",
                "-t",
                "cmd/cmd_reading",
                "-m",
                &sample.to_string(),
            ],
        );
        assert!(out.status.success(), "{}", out.stderr);
    });
    assert_eq!(got, sample);
}

#[test]
fn dds_two_bridges_on_one_domain_and_one_broker_do_not_loop() {
    ensure_isolated();
    // Bridge A runs the MQTT broker; bridge B is its MQTT client. Both bridge
    // DDS domain 57 to MQTT and back.
    let a = BridgeProc::start(
        r#"
[bridge]
shutdown_timeout = "3s"
[adapter.mqtt]
listen = "127.0.0.1:0"
[adapter.dds]
domain = 57
discover = true
[[route]]
from = "dds:#"
to = ["mqtt:{0}"]
[[route]]
from = "mqtt:#"
to = ["dds:{0}"]
"#,
    );
    let port = a.addr("mqtt", "mqtt").port();
    let _b = BridgeProc::start(&format!(
        r#"
[bridge]
shutdown_timeout = "3s"
[adapter.cloud]
kind = "mqtt"
url = "mqtt://127.0.0.1:{port}"
client_id = "bridge-b"
version = 5
[adapter.dds]
domain = 57
discover = true
[[route]]
from = "dds:#"
to = ["cloud:{{0}}"]
[[route]]
from = "cloud:#"
to = ["dds:{{0}}"]
"#
    ));
    let p = port.to_string();
    let sub = Streaming::spawn(
        "mosquitto_sub",
        &["-h", "127.0.0.1", "-p", &p, "-v", "-t", "loop_t"],
    );
    // A Cyclone reader and writer on the topic; the writer writes once
    // (TRANSIENT_LOCAL, so the bridges' readers get it whenever they match).
    let r = cyclone(&["read", "57", "loop_t", "Blob", "1000", "--timeout", "25"]);
    assert!(r.wait_line(T, |l| l.contains("ready")).is_some());
    let w = cyclone(&[
        "write",
        "57",
        "loop_t",
        "Blob",
        r#"[{"__bytes__": 16}]"#,
        "--tl",
        "--wait-match",
        "--linger",
        "20",
    ]);
    assert!(w.wait_line(T, |l| l.contains("done")).is_some());
    sub.wait_line(T, |l| l.starts_with("loop_t "))
        .unwrap_or_else(|| panic!("the sample never reached MQTT"));
    // Each bridge forwards the sample once; nothing circulates after that.
    std::thread::sleep(Duration::from_secs(6));
    // (The blob holds a newline byte: count messages, not lines.)
    let count = || {
        sub.lines()
            .iter()
            .filter(|l| l.starts_with("loop_t "))
            .count()
    };
    let mqtt_copies = count();
    let dds_copies = r
        .lines()
        .iter()
        .filter(|l| l.contains("\"sample\""))
        .count();
    assert!(
        (1..=2).contains(&mqtt_copies),
        "{mqtt_copies} MQTT copies: {:?}",
        sub.lines()
    );
    assert!(dds_copies <= 3, "{dds_copies} DDS copies: {:?}", r.lines());
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(count(), mqtt_copies, "messages still circulate");
}

/// Retained messages a late `mosquitto_sub` of `topic` receives within 2 s.
fn late_retained(port: &str, topic: &str) -> Vec<Value> {
    let out = common::run(
        "mosquitto_sub",
        &["-h", "127.0.0.1", "-p", port, "-t", topic, "-W", "2"],
    );
    out.stdout
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

#[test]
fn dds_keyed_instances_each_keep_their_last_value_for_late_mqtt_and_ws_subscribers() {
    ensure_isolated();
    // mqtt_config plus a WebSocket adapter fed by the same DDS topics.
    let config = mqtt_config(58).replacen(
        "[adapter.dds]",
        "[adapter.http]\nlisten = \"127.0.0.1:0\"\n[adapter.ws]\nlisten = \"127.0.0.1:0\"\n\n[adapter.dds]",
        1,
    ) + "\n[[route]]\nfrom = \"dds:#\"\nto = [\"ws:dds/{0}\"]\n";
    let b = BridgeProc::start(&config);
    let port = b.addr("mqtt", "mqtt").port().to_string();
    // Two instances of a keyed TRANSIENT_LOCAL topic, each written twice.
    let _w = cyclone(&[
        "write",
        "58",
        "keyed_t",
        "Keyed",
        r#"[{"id": 1, "value": 1.0}, {"id": 2, "value": 2.0}, {"id": 1, "value": 1.5}, {"id": 2, "value": 2.5}]"#,
        "--tl",
        "--wait-match",
        "--linger",
        "40",
    ]);
    let sorted = |mut v: Vec<Value>| {
        v.sort_by_key(|s| s["id"].as_i64());
        v
    };
    let want = vec![
        json!({"id": 1, "value": 1.5}),
        json!({"id": 2, "value": 2.5}),
    ];
    wait_for("both instances' last values retained", T, || {
        let got = sorted(late_retained(&port, "dds/keyed_t"));
        (got == want).then_some(())
    });
    // A late WebSocket subscriber's retained snapshot has both instances too.
    let ws = format!("ws://{}/ws", b.addr("ws", "ws"));
    let sub = json!({"op": "sub", "topic": "dds/keyed_t", "retained": true, "ref": 1});
    let out = common::run(
        &common::python(),
        &[
            &common::peer_script("ws_peer.py"),
            "run",
            &ws,
            "--send",
            &sub.to_string(),
            "--recv",
            "3",
            "--timeout",
            "5",
        ],
    );
    let snapshot: Vec<Value> = out
        .stdout
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter_map(|l| serde_json::from_str::<Value>(l["text"].as_str()?).ok())
        .filter(|f| f["op"] == "msg")
        .map(|f| f["payload"].clone())
        .collect();
    assert_eq!(sorted(snapshot), want, "{}", out.stdout);
    // HTTP-style "latest" is one of them; a disposed instance is no longer
    // retained, the other one still is.
    let d = cyclone(&[
        "write",
        "58",
        "keyed_t",
        "Keyed",
        r#"[{"id": 1, "value": 9.0}]"#,
        "--tl",
        "--wait-match",
        "--dispose",
        "1",
        "--linger",
        "20",
    ]);
    assert!(d.wait_line(T, |l| l.contains("disposed")).is_some());
    wait_for("only instance 2 retained after the dispose", T, || {
        let got = late_retained(&port, "dds/keyed_t");
        (got == [json!({"id": 2, "value": 2.5})]).then_some(())
    });
}

#[test]
fn dds_route_to_a_topic_with_no_known_type_is_a_config_error() {
    // --check opens no participant; the bridge refuses to start the same way.
    let config = r#"[adapter.mqtt]
listen = "127.0.0.1:0"

[adapter.dds]
domain = 59
discover = false
[[adapter.dds.topic]]
name = "typed"
type = "test::Reading"

[adapter.far]
kind = "dds"
domain = 60
discover = false

[[route]]
from = "mqtt:a/#"
to = ["dds:typed", "dds:untyped", "dds:x/{1}"]

[[route]]
from = "dds:#"
to = ["far:relayed"]
"#;
    let (_dir, path, out) = common::check_config(config);
    let p = path.as_str();
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    // Only the literal, unconfigured topic written from MQTT is an error: the
    // configured one has a type, templated ones are only known at run time,
    // and DDS -> DDS samples carry their type name.
    let errors: Vec<&str> = out
        .stderr
        .lines()
        .filter(|l| l.contains(": route["))
        .collect();
    assert_eq!(errors.len(), 1, "{}", out.stderr);
    assert!(
        errors[0].starts_with(&format!(
            "{p}:18:20: route[0].to[1]: DDS topic `untyped` has no known type"
        )),
        "{}",
        out.stderr
    );
    let out = common::run(
        common::example_bin("bridge").to_str().unwrap(),
        &["--config", p],
    );
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    assert!(out.stderr.contains("DDS topic `untyped`"), "{}", out.stderr);
    // With discovery the domain tells the type at run time.
    let (_dir, _, out) =
        common::check_config(&config.replacen("discover = false", "discover = true", 1));
    assert_eq!(out.status.code(), Some(0), "{out:?}");
}

/// The value of the metric line starting with `prefix` (`name{labels}`).
fn metric(text: &str, prefix: &str) -> Option<u64> {
    text.lines()
        .find_map(|l| l.strip_prefix(prefix)?.trim().parse().ok())
}

#[test]
fn dds_healthz_and_metrics_show_participant_and_per_topic_figures() {
    ensure_isolated();
    let b = BridgeProc::start(&config(61));
    let base = b.http("http");
    let _w = cyclone(&[
        "write",
        "61",
        "sensor",
        "Reading",
        r#"[{"id": 1, "value": 1.0, "label": "m"}]"#,
        "--repeat",
        "150",
        "--interval",
        "0.2",
    ]);
    // The reader stays up (it must still be matched when /metrics is read).
    let r = cyclone(&[
        "read",
        "61",
        "command",
        "Reading",
        "1000",
        "--timeout",
        "60",
    ]);
    assert!(r.wait_line(T, |l| l.contains("ready")).is_some());
    let url = format!("{base}/topics/cmd/command");
    let put = |body: &str| put_json(&url, body);
    publish_until_read(&r, || put(r#"{"id": 2, "value": 2.0, "label": "c"}"#));
    // A payload that does not fit test::Reading.
    put(r#"{"id": "two"}"#);
    let lbl = |t: &str| format!("{{adapter=\"dds\",topic=\"{t}\"}}");
    let text = wait_for("per-topic figures in /metrics", T, || {
        let (code, text) = curl(&[], &format!("{base}/metrics"));
        assert_eq!(code, 200);
        let ok = metric(
            &text,
            &format!("switchboard_dds_topic_samples_in_total{}", lbl("sensor")),
        )
        .is_some_and(|v| v > 0)
            && metric(
                &text,
                &format!("switchboard_dds_topic_matched_writers{}", lbl("sensor")),
            ) == Some(1)
            && metric(
                &text,
                &format!("switchboard_dds_topic_reading{}", lbl("sensor")),
            ) == Some(1)
            && metric(
                &text,
                &format!("switchboard_dds_topic_samples_out_total{}", lbl("command")),
            )
            .is_some_and(|v| v >= 1)
            && metric(
                &text,
                &format!("switchboard_dds_topic_matched_readers{}", lbl("command")),
            ) == Some(1)
            && metric(
                &text,
                &format!("switchboard_dds_topic_writers{}", lbl("command")),
            ) == Some(1)
            && metric(
                &text,
                &format!(
                    "switchboard_dds_topic_decode_failures_total{}",
                    lbl("command")
                ),
            ) == Some(1);
        ok.then_some(text)
    });
    let info = text
        .lines()
        .find(|l| l.starts_with("switchboard_adapter_info{adapter=\"dds\""))
        .unwrap_or_else(|| panic!("no adapter info: {text}"));
    assert!(info.contains("domain=\"61\""), "{info}");
    let (code, body) = curl(&[], &format!("{base}/healthz"));
    assert_eq!(code, 200, "{body}");
    let v: Value = serde_json::from_str(&body).unwrap();
    let dds = &v["detail"]["dds"];
    let guid = dds["facts"]["participant"].as_str().unwrap();
    assert_eq!(guid.len(), 24, "{body}");
    assert!(info.contains(&format!("participant=\"{guid}\"")), "{info}");
    assert_eq!(
        dds["topics"]["sensor"]["dds_topic_matched_writers"], 1,
        "{body}"
    );
    assert!(
        dds["topics"]["sensor"]["dds_topic_samples_in_total"]
            .as_u64()
            .unwrap()
            > 0
    );
    assert_eq!(
        dds["topics"]["command"]["dds_topic_decode_failures_total"], 1,
        "{body}"
    );
}

#[test]
fn dds_default_config_bridges_domain_0_with_discovery() {
    ensure_isolated();
    // The built-in default config, fixed ports and all (no other test binds
    // 1883, 8080, 5683 or uses domain 0).
    let _b = BridgeProc::start(switchboard::DEFAULT_CONFIG);
    let sub = Streaming::spawn(
        "mosquitto_sub",
        &["-h", "127.0.0.1", "-p", "1883", "-v", "-t", "#"],
    );
    // A topic another participant writes on domain 0 reaches MQTT (raw CDR:
    // the default config has no IDL files).
    let _w = cyclone(&[
        "write",
        "0",
        "hello_dds",
        "String",
        r#"[{"data": "from cyclone"}]"#,
        "--repeat",
        "150",
        "--interval",
        "0.2",
    ]);
    let line = sub
        .wait_line(T, |l| l.starts_with("hello_dds "))
        .unwrap_or_else(|| panic!("nothing from DDS; mosquitto_sub saw {:?}", sub.lines()));
    assert!(line.contains("from cyclone"), "{line}");
    // MQTT -> HTTP still works, and /healthz shows the participant on domain 0.
    wait_for("mqtt:x/y at http:x/y", T, || {
        let out = common::run(
            "mosquitto_pub",
            &["-h", "127.0.0.1", "-p", "1883", "-t", "x/y", "-m", "v1"],
        );
        assert!(out.status.success(), "{}", out.stderr);
        let (code, body) = curl(&[], "http://127.0.0.1:8080/topics/x/y");
        (code == 200 && body == "v1").then_some(())
    });
    let (code, body) = curl(&[], "http://127.0.0.1:8080/healthz");
    assert_eq!(code, 200, "{body}");
    let v: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["detail"]["dds"]["facts"]["domain"], "0", "{body}");
}
