//! The WebSocket endpoint against a real client (Python `websockets`): the
//! JSON protocol both ways through routes, local delivery between clients,
//! retained snapshots, binary frames, errors with `ref`, access control, and a
//! slow client that must not delay others.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod common;

use std::time::{Duration, Instant};

use common::{
    BridgeProc, Streaming, curl, free_port, peer_script, put_json, python, rss_kib, run, wait_for,
};
use serde_json::{Value, json};

fn config(port: u16, extra: &str) -> String {
    format!(
        r#"
[adapter.http]
listen = "127.0.0.1:{port}"

[adapter.ws]
listen = "127.0.0.1:{port}"
{extra}

[[route]]
from = "http:#"
to = ["ws:{{0}}"]

[[route]]
from = "ws:#"
to = ["http:{{0}}"]
"#
    )
}

/// A WebSocket client process; `frames` are parsed JSON lines it printed.
fn client(url: &str, sends: &[Value], recv: usize) -> Streaming {
    client_for(url, sends, recv, 20)
}

fn client_for(url: &str, sends: &[Value], recv: usize, timeout_s: u32) -> Streaming {
    let py = python();
    let script = peer_script("ws_peer.py");
    let mut args: Vec<String> = vec![
        script,
        "run".into(),
        url.into(),
        "--recv".into(),
        recv.to_string(),
        "--timeout".into(),
        timeout_s.to_string(),
    ];
    for s in sends {
        args.push("--send".into());
        args.push(s.to_string());
    }
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    Streaming::spawn(&py, &refs)
}

fn text_frames(s: &Streaming) -> Vec<Value> {
    s.lines()
        .iter()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter_map(|v| {
            v.get("text")
                .and_then(Value::as_str)
                .and_then(|t| serde_json::from_str(t).ok())
        })
        .collect()
}

fn wait_frame(s: &Streaming, what: &str, pred: impl Fn(&Value) -> bool) -> Value {
    wait_for(what, Duration::from_secs(10), || {
        text_frames(s).into_iter().find(|f| pred(f))
    })
}

