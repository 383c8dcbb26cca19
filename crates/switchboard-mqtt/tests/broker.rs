//! The embedded broker against real MQTT clients (mosquitto_pub/mosquitto_sub,
//! MQTT 3.1.1 and 5) and raw sockets for malformed input.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use common::*;
use switchboard_model::{Ack, Delivery, Message, Qos};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const BROKER: &str = r#"listen = "127.0.0.1:0""#;

async fn wait_subs(s: &Started, n: usize) {
    let h = s.handle.clone();
    wait_for("subscriptions", move || h.subscriptions() >= n).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pub_sub_every_qos_both_versions() {
    let mut s = start("mqtt", BROKER).await;
    let port = s.addr.port();
    let mut expect = 0;
    for v in ["mqttv311", "mqttv5"] {
        for q in ["0", "1", "2"] {
            let topic = format!("t/{v}/{q}");
            let sub = sub(port, &["-V", v, "-q", q, "-C", "1", "-t", &topic]);
            expect += 1;
            wait_subs(&s, expect).await;
            assert!(publish(port, &["-V", v, "-q", q, "-t", &topic, "-m", "hello"]).await);
            assert_eq!(sub.lines().await, [format!("{topic} hello")]);
            let m = within("ingress", s.harness.ingress_rx.recv())
                .await
                .unwrap();
            assert_eq!(m.topic.as_str(), topic);
            assert_eq!(m.qos.as_u8().to_string(), q);
            assert_eq!(&m.payload[..], b"hello");
            assert_eq!(&*m.origin.adapter, "mqtt");
            // The subscriber's clean session ended with it.
            expect -= 1;
            wait_subs_eq(&s, expect).await;
        }
    }
}

async fn wait_subs_eq(s: &Started, n: usize) {
    let h = s.handle.clone();
    wait_for("subscriptions to drop", move || h.subscriptions() == n).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retained_late_subscriber_and_clear() {
    let s = start("mqtt", BROKER).await;
    let port = s.addr.port();
    assert!(publish(port, &["-q", "1", "-r", "-t", "r/a", "-m", "va"]).await);
    assert!(publish(port, &["-V", "mqttv5", "-r", "-t", "r/b", "-m", "vb"]).await);
    // The retained value is the router's last value.
    let e = s
        .ctx
        .book
        .get("mqtt", &switchboard_model::Topic::new("r/a").unwrap());
    assert!(e.unwrap().retained.is_some());
    let mut lines = sub(port, &["-C", "2", "-t", "r/#"]).lines().await;
    lines.sort();
    assert_eq!(lines, ["r/a va", "r/b vb"]);
    // An empty retained publication clears it.
    assert!(publish(port, &["-r", "-t", "r/a", "-n"]).await);
    let lines = sub(port, &["-C", "1", "-t", "r/#", "-V", "mqttv5"])
        .lines()
        .await;
    assert_eq!(lines, ["r/b vb"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wildcards_and_dollar_topics() {
    let s = start("mqtt", BROKER).await;
    let port = s.addr.port();
    let plus = sub(port, &["-C", "2", "-t", "w/+/x"]);
    let hash = sub(port, &["-C", "3", "-t", "#"]);
    wait_subs(&s, 2).await;
    for t in ["w/1/x", "$SYS/hidden", "w/2/y", "w/3/x"] {
        assert!(publish(port, &["-t", t, "-m", "m"]).await);
    }
    assert_eq!(plus.lines().await, ["w/1/x m", "w/3/x m"]);
    assert_eq!(hash.lines().await, ["w/1/x m", "w/2/y m", "w/3/x m"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn will_on_abnormal_disconnect() {
    let s = start("mqtt", BROKER).await;
    let port = s.addr.port();
    let watcher = sub(port, &["-C", "1", "-t", "wills/#"]);
    let mut doomed = sub(
        port,
        &[
            "-t",
            "x",
            "--will-topic",
            "wills/d",
            "--will-payload",
            "gone",
            "--will-qos",
            "1",
        ],
    );
    wait_subs(&s, 2).await;
    doomed.child.kill().await.unwrap();
    assert_eq!(watcher.lines().await, ["wills/d gone"]);
    // A clean DISCONNECT discards the will.
    let w2 = sub(port, &["-C", "1", "-t", "wills/#", "-t", "end"]);
    wait_subs(&s, 2).await;
    assert!(
        publish(
            port,
            &[
                "--will-topic",
                "wills/e",
                "--will-payload",
                "no",
                "-t",
                "end",
                "-m",
                "1"
            ]
        )
        .await
    );
    assert_eq!(w2.lines().await, ["end 1"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn routed_messages_reach_subscribers() {
    let s = start("mqtt", BROKER).await;
    let port = s.addr.port();
    let v5 = sub(
        port,
        &[
            "-V",
            "mqttv5",
            "-C",
            "1",
            "-q",
            "1",
            "-t",
            "from/router",
            "-F",
            "%t %p %C",
        ],
    );
    wait_subs(&s, 1).await;
    let m = Message::json("mqtt:from/router", r#"{"a":1}"#)
        .unwrap()
        .with_qos(Qos::AtLeastOnce);
    s.ctx
        .deliveries
        .push(Delivery {
            message: m.into(),
            ack: Ack::none(),
        })
        .await;
    assert_eq!(
        v5.lines().await,
        [r#"from/router {"a":1} application/json"#]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn persistent_session_keeps_qos1_while_offline() {
    let s = start("mqtt", BROKER).await;
    let port = s.addr.port();
    // Create the session and subscription, then leave.
    let first = sub(
        port,
        &["-c", "-i", "durable", "-q", "1", "-t", "p/#", "-C", "1"],
    );
    wait_subs(&s, 1).await;
    assert!(publish(port, &["-q", "1", "-t", "p/0", "-m", "m0"]).await);
    assert_eq!(first.lines().await, ["p/0 m0"]);
    let h = s.handle.clone();
    wait_for("offline", move || h.clients() == 0).await;
    for i in 1..=3 {
        assert!(
            publish(
                port,
                &["-q", "1", "-t", &format!("p/{i}"), "-m", &format!("m{i}")]
            )
            .await
        );
    }
    let back = sub(
        port,
        &["-c", "-i", "durable", "-q", "1", "-t", "p/#", "-C", "3"],
    );
    assert_eq!(back.lines().await, ["p/1 m1", "p/2 m2", "p/3 m3"]);
    assert_eq!(s.handle.sessions(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn login_required_once_users_exist() {
    let s = start(
        "mqtt",
        r##"listen = "127.0.0.1:0"
        [[user]]
        username = "dev"
        password = "pw"
        read = ["s/#"]
        write = ["s/#"]
        [[user]]
        username = "admin"
        password = "root"
        read = ["#"]
        write = ["#"]"##,
    )
    .await;
    let port = s.addr.port();
    assert!(!publish(port, &["-t", "s/1", "-m", "x"]).await);
    assert!(!publish(port, &["-u", "dev", "-P", "bad", "-t", "s/1", "-m", "x"]).await);
    let ok = sub(port, &["-u", "dev", "-P", "pw", "-C", "1", "-t", "s/#"]);
    let all = sub(port, &["-u", "admin", "-P", "root", "-C", "1", "-t", "#"]);
    wait_subs(&s, 2).await;
    // dev may not publish outside s/#: dropped (QoS 1 is answered 0x87 on MQTT 5).
    assert!(
        publish(
            port,
            &[
                "-V", "mqttv5", "-u", "dev", "-P", "pw", "-t", "other/1", "-m", "no"
            ]
        )
        .await
    );
    assert!(publish(port, &["-u", "dev", "-P", "pw", "-t", "s/1", "-m", "x"]).await);
    assert_eq!(ok.lines().await, ["s/1 x"]);
    assert_eq!(all.lines().await, ["s/1 x"]);
    // dev may not subscribe outside s/#.
    let out = within(
        "a refused subscriber",
        tokio::process::Command::new("mosquitto_sub")
            .args(["-h", "127.0.0.1", "-p", &port.to_string()])
            .args([
                "-u", "dev", "-P", "pw", "-C", "1", "-W", "3", "-t", "other/#",
            ])
            .kill_on_drop(true)
            .output(),
    )
    .await
    .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("denied"), "mosquitto_sub said: {err}");
}

/// CONNECT 3.1.1, clean session, empty client id.
const CONNECT4: &[u8] = &[0x10, 12, 0, 4, b'M', b'Q', b'T', b'T', 4, 2, 0, 60, 0, 0];
/// CONNECT 5, clean start, empty client id.
const CONNECT5: &[u8] = &[0x10, 13, 0, 4, b'M', b'Q', b'T', b'T', 5, 2, 0, 60, 0, 0, 0];

/// Connects raw, sends CONNECT then `bad`; returns every byte the broker
/// sent until it closed the connection.
async fn raw_session(port: u16, connect: &[u8], bad: &[u8], half_close: bool) -> Vec<u8> {
    let mut c = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    c.write_all(connect).await.unwrap();
    c.write_all(bad).await.unwrap();
    if half_close {
        c.shutdown().await.unwrap();
    }
    let mut got = Vec::new();
    within(
        "the broker to close the connection",
        c.read_to_end(&mut got),
    )
    .await
    .ok();
    got
}

/// The reason code of the DISCONNECT that follows the CONNACK.
fn disconnect_reason(got: &[u8]) -> u8 {
    assert_eq!(got[0], 0x20, "CONNACK first: {got:?}");
    let d = &got[2 + got[1] as usize..];
    assert_eq!(d[0], 0xe0, "then DISCONNECT: {got:?}");
    d[2]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_packets_disconnect_only_that_client() {
    let s = start(
        "mqtt",
        r#"listen = "127.0.0.1:0"
        max_payload = "1KiB""#,
    )
    .await;
    let port = s.addr.port();
    let bystander = sub(port, &["-C", "1", "-t", "still/here"]);
    wait_subs(&s, 1).await;
    let connack4 = [0x20, 2, 0, 0];
    // Truncated PUBLISH then end of stream.
    let got = raw_session(port, CONNECT4, &[0x30, 10, 0, 3, b'a'], true).await;
    assert_eq!(got, connack4);
    // Remaining length over four bytes.
    let got = raw_session(port, CONNECT4, &[0x30, 0xff, 0xff, 0xff, 0xff, 0x01], false).await;
    assert_eq!(got, connack4);
    // Topic that is not UTF-8.
    let got = raw_session(port, CONNECT4, &[0x30, 5, 0, 2, 0xc3, 0x28, b'x'], false).await;
    assert_eq!(got, connack4);
    // Wildcard in a PUBLISH topic.
    let got = raw_session(
        port,
        CONNECT4,
        &[0x30, 6, 0, 3, b'a', b'/', b'#', b'x'],
        false,
    )
    .await;
    assert_eq!(got, connack4);
    // Reserved flags of SUBSCRIBE wrong.
    let got = raw_session(port, CONNECT4, &[0x80, 6, 0, 1, 0, 1, b'a', 0], false).await;
    assert_eq!(got, connack4);
    // A second CONNECT [MQTT-3.1.0-2].
    let got = raw_session(port, CONNECT4, CONNECT4, false).await;
    assert_eq!(got, connack4);
    // MQTT 5: over max_payload -> DISCONNECT 0x95.
    let body_len: usize = 4 + 1100;
    let mut big = vec![
        0x30,
        (body_len % 128) as u8 | 0x80,
        (body_len / 128) as u8,
        0,
        1,
        b'a',
        0,
    ];
    big.extend(std::iter::repeat_n(b'x', 1100));
    let got = raw_session(port, CONNECT5, &big, false).await;
    assert_eq!(disconnect_reason(&got), 0x95);
    // MQTT 5: wildcard topic -> DISCONNECT 0x81 (malformed).
    let got = raw_session(
        port,
        CONNECT5,
        &[0x30, 7, 0, 3, b'a', b'/', b'+', 0, b'x'],
        false,
    )
    .await;
    assert_eq!(disconnect_reason(&got), 0x81);
    // Unsupported protocol level -> CONNACK 0x01.
    let got = raw_session(
        port,
        &[0x10, 12, 0, 4, b'M', b'Q', b'T', b'T', 3, 2, 0, 60, 0, 0],
        &[],
        false,
    )
    .await;
    assert_eq!(got, [0x20, 2, 0, 1]);
    // Not CONNECT first: closed without a word.
    let got = raw_session(port, &[0xc0, 0], &[], false).await;
    assert!(got.is_empty());
    // The others are still served.
    assert!(publish(port, &["-t", "still/here", "-m", "yes"]).await);
    assert_eq!(bystander.lines().await, ["still/here yes"]);
    assert!(
        s.ctx
            .metrics
            .errors
            .load(std::sync::atomic::Ordering::Relaxed)
            >= 8
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keep_alive_expiry_publishes_will() {
    let s = start("mqtt", BROKER).await;
    let port = s.addr.port();
    let watcher = sub(port, &["-C", "1", "-t", "ka/#"]);
    wait_subs(&s, 1).await;
    // CONNECT 3.1.1, keep alive 1 s, will "ka/w" = "silent", then silence.
    let connect = [
        0x10, 24, 0, 4, b'M', b'Q', b'T', b'T', 4, 0x06, 0, 1, 0, 0, 0, 4, b'k', b'a', b'/', b'w',
        0, 6, b's', b'i', b'l', b'e',
    ];
    let mut c = connect.to_vec();
    c.extend_from_slice(b"nt");
    c[1] = (c.len() - 2) as u8;
    let t0 = std::time::Instant::now();
    let got = raw_session(port, &c, &[], false).await;
    assert_eq!(got, [0x20, 2, 0, 0]);
    assert!(t0.elapsed() >= Duration::from_millis(1400));
    assert_eq!(watcher.lines().await, ["ka/w silent"]);
}

/// Traffic renews the keep-alive (the broker's timer is set from the last
/// read, not per packet): a client that pings every 0.5 s with keep alive
/// 1 s (deadline 1.5 s) stays for 3.5 s, then is dropped about 1.5 s after
/// it falls silent.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keep_alive_is_renewed_by_traffic_then_expires() {
    let s = start("mqtt", BROKER).await;
    let port = s.addr.port();
    let mut c = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    // CONNECT 3.1.1, clean session, keep alive 1 s, client id "kp".
    let connect = [
        0x10, 14, 0, 4, b'M', b'Q', b'T', b'T', 4, 0x02, 0, 1, 0, 2, b'k', b'p',
    ];
    c.write_all(&connect).await.unwrap();
    let mut ack = [0u8; 4];
    within("CONNACK", c.read_exact(&mut ack)).await.unwrap();
    assert_eq!(ack, [0x20, 2, 0, 0]);
    for _ in 0..7 {
        // The client's own pace, well inside its keep alive.
        tokio::time::sleep(Duration::from_millis(500)).await;
        c.write_all(&[0xC0, 0]).await.unwrap();
        let mut resp = [0u8; 2];
        within("PINGRESP", c.read_exact(&mut resp))
            .await
            .expect("still connected");
        assert_eq!(resp, [0xD0, 0]);
    }
    let silent = std::time::Instant::now();
    let mut rest = Vec::new();
    within(
        "the broker to drop the silent client",
        c.read_to_end(&mut rest),
    )
    .await
    .ok();
    let after = silent.elapsed();
    assert!(
        after >= Duration::from_millis(1400) && after < Duration::from_secs(4),
        "dropped {after:?} after the last ping"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn v5_will_delay() {
    let s = start("mqtt", BROKER).await;
    let port = s.addr.port();
    let watcher = sub(port, &["-C", "1", "-t", "wd/#"]);
    let mut doomed = sub(
        port,
        &[
            "-V",
            "mqttv5",
            "-t",
            "x",
            "-i",
            "delayed",
            "--will-topic",
            "wd/a",
            "--will-payload",
            "late",
            "-D",
            "will",
            "will-delay-interval",
            "1",
            "-D",
            "connect",
            "session-expiry-interval",
            "30",
        ],
    );
    wait_subs(&s, 2).await;
    let t0 = std::time::Instant::now();
    doomed.child.kill().await.unwrap();
    assert_eq!(watcher.lines().await, ["wd/a late"]);
    assert!(
        t0.elapsed() >= Duration::from_millis(900),
        "{:?}",
        t0.elapsed()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_never_reads_does_not_stall_others() {
    let mut s = start(
        "mqtt",
        r#"listen = "127.0.0.1:0"
        max_queued = 100"#,
    )
    .await;
    s.drain_ingress();
    let port = s.addr.port();
    // A raw client subscribes at QoS 0 and then never reads.
    let mut stuck = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    stuck.write_all(CONNECT4).await.unwrap();
    stuck
        .write_all(&[
            0x82, 12, 0, 1, 0, 7, b'f', b'l', b'o', b'o', b'd', b'/', b'#', 0,
        ])
        .await
        .unwrap();
    let mut healthy = sub(port, &["-t", "flood/#"]);
    wait_subs(&s, 2).await;
    // 3000 x 4 KiB in batches, each read by the healthy subscriber before
    // the next: far more than the stuck client's socket buffers hold.
    let line = format!("{}\n", "x".repeat(4096));
    let mut publisher = tokio::process::Command::new("mosquitto_pub")
        .args([
            "-h",
            "127.0.0.1",
            "-p",
            &port.to_string(),
            "-t",
            "flood/x",
            "-l",
        ])
        .stdin(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut stdin = publisher.stdin.take().unwrap();
    let mut got = 0;
    for _ in 0..30 {
        stdin.write_all(line.repeat(100).as_bytes()).await.unwrap();
        stdin.flush().await.unwrap();
        got += healthy
            .read_until("a batch", |l| l.len() >= 100)
            .await
            .len();
    }
    assert_eq!(got, 3000);
    drop(stdin);
    within("the publisher", publisher.wait()).await.unwrap();
    let dropped = s
        .ctx
        .metrics
        .extra()
        .into_iter()
        .find(|c| c.name == "mqtt_client_queue_full")
        .unwrap()
        .get();
    assert!(
        dropped > 0,
        "the stuck client's queue overflowed and was counted"
    );
    drop(stuck);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn max_clients_refused_with_a_reason() {
    let s = start(
        "mqtt",
        r#"listen = "127.0.0.1:0"
        max_clients = 1"#,
    )
    .await;
    let port = s.addr.port();
    let _one = sub(port, &["-t", "a"]);
    wait_subs(&s, 1).await;
    let got = raw_session(port, CONNECT4, &[], false).await;
    assert_eq!(got, [0x20, 2, 0, 3], "3.1.1: server unavailable");
    let got = raw_session(port, CONNECT5, &[], false).await;
    assert_eq!(&got[..4], &[0x20, 3, 0, 0x97], "5: quota exceeded");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shared_subscriptions_split_the_stream() {
    let s = start("mqtt", BROKER).await;
    let port = s.addr.port();
    let mut a = sub(port, &["-V", "mqttv5", "-t", "$share/g/job/#"]);
    let mut b = sub(port, &["-t", "$share/g/job/#"]);
    wait_subs(&s, 2).await;
    for i in 0..10 {
        assert!(publish(port, &["-t", "job/n", "-m", &i.to_string()]).await);
    }
    let ga = a.read_until("a's share", |l| l.len() >= 5).await;
    let gb = b.read_until("b's share", |l| l.len() >= 5).await;
    let mut all: Vec<String> = ga.into_iter().chain(gb).collect();
    all.sort();
    all.dedup();
    assert_eq!(all.len(), 10);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serves_any_byte_stream_for_mqtt_over_websocket() {
    let s = start("mqtt", BROKER).await;
    let port = s.addr.port();
    // What a WebSocket endpoint would do: hand the broker a byte stream.
    let (mut client, server) = tokio::io::duplex(64 * 1024);
    let handle = s.handle.clone();
    let served = tokio::spawn(async move { handle.serve(server, "duplex-peer").await });
    client.write_all(CONNECT4).await.unwrap();
    client
        .write_all(&[0x82, 8, 0, 1, 0, 3, b'w', b'/', b'#', 0])
        .await
        .unwrap();
    let mut buf = [0u8; 9];
    within("CONNACK + SUBACK", client.read_exact(&mut buf))
        .await
        .unwrap();
    assert_eq!(buf, [0x20, 2, 0, 0, 0x90, 3, 0, 1, 0]);
    assert!(publish(port, &["-t", "w/s", "-m", "hi"]).await);
    let mut publish_bytes = [0u8; 9];
    within("PUBLISH", client.read_exact(&mut publish_bytes))
        .await
        .unwrap();
    assert_eq!(publish_bytes, [0x30, 7, 0, 3, b'w', b'/', b's', b'h', b'i']);
    client.write_all(&[0xe0, 0]).await.unwrap();
    within("serve to return", served).await.unwrap().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn v5_topic_aliases_from_clients() {
    let s = start("mqtt", BROKER).await;
    let port = s.addr.port();
    let watcher = sub(port, &["-C", "2", "-t", "al/#"]);
    wait_subs(&s, 1).await;
    let set = [0x30, 11, 0, 4, b'a', b'l', b'/', b'x', 3, 0x23, 0, 1, b'1'];
    let use_alias = [0x30, 7, 0, 0, 3, 0x23, 0, 1, b'2'];
    let unknown_alias = [0x30, 7, 0, 0, 3, 0x23, 0, 2, b'3'];
    let mut bad: Vec<u8> = Vec::new();
    bad.extend(set);
    bad.extend(use_alias);
    bad.extend(unknown_alias);
    let got = raw_session(port, CONNECT5, &bad, false).await;
    assert_eq!(disconnect_reason(&got), 0x82);
    assert_eq!(watcher.lines().await, ["al/x 1", "al/x 2"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn v5_subscription_identifiers() {
    let s = start("mqtt", BROKER).await;
    let port = s.addr.port();
    let mut c = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    c.write_all(CONNECT5).await.unwrap();
    // SUBSCRIBE id 1, properties: subscription identifier 42; filter "si/#" QoS 0.
    c.write_all(&[0x82, 12, 0, 1, 2, 0x0b, 42, 0, 4, b's', b'i', b'/', b'#', 0])
        .await
        .unwrap();
    // CONNACK (length in byte 1), then SUBACK: 0x90 4, id, props 0, code 0.
    let mut head = [0u8; 2];
    within("CONNACK", c.read_exact(&mut head)).await.unwrap();
    let mut rest = vec![0u8; head[1] as usize];
    within("CONNACK body", c.read_exact(&mut rest))
        .await
        .unwrap();
    let mut suback = [0u8; 6];
    within("SUBACK", c.read_exact(&mut suback)).await.unwrap();
    assert_eq!(suback, [0x90, 4, 0, 1, 0, 0]);
    assert!(publish(port, &["-t", "si/a", "-m", "z"]).await);
    // PUBLISH: 0x30 len, topic "si/a", props [0x0b 42], payload "z".
    let mut p = [0u8; 11];
    within("PUBLISH", c.read_exact(&mut p)).await.unwrap();
    assert_eq!(p, [0x30, 10, 0, 4, b's', b'i', b'/', b'a', 2, 0x0b, 42]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn v5_unsupported_authentication_method_refused_with_0x8c() {
    let s = start("mqtt", BROKER).await;
    let port = s.addr.port();
    // CONNECT 5 with property Authentication Method (0x15) "x".
    let connect = [
        0x10, 17, 0, 4, b'M', b'Q', b'T', b'T', 5, 2, 0, 60, 4, 0x15, 0, 1, b'x', 0, 0,
    ];
    let got = raw_session(port, &connect, &[], false).await;
    assert_eq!(got[0], 0x20, "a CONNACK: {got:?}");
    assert_eq!(got[3], 0x8C, "Bad authentication method: {got:?}");
    // The same through a real client: it is refused.
    assert!(
        !publish(
            port,
            &[
                "-V",
                "mqttv5",
                "-D",
                "connect",
                "authentication-method",
                "x"
            ]
            .iter()
            .chain(&["-t", "a/x", "-m", "1"])
            .copied()
            .collect::<Vec<_>>()
        )
        .await
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn v5_client_maximum_packet_size_is_respected() {
    let s = start("mqtt", BROKER).await;
    let port = s.addr.port();
    // The subscriber accepts packets of at most 64 bytes: a 100-byte message
    // is not sent to it (dropped, [MQTT-3.1.2-25]); a small one is.
    let small = sub(
        port,
        &[
            "-V",
            "mqttv5",
            "-D",
            "connect",
            "maximum-packet-size",
            "64",
            "-C",
            "1",
            "-t",
            "mp/#",
        ],
    );
    wait_subs(&s, 1).await;
    let big = "b".repeat(100);
    assert!(publish(port, &["-V", "mqttv5", "-t", "mp/big", "-m", &big]).await);
    assert!(publish(port, &["-V", "mqttv5", "-t", "mp/small", "-m", "s"]).await);
    assert_eq!(small.lines().await, ["mp/small s"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn v5_retain_as_published() {
    let s = start("mqtt", BROKER).await;
    let port = s.addr.port();
    let fmt = ["-F", "%r %t %p"];
    let rap = sub(
        port,
        &[
            &[
                "-V",
                "mqttv5",
                "--retain-as-published",
                "-C",
                "1",
                "-t",
                "rp/#",
            ][..],
            &fmt[..],
        ]
        .concat(),
    );
    let plain = sub(
        port,
        &[&["-V", "mqttv5", "-C", "1", "-t", "rp/#"][..], &fmt[..]].concat(),
    );
    wait_subs(&s, 2).await;
    assert!(publish(port, &["-V", "mqttv5", "-r", "-t", "rp/a", "-m", "v"]).await);
    // Live delivery: the retain flag as published only with the option
    // [MQTT-3.3.1-12, 3.3.1-13].
    assert_eq!(rap.lines().await, ["1 rp/a v"]);
    assert_eq!(plain.lines().await, ["0 rp/a v"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn v5_session_expiry_interval() {
    let s = start("mqtt", BROKER).await;
    let port = s.addr.port();
    let h = s.handle.clone();
    // Clean Start 0 with Session Expiry Interval 0: the session ends with
    // the connection [MQTT-3.1.2-23].
    let gone = sub(
        port,
        &[
            "-V", "mqttv5", "-c", "-x", "0", "-i", "e0", "-q", "1", "-t", "se/#", "-C", "1",
        ],
    );
    wait_subs(&s, 1).await;
    assert!(publish(port, &["-q", "1", "-t", "se/a", "-m", "1"]).await);
    assert_eq!(gone.lines().await, ["se/a 1"]);
    let h2 = h.clone();
    wait_for("offline", move || h2.clients() == 0).await;
    assert_eq!(h.sessions(), 0);
    assert_eq!(h.subscriptions(), 0);
    // Session Expiry Interval 3: kept while offline (a QoS 1 message queued
    // for it is delivered on return), then dropped once it expired.
    let keep = sub(
        port,
        &[
            "-V", "mqttv5", "-c", "-x", "3", "-i", "e3", "-q", "1", "-t", "se/#", "-C", "1",
        ],
    );
    wait_subs(&s, 1).await;
    assert!(publish(port, &["-q", "1", "-t", "se/b", "-m", "2"]).await);
    assert_eq!(keep.lines().await, ["se/b 2"]);
    let h2 = h.clone();
    wait_for("offline", move || h2.clients() == 0).await;
    assert_eq!(h.sessions(), 1);
    assert!(publish(port, &["-q", "1", "-t", "se/c", "-m", "3"]).await);
    let back = sub(
        port,
        &[
            "-V", "mqttv5", "-c", "-x", "3", "-i", "e3", "-q", "1", "-t", "se/#", "-C", "1",
        ],
    );
    assert_eq!(back.lines().await, ["se/c 3"]);
    let h2 = h.clone();
    wait_for("offline", move || h2.clients() == 0).await;
    let h2 = h.clone();
    wait_for("the session to expire", move || h2.sessions() == 0).await;
    assert_eq!(h.subscriptions(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn v5_receive_maximum_enforced_with_0x93() {
    let s = start(
        "mqtt",
        r#"listen = "127.0.0.1:0"
        max_inflight = 2"#,
    )
    .await;
    let port = s.addr.port();
    // Three QoS 2 PUBLISH (ids 1, 2, 3) with no PUBREL: one more than the
    // Receive Maximum of 2 the CONNACK announced.
    let mut bad = Vec::new();
    for id in 1..=3u8 {
        bad.extend([0x34, 7, 0, 1, b'q', 0, id, 0, b'x']);
    }
    let got = raw_session(port, CONNECT5, &bad, false).await;
    // CONNACK properties carry Receive Maximum (0x21) = 2.
    let connack = &got[..2 + got[1] as usize];
    assert!(
        connack.windows(3).any(|w| w == [0x21, 0, 2]),
        "Receive Maximum 2 announced: {connack:?}"
    );
    // Then DISCONNECT 0x93, well-formed (Remaining Length 1, nothing after).
    assert_eq!(disconnect_reason(&got), 0x93);
    assert_eq!(&got[connack.len()..], [0xE0, 1, 0x93], "{got:?}");
}
