//! Shared harness for black-box tests: runs the real `bridge` example binary
//! with a TOML config on ephemeral loopback ports, learns the bound endpoints
//! from its log, and stops it on drop. Also small helpers to run real clients
//! (curl) and to wait on conditions with deadlines.

#![allow(
    dead_code,
    clippy::unwrap_used,
    clippy::expect_used,
    unreachable_pub,
    missing_docs
)]

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

/// Path of a binary built by cargo next to the test executable
/// (`target/<profile>/examples/NAME` for examples).
pub fn example_bin(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("test exe path");
    let profile_dir = exe.parent().and_then(|p| p.parent()).expect("target dir");
    let p = profile_dir.join("examples").join(name);
    assert!(
        p.exists(),
        "{} is not built: run `cargo build --examples` first (scripts/test.sh does)",
        p.display()
    );
    check_same_checkout(&p);
    p
}

/// A target dir shared by two checkouts of this workspace holds one
/// `examples/bridge` for both: make sure it was built from this checkout (its
/// debug info names our sources).
fn check_same_checkout(p: &std::path::Path) {
    static CHECKED: std::sync::OnceLock<Result<(), String>> = std::sync::OnceLock::new();
    let r = CHECKED.get_or_init(|| {
        let bytes = std::fs::read(p).map_err(|e| e.to_string())?;
        let needle = concat!(env!("CARGO_MANIFEST_DIR"), "\0").as_bytes();
        if bytes.windows(needle.len()).any(|w| w == needle) {
            Ok(())
        } else {
            Err(format!(
                "{} was built from another checkout (not {}); use a target dir of this checkout's own",
                p.display(),
                env!("CARGO_MANIFEST_DIR")
            ))
        }
    });
    if let Err(e) = r {
        panic!("{e}");
    }
}

#[derive(Default)]
struct Log {
    lines: Vec<String>,
    closed: bool,
}

/// A running bridge process.
pub struct BridgeProc {
    child: Option<Child>,
    log: Arc<(Mutex<Log>, Condvar)>,
    pub endpoints: HashMap<(String, String), SocketAddr>,
    pub dir: tempdir::Dir,
}

pub mod tempdir {
    use std::path::{Path, PathBuf};

    /// A temporary directory removed on drop.
    pub struct Dir(PathBuf);

    impl Dir {
        pub fn new(tag: &str) -> Dir {
            static N: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
            let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let p =
                std::env::temp_dir().join(format!("switchboard-{tag}-{}-{n}", std::process::id()));
            std::fs::create_dir_all(&p).expect("temp dir");
            Dir(p)
        }
        pub fn path(&self) -> &Path {
            &self.0
        }
        pub fn join(&self, name: &str) -> PathBuf {
            self.0.join(name)
        }
    }

    impl Drop for Dir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

impl BridgeProc {
    /// Starts the bridge with `config` (TOML text) and waits until it runs.
    pub fn start(config: &str) -> BridgeProc {
        Self::start_with(config, &[])
    }

    /// Starts the bridge with extra environment variables.
    pub fn start_with(config: &str, env: &[(&str, &str)]) -> BridgeProc {
        let dir = tempdir::Dir::new("bridge");
        let cfg = dir.join("bridge.toml");
        std::fs::write(&cfg, config).unwrap();
        let mut cmd = Command::new(example_bin("bridge"));
        cmd.arg("--config")
            .arg(&cfg)
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().expect("spawn bridge");
        let stderr = child.stderr.take().expect("stderr");
        let log = Arc::new((Mutex::new(Log::default()), Condvar::new()));
        let log2 = log.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                if std::env::var_os("SWITCHBOARD_TEST_ECHO").is_some() {
                    eprintln!("bridge| {line}");
                }
                let (m, cv) = &*log2;
                m.lock().unwrap().lines.push(line);
                cv.notify_all();
            }
            let (m, cv) = &*log2;
            m.lock().unwrap().closed = true;
            cv.notify_all();
        });
        let mut b = BridgeProc {
            child: Some(child),
            log,
            endpoints: HashMap::new(),
            dir,
        };
        if !b.wait_log("Bridge running.", Duration::from_secs(30)) {
            panic!("bridge did not start:\n{}", b.log_text());
        }
        for line in b.log_lines() {
            if line.contains("Listening.") {
                let field = |k: &str| {
                    line.split_whitespace()
                        .find_map(|w| w.strip_prefix(&format!("{k}=")))
                        .map(str::to_owned)
                };
                if let (Some(a), Some(s), Some(addr)) =
                    (field("adapter"), field("service"), field("addr"))
                {
                    b.endpoints.insert((a, s), addr.parse().expect("addr"));
                }
            }
        }
        b
    }

    /// The bound address of `service` of `adapter`.
    pub fn addr(&self, adapter: &str, service: &str) -> SocketAddr {
        *self
            .endpoints
            .get(&(adapter.to_owned(), service.to_owned()))
            .unwrap_or_else(|| panic!("no endpoint {adapter}/{service} in {:?}", self.endpoints))
    }

    /// `http://ADDR` of an HTTP adapter.
    pub fn http(&self, adapter: &str) -> String {
        format!("http://{}", self.addr(adapter, "http"))
    }

    pub fn log_lines(&self) -> Vec<String> {
        self.log.0.lock().unwrap().lines.clone()
    }

    pub fn log_text(&self) -> String {
        self.log_lines().join("\n")
    }

    /// Waits until a log line contains `needle`.
    pub fn wait_log(&self, needle: &str, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        let (m, cv) = &*self.log;
        let mut g = m.lock().unwrap();
        loop {
            if g.lines.iter().any(|l| l.contains(needle)) {
                return true;
            }
            if g.closed {
                return false;
            }
            let now = Instant::now();
            if now >= deadline {
                return false;
            }
            g = cv.wait_timeout(g, deadline - now).unwrap().0;
        }
    }

    /// Sends SIGTERM and waits for the exit status.
    pub fn terminate(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let child = self.child.as_mut()?;
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(child.id().to_string())
            .status();
        let deadline = Instant::now() + timeout;
        loop {
            if let Ok(Some(st)) = child.try_wait() {
                self.child = None;
                return Some(st);
            }
            if Instant::now() >= deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }
}

