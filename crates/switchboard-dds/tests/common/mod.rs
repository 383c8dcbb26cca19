//! Shared helpers of the DDS crate tests: the network-namespace guard, the
//! Cyclone DDS Python peer, and an adapter run alone with
//! `AdapterContext::standalone`.
#![allow(dead_code, unreachable_pub, clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;
use switchboard_dds::{Config, DdsAdapter};
use switchboard_model::{
    Ack, Adapter, AdapterContext, Delivery, Interest, Message, Pattern, Qos, StandaloneHarness,
};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

/// Fails unless this process is in a network namespace whose only interface
/// is loopback: DDS discovery multicast must never leave the machine.
pub fn ensure_isolated() {
    // /proc/self/net/dev lists this network namespace's interfaces (sysfs
    // may still show the host's).
    let dev = std::fs::read_to_string("/proc/self/net/dev").expect("read /proc/self/net/dev");
    let ifaces: Vec<String> = dev
        .lines()
        .skip(2)
        .filter_map(|l| l.split(':').next().map(|i| i.trim().to_string()))
        .collect();
    assert!(
        ifaces.iter().all(|i| i == "lo"),
        "DDS tests open participants and must run in a loopback-only network namespace \
         (found interfaces {ifaces:?}); run them with scripts/dds-tests.sh"
    );
}

/// The Python with the `cyclonedds` binding.
pub fn python() -> PathBuf {
    if let Ok(p) = std::env::var("SWITCHBOARD_PYTHON") {
        return p.into();
    }
    let home = std::env::var("HOME").unwrap_or_else(|_| "/root".into());
    let p = PathBuf::from(home).join(".cache/switchboard/venv/bin/python");
    assert!(
        p.exists(),
        "no Python venv with cyclonedds at {} (scripts/install.d/40-dds.sh installs it)",
        p.display()
    );
    p
}

fn peer_script() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/peers/peer.py")
}

/// A running Cyclone DDS peer process; killed on drop.
pub struct Peer {
    child: Child,
    lines: mpsc::UnboundedReceiver<Value>,
    pub seen: Vec<Value>,
}

impl Peer {
    pub fn spawn(args: &[&str]) -> Peer {
        let mut child = Command::new(python())
            .arg(peer_script())
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .expect("spawn the Cyclone DDS peer");
        let stdout = child.stdout.take().expect("peer stdout");
        let (tx, lines) = mpsc::unbounded_channel();
        tokio::spawn(async move {
            let mut r = BufReader::new(stdout).lines();
            while let Ok(Some(l)) = r.next_line().await {
                match serde_json::from_str::<Value>(&l) {
                    Ok(v) => {
                        let _ = tx.send(v);
                    }
                    Err(_) => eprintln!("peer: {l}"),
                }
            }
        });
        Peer {
            child,
            lines,
            seen: Vec::new(),
        }
    }

    /// Waits for a line with key `key`; panics at the deadline.
    pub async fn expect(&mut self, key: &str, within: Duration) -> Value {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            match tokio::time::timeout_at(deadline, self.lines.recv()).await {
                Ok(Some(v)) => {
                    self.seen.push(v.clone());
                    if let Some(x) = v.get(key) {
                        return x.clone();
                    }
                    if v.get("error").is_some() {
                        panic!("peer error: {v}");
                    }
                }
                Ok(None) => panic!("peer exited before `{key}`; saw {:?}", self.seen),
                Err(_) => panic!(
                    "no `{key}` from the peer within {within:?}; saw {:?}",
                    self.seen
                ),
            }
        }
    }

    /// Like `expect` but returns `None` at the deadline.
    pub async fn try_expect(&mut self, key: &str, within: Duration) -> Option<Value> {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            match tokio::time::timeout_at(deadline, self.lines.recv()).await {
                Ok(Some(v)) => {
                    self.seen.push(v.clone());
                    if let Some(x) = v.get(key) {
                        return Some(x.clone());
                    }
                }
                _ => return None,
            }
        }
    }

    /// The next line, or `None` at the deadline or when the peer exited.
    pub async fn next_line(&mut self, within: Duration) -> Option<Value> {
        let v = tokio::time::timeout(within, self.lines.recv())
            .await
            .ok()
            .flatten()?;
        self.seen.push(v.clone());
        Some(v)
    }

    pub async fn wait(mut self) -> std::process::ExitStatus {
        tokio::time::timeout(Duration::from_secs(30), self.child.wait())
            .await
            .expect("peer did not exit")
            .expect("wait peer")
    }
}

