//! Our server against libcoap's coap-client-notls and raw UDP sockets.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::time::Duration;

use support::*;
use switchboard_coap::Config;
use switchboard_model::{Format, Message, Qos, Topic};
use tokio::io::AsyncBufReadExt;
use tokio::net::UdpSocket;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn get_put_post_delete_with_libcoap() {
    let s = start(Config::default()).await;
    let url = s.url("sensors/temp");
    let o = coap_client(&["-m", "get", "-B", "5", &url]).await;
    assert!(format!("{o:?}").contains("4.04"), "GET of nothing: {o:?}");
    let o = coap_client(&[
        "-m",
        "put",
        "-t",
        "50",
        "-e",
        r#"{"c":21.5}"#,
        "-B",
        "5",
        &url,
    ])
    .await;
    assert!(o.status.success(), "{o:?}");
    assert!(wait_for(5, || s.published_count() == 1).await);
    let m = s.last_published().unwrap();
    assert_eq!(
        (m.topic.as_str(), m.format.clone(), &m.payload[..]),
        ("sensors/temp", Format::Json, &br#"{"c":21.5}"#[..])
    );
    assert_eq!(m.qos, Qos::AtLeastOnce);
    let o = coap_client(&["-m", "get", "-B", "5", &url]).await;
    assert_eq!(stdout(&o).trim(), r#"{"c":21.5}"#, "{o:?}");
    let o = coap_client(&[
        "-m",
        "post",
        "-t",
        "0",
        "-e",
        "hello",
        "-B",
        "5",
        &s.url("events/x"),
    ])
    .await;
    assert!(o.status.success(), "{o:?}");
    assert!(wait_for(5, || s.published_count() == 2).await);
    assert_eq!(s.last_published().unwrap().format, Format::Text);
    let o = coap_client(&["-m", "delete", "-B", "5", &url]).await;
    assert!(o.status.success(), "{o:?}");
    let o = coap_client(&["-m", "get", "-B", "5", &url]).await;
    assert!(format!("{o:?}").contains("4.04"), "{o:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn observe_several_notifications_with_libcoap() {
    let s = start(Config::default()).await;
    let topic = Topic::new("obs/t").unwrap();
    let book_set = |v: &str| {
        let m = Message::new("coap", topic.clone(), v.to_owned()).with_format(Format::Text);
        s.ctx.book.record(&s.ctx.name, &m);
        m
    };
    book_set("v0");
    let url = s.url("obs/t");
    let mut child = tokio::process::Command::new("coap-client-notls")
        .args(["-s", "20", "-w", "-B", "25", &url])
        .kill_on_drop(true)
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("coap-client-notls (install libcoap3-bin)");
    let mut lines = tokio::io::BufReader::new(child.stdout.take().unwrap()).lines();
    let mut next_line = async || {
        loop {
            let l = tokio::time::timeout(Duration::from_secs(10), lines.next_line())
                .await
                .expect("a notification within 10 s")
                .unwrap()
                .expect("coap-client-notls exited");
            if !l.is_empty() {
                return l;
            }
        }
    };
    assert_eq!(next_line().await, "v0", "registration response");
    // Values arrive as routed deliveries would, NON and CON (QoS 1) mixed;
    // each is awaited before the next so that none is legitimately skipped.
    for i in 1..=5 {
        let m = book_set(&format!("v{i}"));
        let qos = if i % 2 == 0 {
            Qos::AtLeastOnce
        } else {
            Qos::AtMostOnce
        };
        let d = switchboard_model::Delivery {
            message: m.with_qos(qos).into(),
            ack: switchboard_model::Ack::none(),
        };
        s.ctx.deliveries.try_push(d).unwrap();
        assert_eq!(next_line().await, format!("v{i}"));
    }
    let _ = child.kill().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn blockwise_4k_both_ways_with_libcoap() {
    let s = start(Config::default()).await;
    let body: String = (0..4096)
        .map(|i| char::from(b'A' + (i % 26) as u8))
        .collect();
    let dir = std::env::temp_dir().join(format!("coap-bw-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let f = dir.join("body.txt");
    std::fs::write(&f, &body).unwrap();
    let url = s.url("big/value");
    let o = coap_client(&[
        "-m",
        "put",
        "-t",
        "0",
        "-b",
        "1024",
        "-f",
        f.to_str().unwrap(),
        "-B",
        "10",
        &url,
    ])
    .await;
    assert!(o.status.success(), "{o:?}");
    assert!(wait_for(5, || s.published_count() == 1).await);
    assert_eq!(s.last_published().unwrap().payload.len(), 4096);
    let o = coap_client(&["-m", "get", "-b", "256", "-B", "10", &url]).await;
    let got = stdout(&o);
    assert!(got.trim_end() == body, "Block2 GET: {} bytes", got.len());
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn well_known_core_and_errors_with_libcoap() {
    let cfg = Config {
        max_payload: switchboard_model::units::ByteSize(2000),
        ..Config::default()
    };
    let s = start(cfg).await;
    for (t, f) in [("a/json", Format::Json), ("b/text", Format::Text)] {
        let m = Message::new("coap", Topic::new(t).unwrap(), "1").with_format(f);
        s.ctx.book.record(&s.ctx.name, &m);
    }
    let o = coap_client(&["-B", "5", &s.url(".well-known/core")]).await;
    let t = stdout(&o);
    assert!(
        t.contains("</a/json>;rt=\"switchboard.topic\";obs;ct=50") && t.contains("</b/text>"),
        "{t}"
    );
    let o = coap_client(&["-B", "5", &s.url(".well-known/core?href=/b*")]).await;
    let t = stdout(&o);
    assert!(t.contains("</b/text>") && !t.contains("a/json"), "{t}");
    let o = coap_client(&["-B", "5", &s.url(".well-known/core?rt=switchboard.topic")]).await;
    assert!(stdout(&o).contains("</a/json>"));
    // 4.15 unknown content format, 4.13 too large (Block1 with Size1), 4.05.
    let o = coap_client(&["-m", "put", "-t", "9999", "-e", "x", "-B", "5", &s.url("z")]).await;
    assert!(format!("{o:?}").contains("4.15"), "{o:?}");
    let dir = std::env::temp_dir().join(format!("coap-413-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let f = dir.join("big");
    std::fs::write(&f, vec![b'x'; 4096]).unwrap();
    let o = coap_client(&[
        "-m",
        "put",
        "-b",
        "1024",
        "-f",
        f.to_str().unwrap(),
        "-B",
        "5",
        &s.url("z"),
    ])
    .await;
    assert!(format!("{o:?}").contains("4.13"), "{o:?}");
    let _ = std::fs::remove_dir_all(&dir);
    let o = coap_client(&["-m", "fetch", "-B", "5", &s.url("z")]).await;
    assert!(format!("{o:?}").contains("4.05"), "{o:?}");
}

fn con_put(mid: u16, path: &str, body: &[u8]) -> Vec<u8> {
    let mut v = vec![0x42, 0x03, (mid >> 8) as u8, mid as u8, 0xaa, 0xbb];
    let mut last = 0;
    for seg in path.split('/') {
        let delta = 11 - last;
        last = 11;
        v.push(((delta as u8) << 4) | seg.len() as u8);
        v.extend_from_slice(seg.as_bytes());
    }
    v.push(0xff);
    v.extend_from_slice(body);
    v
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn duplicate_con_gets_same_response_and_one_publish() {
    let s = start(Config::default()).await;
    let sock = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let dg = con_put(0x1234, "dup/t", b"once");
    let mut r1 = [0u8; 512];
    let mut r2 = [0u8; 512];
    sock.send_to(&dg, s.addr).await.unwrap();
    let (n1, _) = tokio::time::timeout(Duration::from_secs(5), sock.recv_from(&mut r1))
        .await
        .unwrap()
        .unwrap();
    sock.send_to(&dg, s.addr).await.unwrap();
    let (n2, _) = tokio::time::timeout(Duration::from_secs(5), sock.recv_from(&mut r2))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(&r1[..n1], &r2[..n2]);
    assert_eq!(r1[1], 0x44, "2.04 Changed");
    assert_eq!(&r1[2..4], &[0x12, 0x34]);
    // A marker PUT after the duplicate: once it is published, the duplicate
    // (handled before it) would have been too.
    sock.send_to(&con_put(0x1235, "dup/marker", b"m"), s.addr)
        .await
        .unwrap();
    assert!(
        wait_for(5, || s
            .last_published()
            .is_some_and(|m| m.topic.as_str() == "dup/marker"))
        .await
    );
    let topics: Vec<String> = s
        .published
        .lock()
        .unwrap()
        .iter()
        .map(|m| m.topic.to_string())
        .collect();
    assert_eq!(topics, ["dup/t", "dup/marker"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_flood_server_keeps_answering() {
    let s = start(Config::default()).await;
    let sock = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut rnd = || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    let valid = con_put(1, "flood/x", b"v");
    for i in 0..5000u32 {
        let dg: Vec<u8> = if i % 2 == 0 {
            let n = (rnd() % 64) as usize;
            (0..n).map(|_| rnd() as u8).collect()
        } else {
            let mut d = valid.clone();
            for _ in 0..(1 + rnd() % 4) {
                let at = (rnd() as usize) % d.len();
                d[at] = rnd() as u8;
            }
            d.truncate(1 + (rnd() as usize) % d.len());
            d
        };
        let _ = sock.send_to(&dg, s.addr).await;
        if i % 256 == 0 {
            tokio::task::yield_now().await;
        }
    }
    // Drain whatever came back, then a well-formed request is still answered.
    let mut buf = [0u8; 2048];
    while let Ok(Ok(_)) =
        tokio::time::timeout(Duration::from_millis(200), sock.recv_from(&mut buf)).await
    {}
    let o = coap_client(&["-m", "put", "-e", "alive", "-B", "5", &s.url("after/flood")]).await;
    assert!(o.status.success(), "{o:?}");
    let o = coap_client(&["-B", "5", &s.url("after/flood")]).await;
    assert_eq!(stdout(&o).trim(), "alive");
}
