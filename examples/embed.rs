//! Embedding switchboard in an application: a bridge built in code with an
//! HTTP adapter and an adapter of our own, a route between them, a publish
//! and a subscription.
//!
//! `cargo run --example embed`

use std::sync::Arc;

use futures_util::StreamExt;
use switchboard::adapters::http::{Config as HttpConfig, HttpAdapter};
use switchboard::{
    Adapter, AdapterContext, AdapterError, BoxFuture, Bridge, Message, Running, Topic,
};

/// A tiny adapter of our own: it prints what it is given and publishes one
/// reading at start.
struct Console;

impl Adapter for Console {
    fn kind(&self) -> &str {
        "console"
    }

    fn start(
        self: Box<Self>,
        ctx: AdapterContext,
    ) -> BoxFuture<'static, Result<Running, AdapterError>> {
        Box::pin(async move {
            ctx.health.up();
            let task = Box::pin(async move {
                let topic = Topic::new("sensors/desk/temp")
                    .map_err(|e| AdapterError::Config(e.to_string()))?;
                let reading = Message::new(ctx.name.clone(), topic, &b"21.5"[..])
                    .with_format(switchboard::Format::Json);
                let _ = ctx.ingress.publish(reading).await;
                loop {
                    tokio::select! {
                        () = ctx.shutdown.cancelled() => break,
                        d = ctx.deliveries.recv() => match d {
                            Some(d) => {
                                println!("console got {} = {}", d.message.topic, String::from_utf8_lossy(&d.message.payload));
                                d.ack.done();
                            }
                            None => break,
                        },
                    }
                }
                Ok(())
            });
            Ok(Running {
                endpoints: Vec::new(),
                task,
            })
        })
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let http = HttpAdapter::new(HttpConfig {
        listen: "127.0.0.1:0".parse()?,
        ..HttpConfig::default()
    });
    let bridge = Bridge::builder()
        .adapter("http", http)
        .adapter("console", Console)
        .route("console:sensors/#", &["http:{0}"])
        .route("http:cmd/#", &["console:{0}"])
        .build()?;
    let handle = bridge.start().await?;
    let mut sub = handle.subscribe("http:sensors/#")?;
    handle
        .publish(Message::json("http:cmd/lamp", r#"{"on":true}"#)?)
        .await?;
    let addr = handle
        .endpoint("http", "http")
        .map(|a| a.to_string())
        .unwrap_or_default();
    if let Some(m) = tokio::time::timeout(std::time::Duration::from_secs(2), sub.next()).await? {
        println!(
            "http:{} = {} (GET http://{addr}/topics/{})",
            m.topic,
            String::from_utf8_lossy(&m.payload),
            m.topic
        );
    }
    let _ = Arc::clone(handle.router());
    handle.shutdown().await?;
    Ok(())
}