#[test]
fn ws_and_http_share_a_port_and_bridge_both_ways() {
    let port = free_port();
    let b = BridgeProc::start(&config(port, ""));
    assert_eq!(b.addr("http", "http"), b.addr("ws", "ws"), "one listener");
    let http = b.http("http");
    let ws = format!("ws://127.0.0.1:{port}/ws");

    let sub = client(&ws, &[json!({"op":"sub","topic":"sensors/#","ref":1})], 10);
    wait_frame(&sub, "sub ok", |f| f["op"] == "ok" && f["ref"] == 1);

    // HTTP -> route -> WebSocket.
    put_json(&format!("{http}/topics/sensors/a"), r#"{"v":1}"#);
    let m = wait_frame(&sub, "routed msg", |f| {
        f["op"] == "msg" && f["topic"] == "sensors/a"
    });
    assert_eq!(
        (
            m["payload"]["v"].as_i64(),
            m["format"].as_str(),
            m["origin"].as_str()
        ),
        (Some(1), Some("json"), Some("http"))
    );

    // WebSocket -> route -> HTTP, with the ref echoed.
    let publ = client(
        &ws,
        &[json!({"op":"pub","topic":"cmd/x","payload":{"on":true},"qos":1,"ref":"p1"})],
        1,
    );
    wait_frame(&publ, "pub ok", |f| f["op"] == "ok" && f["ref"] == "p1");
    let got = wait_for("value at http:cmd/x", Duration::from_secs(5), || {
        let (c, body) = curl(&[], &format!("{http}/topics/cmd/x"));
        (c == 200).then_some(body)
    });
    assert_eq!(got, r#"{"on":true}"#);

    // Local delivery between WebSocket clients, no route involved.
    let chat = client(
        &ws,
        &[json!({"op":"sub","topic":"sensors/chat/+","ref":2})],
        10,
    );
    wait_frame(&chat, "chat sub ok", |f| f["op"] == "ok");
    let p2 = client(
        &ws,
        &[json!({"op":"pub","topic":"sensors/chat/1","format":"text","payload":"hi"})],
        1,
    );
    wait_frame(&p2, "pub ok", |f| f["op"] == "ok");
    let m = wait_frame(&chat, "local msg", |f| {
        f["op"] == "msg" && f["topic"] == "sensors/chat/1"
    });
    assert_eq!(m["payload"], "hi");
    assert_eq!(m["format"], "text");
}

#[test]
fn shutdown_closes_websocket_clients_with_1001() {
    let port = free_port();
    let mut b = BridgeProc::start(&config(port, ""));
    let url = format!("ws://127.0.0.1:{port}/ws");
    let ws = client_for(
        &url,
        &[json!({"op": "sub", "topic": "#", "ref": 1})],
        10,
        30,
    );
    wait_frame(&ws, "the sub reply", |f| f["op"] == "ok");
    let st = b
        .terminate(Duration::from_secs(10))
        .expect("the bridge exits");
    assert!(st.success(), "{st:?}");
    let close = ws
        .wait_line(Duration::from_secs(10), |l| l.contains("\"close\""))
        .expect("the client saw the close");
    let v: Value = serde_json::from_str(&close).unwrap();
    // A close frame from the bridge, not a dropped connection (1006).
    assert_eq!(v["close"], 1001, "{close}");
}

#[test]
fn errors_carry_the_ref_and_the_connection_survives() {
    let port = free_port();
    let b = BridgeProc::start(&config(port, ""));
    let ws = format!("ws://{}/ws", b.addr("ws", "ws"));
    let c = client(
        &ws,
        &[
            json!({"op":"nope","ref":1}),
            json!({"op":"sub","topic":"a/#/b","ref":2}),
            json!({"op":"pub","topic":"a/+","payload":1,"ref":3}),
            json!({"op":"pub","topic":"a","payload":1,"qos":7,"ref":4}),
            json!({"op":"unsub","topic":"never","ref":5}),
            json!({"op":"ping","ref":6}),
        ],
        6,
    );
    for r in 1..=5 {
        let f = wait_frame(&c, "error reply", |f| f["ref"] == r);
        assert_eq!(f["op"], "error", "ref {r}: {f}");
        assert!(f["reason"].as_str().is_some_and(|s| !s.is_empty()));
    }
    assert_eq!(wait_frame(&c, "ping reply", |f| f["ref"] == 6)["op"], "ok");
    let metrics = curl(&[], &format!("{}/metrics", b.http("http"))).1;
    assert!(
        metrics
            .lines()
            .any(|l| l.starts_with("switchboard_ws_protocol_errors_total") && !l.ends_with(" 0")),
        "{metrics}"
    );
}

#[test]
fn retained_snapshot_and_binary_frames() {
    let port = free_port();
    let b = BridgeProc::start(&config(port, ""));
    let http = b.http("http");
    let ws = format!("ws://{}/ws", b.addr("ws", "ws"));
    curl(
        &[
            "-X",
            "PUT",
            "-H",
            "Content-Type: text/plain",
            "--data",
            "21.5",
        ],
        &format!("{http}/topics/t/kitchen"),
    );
    wait_for("routed into ws:", Duration::from_secs(5), || {
        let v: Value = serde_json::from_str(&curl(&[], &format!("{http}/api/topics")).1).ok()?;
        v.as_array()?
            .iter()
            .any(|t| t["address"] == "ws:t/kitchen")
            .then_some(())
    });
    let c = client(
        &ws,
        &[json!({"op":"sub","topic":"t/+","retained":true,"ref":1})],
        2,
    );
    let m = wait_frame(&c, "retained value", |f| f["op"] == "msg");
    assert_eq!(
        (m["topic"].as_str(), m["payload"].as_str()),
        (Some("t/kitchen"), Some("21.5"))
    );

    // A binary publish: marker op, then the bytes in a binary frame.
    let py = python();
    let script = peer_script("ws_peer.py");
    let marker = json!({"op":"pub","topic":"bin/x","binary":true,"ref":9}).to_string();
    let out = run(
        &py,
        &[
            &script,
            "run",
            &ws,
            "--send",
            &marker,
            "--send-binary",
            "AAH/",
            "--recv",
            "1",
        ],
    );
    assert!(
        out.stdout.contains(r#"\"ref\": 9"#) || out.stdout.contains(r#"\"ref\":9"#),
        "{}",
        out.stdout
    );
    let body = wait_for("binary at http:bin/x", Duration::from_secs(5), || {
        let o = run(
            "curl",
            &[
                "-s",
                "-o",
                "/dev/null",
                "-w",
                "%{http_code} %{size_download}",
                &format!("{http}/topics/bin/x"),
            ],
        );
        o.stdout.starts_with("200").then_some(o.stdout)
    });
    assert_eq!(body, "200 3");
    // A binary subscriber gets a marker and the bytes.
    let sub = client(
        &ws,
        &[json!({"op":"sub","topic":"bin/#","retained":true,"binary":true})],
        3,
    );
    wait_for("binary frame", Duration::from_secs(10), || {
        sub.lines()
            .iter()
            .any(|l| l.contains(r#""binary": "AAH/""#))
            .then_some(())
    });
    assert!(
        text_frames(&sub)
            .iter()
            .any(|f| f["op"] == "msg" && f["binary"] == true)
    );
}

const ACL: &str = r#"
[[adapter.http.token]]
token = "s3cret"
read = ["sensors/#"]
write = ["commands/#", "other/#"]
"#;

#[test]
fn one_access_model_for_rest_sse_and_websocket() {
    let port = free_port();
    let cfg = config(port, "").replace("[adapter.ws]", &format!("{ACL}\n[adapter.ws]"));
    // Writers: a second token able to write everything, for setting values up.
    let cfg = cfg.replace(
        "[adapter.ws]",
        "[[adapter.http.token]]\ntoken = \"admin\"\nread = [\"#\"]\nwrite = [\"#\"]\n\n[adapter.ws]",
    );
    let b = BridgeProc::start(&cfg);
    let http = b.http("http");
    let ws = format!("ws://127.0.0.1:{port}/ws");
    let admin = "Authorization: Bearer admin";

    // REST: 401 without a token, 403 outside the lists.
    assert_eq!(curl(&[], &format!("{http}/topics/sensors/a")).0, 401);
    assert_eq!(
        curl(&[], &format!("{http}/topics/sensors/a?token=wrong")).0,
        401
    );
    assert_eq!(
        curl(
            &["-H", admin, "-X", "PUT", "--data", "1"],
            &format!("{http}/topics/sensors/a")
        )
        .0,
        204
    );
    assert_eq!(
        curl(
            &["-H", admin, "-X", "PUT", "--data", "2"],
            &format!("{http}/topics/secret/b")
        )
        .0,
        204
    );
    assert_eq!(
        curl(&[], &format!("{http}/topics/sensors/a?token=s3cret")).0,
        200
    );
    assert_eq!(
        curl(&[], &format!("{http}/topics/secret/b?token=s3cret")).0,
        403
    );
    assert_eq!(
        curl(
            &["-X", "PUT", "--data", "1"],
            &format!("{http}/topics/sensors/a?token=s3cret")
        )
        .0,
        403
    );
    assert_eq!(
        curl(
            &["-X", "PUT", "--data", "1"],
            &format!("{http}/topics/commands/a?token=s3cret")
        )
        .0,
        204
    );
    // /api/topics lists only readable topics; /healthz stays open.
    let topics = curl(&[], &format!("{http}/api/topics?token=s3cret")).1;
    assert!(
        topics.contains("sensors/a") && !topics.contains("secret/b"),
        "{topics}"
    );
    assert_eq!(curl(&[], &format!("{http}/healthz")).0, 200);
    assert_eq!(curl(&[], &format!("{http}/metrics")).0, 401);

    // SSE: a pattern with no readable topic is refused; `#` delivers only readable topics.
    assert_eq!(
        curl(&[], &format!("{http}/events?topic=secret/%23&token=s3cret")).0,
        403
    );
    let sse = Streaming::spawn(
        "curl",
        &["-s", "-N", &format!("{http}/events?topic=%23&token=s3cret")],
    );
    assert!(
        sse.wait_line(Duration::from_secs(5), |l| l == ": open")
            .is_some()
    );
    curl(
        &["-H", admin, "-X", "PUT", "--data", "x"],
        &format!("{http}/topics/secret/c"),
    );
    curl(
        &["-H", admin, "-X", "PUT", "--data", "y"],
        &format!("{http}/topics/sensors/c"),
    );
    assert!(
        sse.wait_line(Duration::from_secs(5), |l| l.contains("sensors/c"))
            .is_some()
    );
    assert!(!sse.lines().iter().any(|l| l.contains("secret/c")));

    // WebSocket: the upgrade needs a token too.
    let refused = run(&python(), &[&peer_script("ws_peer.py"), "run", &ws]);
    assert!(
        refused.stdout.contains(r#""status": 401"#),
        "{}",
        refused.stdout
    );
    let c = client(
        &format!("{ws}?token=s3cret"),
        &[
            json!({"op":"sub","topic":"secret/#","ref":1}),
            json!({"op":"sub","topic":"#","ref":2}),
            json!({"op":"pub","topic":"sensors/x","payload":1,"ref":3}),
            json!({"op":"pub","topic":"other/x","payload":1,"ref":4}),
        ],
        10,
    );
    assert_eq!(
        wait_frame(&c, "sub refused", |f| f["ref"] == 1)["op"],
        "error"
    );
    assert_eq!(
        wait_frame(&c, "sub accepted", |f| f["ref"] == 2)["op"],
        "ok"
    );
    assert_eq!(
        wait_frame(&c, "pub refused", |f| f["ref"] == 3)["op"],
        "error"
    );
    assert_eq!(
        wait_frame(&c, "pub accepted", |f| f["ref"] == 4)["op"],
        "ok"
    );
    curl(
        &["-H", admin, "-X", "PUT", "--data", "z"],
        &format!("{http}/topics/secret/d"),
    );
    curl(
        &["-H", admin, "-X", "PUT", "--data", "w"],
        &format!("{http}/topics/sensors/d"),
    );
    wait_frame(&c, "readable msg", |f| {
        f["op"] == "msg" && f["topic"] == "sensors/d"
    });
    assert!(
        !text_frames(&c)
            .iter()
            .any(|f| f["topic"] == "secret/d" || f["topic"] == "other/x")
    );
}

#[test]
fn a_slow_client_does_not_delay_others_and_memory_stays_bounded() {
    let port = free_port();
    let b = BridgeProc::start(&config(port, "client_queue = 5000\nslow_timeout = \"1s\""));
    let ws = format!("ws://127.0.0.1:{port}/ws");
    let pid = b.pid().unwrap();
    let py = python();
    let script = peer_script("ws_peer.py");
    let slow = Streaming::spawn(&py, &[&script, "slow", &ws, "--topic", "load/#"]);
    assert!(
        slow.wait_line(Duration::from_secs(10), |l| l.contains("subscribed"))
            .is_some()
    );
    let n = 100_000usize;
    let fast = client_for(
        &ws,
        &[json!({"op":"sub","topic":"load/#","ref":1})],
        n + 1,
        300,
    );
    wait_frame(&fast, "fast sub ok", |f| f["op"] == "ok");
    let rss_before = rss_kib(pid);
    let start = Instant::now();
    let flood = run(
        &py,
        &[
            &script,
            "flood",
            &ws,
            "--topic",
            "load/x",
            "--count",
            &n.to_string(),
        ],
    );
    assert!(flood.stdout.contains("sent"), "{flood:?}");
    let flood_time = start.elapsed();
    // The fast client gets the last message soon after the publisher finished.
    let last = format!("\\\"i\\\": {}", n - 1);
    let last_alt = format!("\\\"i\\\":{}", n - 1);
    assert!(
        fast.wait_line(Duration::from_secs(30), |l| l.contains(&last)
            || l.contains(&last_alt))
            .is_some(),
        "fast client did not get the last message"
    );
    let lag = start.elapsed() - flood_time;
    assert!(
        lag < Duration::from_secs(10),
        "fast client lagged {lag:?} behind the publisher"
    );
    // The slow client was dropped/closed, with counters, and memory stayed bounded.
    let metrics = curl(&[], &format!("{}/metrics", b.http("http"))).1;
    let value = |name: &str| -> u64 {
        metrics
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    assert!(
        value("switchboard_ws_dropped_total") > 0 || value("switchboard_ws_slow_closed_total") > 0,
        "{metrics}"
    );
    assert!(
        value("switchboard_ws_slow_closed_total") >= 1,
        "the slow client is closed with 1008: {metrics}"
    );
    let rss_after = rss_kib(pid);
    assert!(
        rss_after < rss_before + 64 * 1024,
        "RSS grew from {rss_before} KiB to {rss_after} KiB"
    );
}
