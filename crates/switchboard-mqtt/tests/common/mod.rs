//! Helpers of the MQTT adapter's integration tests: start the adapter alone
//! (`AdapterContext::standalone`), run mosquitto_pub / mosquitto_sub and a
//! mosquitto broker, wait on conditions with deadlines.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, unreachable_pub)]

use std::future::Future;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use switchboard_model::{Adapter, AdapterContext, StandaloneHarness};
use switchboard_mqtt::{BrokerHandle, Config, MqttAdapter};
use tokio::process::{Child, Command};
use tokio::task::JoinHandle;

pub const DEADLINE: Duration = Duration::from_secs(15);

/// A started adapter.
pub struct Started {
    pub ctx: AdapterContext,
    pub harness: StandaloneHarness,
    pub addr: SocketAddr,
    pub handle: BrokerHandle,
    pub task: JoinHandle<()>,
}

impl Started {
    /// Consumes (and drops) everything the adapter publishes into the
    /// absent router from now on, as a running router would.
    pub fn drain_ingress(&mut self) {
        let (_tx, dummy) = tokio::sync::mpsc::channel(1);
        let mut rx = std::mem::replace(&mut self.harness.ingress_rx, dummy);
        tokio::spawn(async move { while rx.recv().await.is_some() {} });
    }
}

impl Drop for Started {
    fn drop(&mut self) {
        self.ctx.shutdown.cancel();
        self.task.abort();
    }
}

/// Starts the adapter from a TOML table.
pub async fn start(name: &str, toml_text: &str) -> Started {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_test_writer()
        .try_init();
    let cfg: Config = toml::from_str(toml_text).expect("config");
    let adapter = MqttAdapter::new(cfg);
    let handle = adapter.broker_handle();
    let (ctx, harness) = AdapterContext::standalone(name, 1024);
    let running = Box::new(adapter).start(ctx.clone()).await.expect("start");
    let addr = running
        .endpoints
        .first()
        .map_or_else(|| "0.0.0.0:0".parse().unwrap(), |e| e.addr);
    let task = tokio::spawn(async move {
        let _ = running.task.await;
    });
    Started {
        ctx,
        harness,
        addr,
        handle,
        task,
    }
}

