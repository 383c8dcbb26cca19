//! Server-side separate responses (RFC 7252 5.2.2) while the router
//! back-pressures the adapter: a CON PUT is acknowledged at once with an empty
//! ACK and answered with a separate CON response once the publish is taken,
//! checked on raw UDP and with libcoap's coap-client-notls.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::time::Duration;

use support::coap_client;
use switchboard_coap::{CoapAdapter, Config};
use switchboard_model::{Adapter, AdapterContext};
use tokio::net::UdpSocket;

fn put(t: u8, mid: u16, token: &[u8], path: &str, body: &[u8]) -> Vec<u8> {
    let mut v = vec![
        0x40 | (t << 4) | token.len() as u8,
        0x03,
        (mid >> 8) as u8,
        mid as u8,
    ];
    v.extend_from_slice(token);
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

async fn recv(sock: &UdpSocket) -> Vec<u8> {
    let mut b = [0u8; 1500];
    let (n, _) = tokio::time::timeout(Duration::from_secs(10), sock.recv_from(&mut b))
        .await
        .expect("a datagram within 10 s")
        .unwrap();
    b[..n].to_vec()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn separate_responses_while_the_router_is_busy() {
    let cfg = Config {
        listen: "127.0.0.1:0".into(),
        ..Config::default()
    };
    // Nobody reads the router's input yet: it fills up, then the adapter's
    // own event queue does.
    let (ctx, mut h) = AdapterContext::standalone("coap", 256);
    let running = Box::new(CoapAdapter::new(cfg))
        .start(ctx.clone())
        .await
        .unwrap();
    let addr = running.endpoints[0].addr;
    let task = tokio::spawn(running.task);
    let sock = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    // NON PUTs, one at a time (each answered), until the server says 5.03.
    let mut full = false;
    for i in 0..20_000u32 {
        let mid = (i % 60_000) as u16;
        sock.send_to(&put(1, mid, &[1], &format!("fill/{i}"), b"x"), addr)
            .await
            .unwrap();
        let r = recv(&sock).await;
        if r[1] == 0xa3 {
            full = true;
            break;
        }
        assert_eq!(r[1], 0x44, "2.04 while there is room");
    }
    assert!(full, "the server never reported 5.03");

    // A CON PUT now: an empty ACK at once, no response yet.
    let token = [7u8, 7, 7];
    sock.send_to(&put(0, 61_000, &token, "late/raw", b"v"), addr)
        .await
        .unwrap();
    let ack = recv(&sock).await;
    assert_eq!(ack, vec![0x60, 0x00, 0xee, 0x48], "empty ACK for mid 61000");
    // libcoap's client gets the same treatment and waits for the separate response.
    let url = format!("coap://127.0.0.1:{}/late/libcoap", addr.port());
    let client =
        tokio::spawn(
            async move { coap_client(&["-m", "put", "-e", "hello", "-B", "30", &url]).await },
        );
    // Once both requests wait for their separate responses, let the router
    // take messages again.
    let deferred = ctx.metrics.counter("coap_deferred_total", "");
    assert!(
        support::wait_for(20, || deferred.get() >= 2).await,
        "coap-client's PUT was not deferred ({} deferred)",
        deferred.get()
    );
    let drained = tokio::spawn(async move {
        let mut topics = Vec::new();
        while let Some(m) = h.ingress_rx.recv().await {
            topics.push(m.topic.to_string());
            if topics.iter().any(|t| t == "late/raw") && topics.iter().any(|t| t == "late/libcoap")
            {
                break;
            }
        }
        topics
    });
    // The separate response: CON, 2.04, our token; we acknowledge it.
    let sep = loop {
        let r = recv(&sock).await;
        if r[0] >> 4 == 0x4 && r[0] & 0x0f == 3 && r[4..7] == token {
            break r;
        }
    };
    assert_eq!(sep[1], 0x44, "2.04 Changed");
    sock.send_to(&[0x60, 0x00, sep[2], sep[3]], addr)
        .await
        .unwrap();
    let o = client.await.unwrap();
    assert!(o.status.success(), "coap-client: {o:?}");
    let topics = tokio::time::timeout(Duration::from_secs(20), drained)
        .await
        .unwrap()
        .unwrap();
    assert!(topics.iter().any(|t| t == "late/raw") && topics.iter().any(|t| t == "late/libcoap"));
    let separate = ctx.metrics.counter("coap_separate_responses_total", "");
    assert!(support::wait_for(10, || separate.get() >= 2).await);
    ctx.shutdown.cancel();
    let _ = tokio::time::timeout(Duration::from_secs(5), task).await;
}
