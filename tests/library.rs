//! The library API used in-process: a bridge built in code with an HTTP
//! adapter and a custom adapter, `publish`, `subscribe`, route swapping and
//! shutdown; the HTTP side is checked with curl.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::StreamExt;
use switchboard::adapters::http::{Config as HttpConfig, HttpAdapter};
use switchboard::{
    Adapter, AdapterContext, AdapterError, BoxFuture, Bridge, Message, RouteSpec, Running,
};

/// A custom adapter recording what it is delivered.
struct Recorder(Arc<Mutex<Vec<String>>>);

impl Adapter for Recorder {
    fn kind(&self) -> &str {
        "recorder"
    }
    fn start(
        self: Box<Self>,
        ctx: AdapterContext,
    ) -> BoxFuture<'static, Result<Running, AdapterError>> {
        Box::pin(async move {
            ctx.health.up();
            let seen = self.0;
            Ok(Running {
                endpoints: Vec::new(),
                task: Box::pin(async move {
                    while let Some(d) = ctx.deliveries.recv().await {
                        let m = &d.message;
                        seen.lock().unwrap().push(format!(
                            "{}={}",
                            m.topic,
                            String::from_utf8_lossy(&m.payload)
                        ));
                        d.ack.done();
                    }
                    Ok(())
                }),
            })
        })
    }
}

fn http_adapter() -> HttpAdapter {
    HttpAdapter::new(HttpConfig {
        listen: "127.0.0.1:0".parse().unwrap(),
        ..HttpConfig::default()
    })
}

async fn wait_seen(seen: &Arc<Mutex<Vec<String>>>, want: &str) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    loop {
        if seen.lock().unwrap().iter().any(|s| s == want) {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "never saw {want}: {:?}",
            seen.lock().unwrap()
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publish_subscribe_route_and_swap() {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let bridge = Bridge::builder()
        .adapter("http", http_adapter())
        .adapter("rec", Recorder(seen.clone()))
        .route("http:cmd/#", &["rec:{0}"])
        .build()
        .unwrap();
    let handle = bridge.start().await.unwrap();
    let base = format!("http://{}", handle.endpoint("http", "http").unwrap());
    let mut sub = handle.subscribe("*:cmd/#").unwrap();

    // Publishing at http:cmd/lamp: local value (curl GET sees it), routed to rec.
    handle
        .publish(Message::json("http:cmd/lamp", r#"{"on":true}"#).unwrap())
        .await
        .unwrap();
    wait_seen(&seen, r#"cmd/lamp={"on":true}"#).await;
    let b2 = base.clone();
    let (code, body) =
        tokio::task::spawn_blocking(move || common::curl(&[], &format!("{b2}/topics/cmd/lamp")))
            .await
            .unwrap();
    assert_eq!((code, body.as_str()), (200, r#"{"on":true}"#));

    // The subscription saw it at both addresses.
    let mut got = Vec::new();
    for _ in 0..2 {
        let m = tokio::time::timeout(Duration::from_secs(5), sub.next())
            .await
            .unwrap()
            .unwrap();
        got.push(format!("{}:{}", m.origin.adapter, m.topic));
    }
    got.sort();
    assert_eq!(got, vec!["http:cmd/lamp", "rec:cmd/lamp"]);

    // A curl PUT is routed too.
    let b2 = base.clone();
    tokio::task::spawn_blocking(move || {
        common::curl(
            &["-X", "PUT", "--data", "x"],
            &format!("{b2}/topics/cmd/fan"),
        )
    })
    .await
    .unwrap();
    wait_seen(&seen, "cmd/fan=x").await;

    // Swap the routes while running: cmd/ no longer goes to rec, alarm/ does.
    handle
        .swap_routes(&[RouteSpec::new("http:alarm/+", ["rec:alarms/{1}"])])
        .unwrap();
    handle
        .publish(Message::text("http:cmd/door", "open").unwrap())
        .await
        .unwrap();
    handle
        .publish(Message::text("http:alarm/smoke", "1").unwrap())
        .await
        .unwrap();
    wait_seen(&seen, "alarms/smoke=1").await;
    assert!(
        !seen
            .lock()
            .unwrap()
            .iter()
            .any(|s| s.starts_with("cmd/door"))
    );

    // Bad input is an error, not a panic.
    assert!(
        handle
            .publish(Message::text("nope:x", "1").unwrap())
            .await
            .is_err()
    );
    assert!(handle.subscribe("no-colon").is_err());
    handle.shutdown().await.unwrap();
}

#[tokio::test]
async fn builder_rejects_bad_routes_and_names() {
    let r = Bridge::builder()
        .adapter("http", http_adapter())
        .route("http:a/+", &["http:{2}"])
        .build();
    assert!(r.is_err());
    let r = Bridge::builder()
        .adapter("bad name", http_adapter())
        .build();
    assert!(r.is_err());
    let r = Bridge::builder()
        .adapter("a", http_adapter())
        .adapter("a", http_adapter())
        .build();
    assert!(r.is_err());
}

#[tokio::test]
async fn start_fails_cleanly_when_a_port_is_taken() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap();
    let bridge = Bridge::builder()
        .adapter(
            "http",
            HttpAdapter::new(HttpConfig {
                listen: addr,
                ..HttpConfig::default()
            }),
        )
        .build()
        .unwrap();
    let err = bridge.start().await.unwrap_err();
    assert!(err.to_string().contains(&addr.to_string()), "{err}");
}