/// Waits until `f` is true, polling; panics with `what` at the deadline.
pub async fn wait_for(what: &str, mut f: impl FnMut() -> bool) {
    let end = tokio::time::Instant::now() + DEADLINE;
    while !f() {
        assert!(
            tokio::time::Instant::now() < end,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Waits for a future with the deadline.
pub async fn within<T>(what: &str, f: impl Future<Output = T>) -> T {
    tokio::time::timeout(DEADLINE, f)
        .await
        .unwrap_or_else(|_| panic!("timed out: {what}"))
}

fn tool(name: &str) -> Command {
    let mut c = Command::new(name);
    c.kill_on_drop(true).stdin(Stdio::null());
    c
}

/// Checks that a tool exists, with a clear message.
pub fn require(name: &str) {
    let found = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).any(|d| d.join(name).exists()))
        .unwrap_or(false)
        || Path::new("/usr/sbin").join(name).exists();
    assert!(
        found,
        "`{name}` is missing: install the Debian packages mosquitto and mosquitto-clients \
         (scripts/install.d/10-mosquitto.sh)"
    );
}

/// A running mosquitto_sub printing `topic payload` lines.
pub struct Sub {
    pub child: Child,
    lines: tokio::io::Lines<tokio::io::BufReader<tokio::process::ChildStdout>>,
}

impl Sub {
    /// Waits for it to exit (after `-C N` messages) and returns its output lines.
    pub async fn lines(mut self) -> Vec<String> {
        let mut out = Vec::new();
        within("mosquitto_sub output", async {
            while let Some(l) = self.lines.next_line().await.unwrap() {
                out.push(l);
            }
            self.child.wait().await.unwrap();
        })
        .await;
        out
    }

    /// Reads lines until `done(lines so far)` says enough.
    pub async fn read_until(
        &mut self,
        what: &str,
        mut done: impl FnMut(&[String]) -> bool,
    ) -> Vec<String> {
        let mut lines = Vec::new();
        let end = tokio::time::Instant::now() + DEADLINE;
        while !done(&lines) {
            match tokio::time::timeout_at(end, self.lines.next_line()).await {
                Ok(Ok(Some(l))) => lines.push(l),
                Ok(_) => break,
                Err(_) => panic!("timed out: {what}; got {lines:?}"),
            }
        }
        lines
    }
}

/// Sends SIGTERM to a child (graceful stop) and waits for it.
pub async fn terminate(child: &mut Child) {
    if let Some(pid) = child.id() {
        let _ = Command::new("kill")
            .args(["-TERM", &pid.to_string()])
            .status()
            .await;
    }
    let _ = within("process exit", child.wait()).await;
}

/// Starts `mosquitto_sub -v` with extra args.
pub fn sub(port: u16, args: &[&str]) -> Sub {
    use tokio::io::AsyncBufReadExt;
    require("mosquitto_sub");
    let mut child = tool("mosquitto_sub")
        .args(["-h", "127.0.0.1", "-p", &port.to_string(), "-v"])
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("spawn mosquitto_sub");
    let lines = tokio::io::BufReader::new(child.stdout.take().unwrap()).lines();
    Sub { child, lines }
}

/// Runs `mosquitto_pub` with args; returns whether it succeeded.
pub async fn publish(port: u16, args: &[&str]) -> bool {
    require("mosquitto_pub");
    let st = within(
        "mosquitto_pub",
        tool("mosquitto_pub")
            .args(["-h", "127.0.0.1", "-p", &port.to_string()])
            .args(args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status(),
    )
    .await
    .expect("spawn mosquitto_pub");
    st.success()
}

/// A mosquitto broker started with its own config file, on an ephemeral port.
pub struct Mosquitto {
    pub child: Child,
    pub port: u16,
    pub dir: PathBuf,
    pub conf: PathBuf,
}

/// A fresh temporary directory.
pub fn temp_dir(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!(
        "sb-mqtt-{tag}-{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos()
    ));
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// A free TCP port on 127.0.0.1 (bound then released).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl Mosquitto {
    /// Starts mosquitto with `extra` config lines (a listener line is added
    /// unless `extra` has one), on `port` (0: a free one).
    pub async fn start(port: u16, extra: &str, dir: Option<PathBuf>) -> Mosquitto {
        require("mosquitto");
        let port = if port == 0 { free_port() } else { port };
        let dir = dir.unwrap_or_else(|| temp_dir("mosq"));
        // mosquitto started as root drops to its own user: let it write its
        // persistence file here.
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o777)).unwrap();
        }
        let conf = dir.join("mosquitto.conf");
        let mut text = String::new();
        if !extra.contains("listener ") {
            text.push_str(&format!("listener {port} 127.0.0.1\n"));
        }
        text.push_str("allow_anonymous true\nmax_queued_messages 100000\n");
        text.push_str(&format!(
            "persistence true\npersistence_location {}/\n",
            dir.display()
        ));
        text.push_str(extra);
        std::fs::write(&conf, text).unwrap();
        Self::spawn(port, dir, conf).await
    }

    async fn spawn(port: u16, dir: PathBuf, conf: PathBuf) -> Mosquitto {
        let bin = if Path::new("/usr/sbin/mosquitto").exists() {
            "/usr/sbin/mosquitto"
        } else {
            "mosquitto"
        };
        let child = tool(bin)
            .args(["-c", conf.to_str().unwrap()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn mosquitto");
        let m = Mosquitto {
            child,
            port,
            dir,
            conf,
        };
        wait_port(port).await;
        m
    }

    /// Stops it (SIGKILL) and waits.
    pub async fn kill(&mut self) {
        let _ = self.child.kill().await;
    }

    /// Stops it gracefully (SIGTERM: it saves its persistence file).
    pub async fn stop(&mut self) {
        terminate(&mut self.child).await;
    }

    /// Starts it again with the same config and persistence.
    pub async fn restart(self) -> Mosquitto {
        let (port, dir, conf) = (self.port, self.dir.clone(), self.conf.clone());
        drop(self);
        Self::spawn(port, dir, conf).await
    }
}

/// Waits until something accepts TCP connections on the port.
pub async fn wait_port(port: u16) {
    let end = tokio::time::Instant::now() + DEADLINE;
    loop {
        if tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_ok()
        {
            return;
        }
        assert!(
            tokio::time::Instant::now() < end,
            "nothing listens on {port}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