impl Drop for BridgeProc {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// Output of a finished command.
#[derive(Debug)]
pub struct Out {
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
}

/// Runs a command to completion (with a 30 s limit).
pub fn run(program: &str, args: &[&str]) -> Out {
    let mut child = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {program} (the test command installs it): {e}"));
    let mut so = child.stdout.take().unwrap();
    let mut se = child.stderr.take().unwrap();
    let t1 = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = so.read_to_string(&mut s);
        s
    });
    let t2 = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = se.read_to_string(&mut s);
        s
    });
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(st) = child.try_wait().unwrap() {
            break st;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("{program} {args:?} did not finish in 30 s");
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    Out {
        status,
        stdout: t1.join().unwrap(),
        stderr: t2.join().unwrap(),
    }
}

/// `PUT`s a JSON body to `url` with curl and expects 204.
pub fn put_json(url: &str, body: &str) {
    let (code, out) = curl(
        &[
            "-X",
            "PUT",
            "-H",
            "Content-Type: application/json",
            "--data",
            body,
        ],
        url,
    );
    assert_eq!(code, 204, "PUT {url}: {out}");
}

/// curl: returns (HTTP status, body). Extra args go before the URL.
pub fn curl(args: &[&str], url: &str) -> (u16, String) {
    let mut a: Vec<&str> = vec!["-s", "-S", "--max-time", "10", "-w", "\n%{http_code}"];
    a.extend_from_slice(args);
    a.push(url);
    let out = run("curl", &a);
    assert!(out.status.success(), "curl {a:?} failed: {}", out.stderr);
    let (body, code) = out.stdout.rsplit_once('\n').unwrap_or(("", &out.stdout));
    (code.trim().parse().unwrap_or(0), body.to_owned())
}

/// Polls `f` until it returns `Some`, or panics after `timeout` with `what`.
pub fn wait_for<T>(what: &str, timeout: Duration, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = f() {
            return v;
        }
        if Instant::now() >= deadline {
            panic!("timed out waiting for {what}");
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// A long-running client (e.g. `curl -N`) whose stdout lines are collected.
pub struct Streaming {
    child: Child,
    lines: Arc<(Mutex<Vec<String>>, Condvar)>,
}

impl Streaming {
    pub fn spawn(program: &str, args: &[&str]) -> Streaming {
        let mut child = Command::new(program)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run {program}: {e}"));
        let so = child.stdout.take().unwrap();
        let lines = Arc::new((Mutex::new(Vec::new()), Condvar::new()));
        let l2 = lines.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(so).lines() {
                let Ok(line) = line else { break };
                let (m, cv) = &*l2;
                m.lock().unwrap().push(line);
                cv.notify_all();
            }
        });
        Streaming { child, lines }
    }

    pub fn lines(&self) -> Vec<String> {
        self.lines.0.lock().unwrap().clone()
    }

    /// Waits until some line satisfies `pred`; returns it.
    pub fn wait_line(&self, timeout: Duration, pred: impl Fn(&str) -> bool) -> Option<String> {
        let deadline = Instant::now() + timeout;
        let (m, cv) = &*self.lines;
        let mut g = m.lock().unwrap();
        loop {
            if let Some(l) = g.iter().find(|l| pred(l)) {
                return Some(l.clone());
            }
            let now = Instant::now();
            if now >= deadline {
                return None;
            }
            g = cv.wait_timeout(g, deadline - now).unwrap().0;
        }
    }
}

impl Drop for Streaming {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The Python of the test venv (with the test peers' packages).
pub fn python() -> String {
    if let Ok(p) = std::env::var("SWITCHBOARD_PYTHON") {
        return p;
    }
    let home = std::env::var("HOME").unwrap_or_else(|_| "/root".into());
    let p = format!("{home}/.cache/switchboard/venv/bin/python");
    assert!(
        std::path::Path::new(&p).exists(),
        "{p} missing: run scripts/test.sh, which creates the venv and installs the peers"
    );
    p
}

/// A script under `tests/peers/`.
pub fn peer_script(name: &str) -> String {
    format!("{}/tests/peers/{name}", env!("CARGO_MANIFEST_DIR"))
}

/// Resident memory of a process in KiB (from /proc).
pub fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// A loopback TCP port that was free a moment ago (for configs that need two
/// adapters on one fixed port).
pub fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

/// Writes `config` to a file and runs `bridge --config FILE --check`; returns
/// the directory holding the file (kept while it lives), the file's path (as
/// errors name it) and the output.
pub fn check_config(config: &str) -> (tempdir::Dir, String, Out) {
    let dir = tempdir::Dir::new("check");
    let path = dir.join("bad.toml");
    std::fs::write(&path, config).unwrap();
    let p = path.display().to_string();
    let out = run(
        example_bin("bridge").to_str().unwrap(),
        &["--config", &p, "--check"],
    );
    (dir, p, out)
}
