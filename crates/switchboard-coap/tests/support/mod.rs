//! Shared helpers: run the adapter alone on an ephemeral port, run peers.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, unreachable_pub)]

use std::net::SocketAddr;
use std::process::Output;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use switchboard_coap::{CoapAdapter, Config};
use switchboard_model::{Adapter, AdapterContext, Message};

pub struct Server {
    pub addr: SocketAddr,
    pub ctx: AdapterContext,
    pub published: Arc<Mutex<Vec<Message>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Server {
    fn drop(&mut self) {
        self.ctx.shutdown.cancel();
        self.task.abort();
    }
}

pub async fn start(mut cfg: Config) -> Server {
    if cfg.listen == "127.0.0.1:5683" {
        cfg.listen = "127.0.0.1:0".into();
    }
    let (ctx, mut h) = AdapterContext::standalone("coap", 256);
    let running = Box::new(CoapAdapter::new(cfg))
        .start(ctx.clone())
        .await
        .unwrap();
    let addr = running.endpoints[0].addr;
    let published = Arc::new(Mutex::new(Vec::new()));
    let p2 = published.clone();
    let task = tokio::spawn(async move {
        let drain = async move {
            while let Some(m) = h.ingress_rx.recv().await {
                p2.lock().unwrap().push(m);
            }
        };
        tokio::select! {
            _ = running.task => {}
            _ = drain => {}
        }
    });
    Server {
        addr,
        ctx,
        published,
        task,
    }
}

impl Server {
    pub fn url(&self, path: &str) -> String {
        format!(
            "coap://127.0.0.1:{}/{}",
            self.addr.port(),
            path.trim_start_matches('/')
        )
    }
    pub fn published_count(&self) -> usize {
        self.published.lock().unwrap().len()
    }
    pub fn last_published_at(&self, topic: &str) -> Option<Message> {
        self.published
            .lock()
            .unwrap()
            .iter()
            .rev()
            .find(|m| m.topic.as_str() == topic)
            .cloned()
    }
    pub fn last_published(&self) -> Option<Message> {
        self.published.lock().unwrap().last().cloned()
    }
}

/// Runs libcoap's client with a deadline; it must exist (the test command
/// installs it).
pub async fn coap_client(args: &[&str]) -> Output {
    let fut = tokio::process::Command::new("coap-client-notls")
        .args(args)
        .kill_on_drop(true)
        .output();
    match tokio::time::timeout(Duration::from_secs(30), fut).await {
        Ok(Ok(o)) => o,
        Ok(Err(e)) => panic!(
            "cannot run coap-client-notls ({e}); install Debian libcoap3-bin (scripts/install.d/30-coap.sh)"
        ),
        Err(_) => panic!("coap-client-notls {args:?} timed out"),
    }
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub fn python() -> String {
    std::env::var("SWITCHBOARD_PYTHON").unwrap_or_else(|_| {
        let home = std::env::var("HOME").unwrap_or_default();
        format!("{home}/.cache/switchboard/venv/bin/python")
    })
}

/// Runs a Python snippet (aiocoap) with a deadline.
pub async fn py(script: &str, args: &[&str]) -> Output {
    let fut = tokio::process::Command::new(python())
        .arg("-c")
        .arg(script)
        .args(args)
        .kill_on_drop(true)
        .output();
    match tokio::time::timeout(Duration::from_secs(60), fut).await {
        Ok(Ok(o)) => o,
        Ok(Err(e)) => panic!(
            "cannot run {} ({e}); run scripts/install.d/30-coap.sh",
            python()
        ),
        Err(_) => panic!("python {args:?} timed out"),
    }
}

/// Waits until `f` holds, up to `secs`.
pub async fn wait_for(secs: u64, mut f: impl FnMut() -> bool) -> bool {
    let end = tokio::time::Instant::now() + Duration::from_secs(secs);
    while tokio::time::Instant::now() < end {
        if f() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    f()
}
