//! MQTT over WebSocket on the HTTP listener (`/mqtt`, subprotocol `mqtt`)
//! with a real client (paho-mqtt's websockets transport), talking to
//! mosquitto_pub/mosquitto_sub on the embedded broker's TCP listener.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod common;

use std::time::Duration;

use common::{BridgeProc, Streaming, free_port, peer_script, python, run, wait_for};

const T: Duration = Duration::from_secs(20);

fn paho(port: u16, args: &[&str]) -> Streaming {
    let py = python();
    let script = peer_script("mqtt_ws.py");
    let p = port.to_string();
    let mut a = vec![script.as_str(), "127.0.0.1", p.as_str()];
    a.extend_from_slice(args);
    Streaming::spawn(&py, &a)
}

#[test]
fn mqtt_over_websocket_shares_the_http_port() {
    let http_port = free_port();
    let b = BridgeProc::start(&format!(
        r#"
[adapter.mqtt]
listen = "127.0.0.1:0"
[adapter.http]
listen = "127.0.0.1:{http_port}"
"#
    ));
    assert_eq!(
        b.addr("mqtt", "mqtt-ws").port(),
        http_port,
        "served on the HTTP listener"
    );
    let tcp = b.addr("mqtt", "mqtt").port().to_string();

    // WebSocket subscriber, TCP publisher.
    let sub = paho(
        http_port,
        &["--sub", "ws/#", "--count", "1", "--timeout", "20"],
    );
    assert!(
        sub.wait_line(T, |l| l.contains("subscribed")).is_some(),
        "{:?}",
        sub.lines()
    );
    let out = run(
        "mosquitto_pub",
        &[
            "-h",
            "127.0.0.1",
            "-p",
            &tcp,
            "-q",
            "1",
            "-t",
            "ws/a",
            "-m",
            "from-tcp",
        ],
    );
    assert!(out.status.success(), "{}", out.stderr);
    assert!(
        sub.wait_line(T, |l| l.contains("from-tcp")).is_some(),
        "{:?}",
        sub.lines()
    );

    // TCP subscriber, WebSocket publisher (MQTT 5 this time).
    let tsub = Streaming::spawn(
        "mosquitto_sub",
        &[
            "-h",
            "127.0.0.1",
            "-p",
            &tcp,
            "-v",
            "-q",
            "1",
            "-t",
            "tcp/#",
        ],
    );
    // Wait until the subscription is in place: a retained probe comes back.
    wait_for("mosquitto_sub ready", T, || {
        run(
            "mosquitto_pub",
            &["-h", "127.0.0.1", "-p", &tcp, "-t", "tcp/probe", "-m", "p"],
        );
        tsub.lines()
            .iter()
            .any(|l| l.starts_with("tcp/probe"))
            .then_some(())
    });
    let p = paho(http_port, &["--pub", "tcp/b", "from-ws", "--version", "5"]);
    assert!(
        p.wait_line(T, |l| l.contains("published")).is_some(),
        "{:?}",
        p.lines()
    );
    assert!(
        tsub.wait_line(T, |l| l == "tcp/b from-ws").is_some(),
        "{:?}",
        tsub.lines()
    );
}

#[test]
fn mqtt_over_websocket_can_have_its_own_listener_or_none() {
    let ws_port = free_port();
    let b = BridgeProc::start(&format!(
        r#"
[adapter.mqtt]
listen = "127.0.0.1:0"
ws_listen = "127.0.0.1:{ws_port}"
"#
    ));
    assert_eq!(b.addr("mqtt", "mqtt-ws").port(), ws_port);
    let p = paho(ws_port, &["--pub", "x/y", "1"]);
    assert!(
        p.wait_line(T, |l| l.contains("published")).is_some(),
        "{:?}",
        p.lines()
    );

    let b = BridgeProc::start(
        "[adapter.mqtt]\nlisten = \"127.0.0.1:0\"\nws_listen = \"off\"\n[adapter.http]\nlisten = \"127.0.0.1:0\"\n",
    );
    assert!(
        !b.endpoints
            .contains_key(&("mqtt".to_owned(), "mqtt-ws".to_owned()))
    );
}

/// When the bridge stops, an MQTT 5 client over WebSocket gets the broker's
/// DISCONNECT (0x8B, server shutting down) before the process exits, not a
/// dropped connection.
#[test]
fn shutdown_sends_mqtt_over_websocket_clients_a_disconnect() {
    let http_port = free_port();
    let mut b = BridgeProc::start(&format!(
        r#"
[adapter.mqtt]
listen = "127.0.0.1:0"
[adapter.http]
listen = "127.0.0.1:{http_port}"
"#
    ));
    let c = paho(
        http_port,
        &["--version", "5", "--wait-disconnect", "--timeout", "20"],
    );
    assert!(
        c.wait_line(T, |l| l.contains("\"connected\"")).is_some(),
        "{:?}",
        c.lines()
    );
    let st = b.terminate(T).expect("the bridge exits");
    assert!(st.success(), "{st:?}");
    let line = c
        .wait_line(T, |l| l.contains("disconnected"))
        .expect("the client saw the end of the session");
    assert!(line.contains("Server shutting down"), "{line}");
}