/// Serializes a sample with the Python binding (full encapsulation).
pub async fn encode(ty: &str, json: &str) -> Vec<u8> {
    let mut p = Peer::spawn(&["encode", ty, json]);
    let hex = p.expect("hex", Duration::from_secs(20)).await;
    switchboard_dds::mapping::unhex(hex.as_str().unwrap()).unwrap()
}

/// An adapter running alone, reading everything (`#`).
pub struct Running {
    pub ctx: AdapterContext,
    pub harness: StandaloneHarness,
    pub task: JoinHandle<()>,
}

impl Running {
    pub async fn start(toml: &str) -> Running {
        ensure_isolated();
        let config: Config = toml::from_str(toml).expect("config");
        assert!(config.validate().is_empty(), "{:?}", config.validate());
        let (ctx, harness) = AdapterContext::standalone("dds", 1024);
        harness
            .interest_tx
            .send(Arc::from(vec![Interest {
                filter: Pattern::new("#").unwrap(),
                qos: Qos::AtLeastOnce,
            }]))
            .unwrap();
        let running = Box::new(DdsAdapter::new(config))
            .start(ctx.clone())
            .await
            .expect("adapter starts");
        let task = tokio::spawn(async move {
            running.task.await.expect("adapter task");
        });
        Running { ctx, harness, task }
    }

    /// The next message from DDS matching `pred`; panics at the deadline.
    pub async fn next(&mut self, within: Duration, pred: impl Fn(&Message) -> bool) -> Message {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            match tokio::time::timeout_at(deadline, self.harness.ingress_rx.recv()).await {
                Ok(Some(m)) if pred(&m) => return m,
                Ok(Some(_)) => continue,
                Ok(None) => panic!("adapter ingress closed"),
                Err(_) => panic!("no matching message from DDS within {within:?}"),
            }
        }
    }

    /// Whether any message arrives within `within`.
    pub async fn quiet(&mut self, within: Duration) -> Option<Message> {
        tokio::time::timeout(within, self.harness.ingress_rx.recv())
            .await
            .ok()
            .flatten()
    }

    /// Delivers `msg` every 300 ms until the reader `r` reports a sample
    /// (volatile readers only see what is written after they matched), and
    /// returns the sample.
    pub async fn deliver_until_read(&self, r: &mut Peer, msg: Message) -> Value {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        loop {
            self.deliver(msg.clone());
            if let Some(s) = r.try_expect("sample", Duration::from_millis(300)).await {
                return s;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "reader got nothing; saw {:?}",
                r.seen
            );
        }
    }

    pub fn deliver(&self, msg: Message) {
        let _ = self.ctx.deliveries.try_push(Delivery {
            message: msg.into(),
            ack: Ack::none(),
        });
    }

    pub async fn stop(self) {
        self.ctx.shutdown.cancel();
        let _ = tokio::time::timeout(Duration::from_secs(10), self.task).await;
    }
}

/// A CDR message for the adapter's topic `topic`.
pub fn cdr_message(topic: &str, ty: &str, payload: Vec<u8>) -> Message {
    let mut m = Message::at(
        &format!("mqtt:{topic}"),
        payload,
        switchboard_model::Format::Cdr(Some(ty.into())),
    )
    .unwrap();
    m.qos = Qos::AtLeastOnce;
    m
}
