//! MQTT -> bridge -> MQTT relay through real mosquitto brokers, switchboard
//! against mosquitto's own bridge mode in the same run, in two pairs with
//! the same processes and hops on both sides:
//!
//! - "clients": publisher (mosquitto_pub -l) -> mosquitto A -> RELAY ->
//!   mosquitto B -> subscriber (mosquitto_sub), with RELAY = switchboard (two
//!   `mqtt` client adapters and one route) or a third mosquitto with two
//!   bridge connections (`topic bench/# in` from A, `out` to B);
//! - "embedded": publisher -> BRIDGE -> mosquitto B -> subscriber, with
//!   BRIDGE = switchboard's embedded broker and a client adapter to B, or a
//!   mosquitto bridged to B (`topic bench/# out`).
//!
//! 64-byte payloads carrying the send time, QoS 0 and QoS 1:
//! - throughput: N messages written as fast as possible, messages per second
//!   from the first send to the last receipt;
//! - latency: messages paced at a fixed rate, p50/p99 send-to-receipt.
//!
//! Each figure is the median of several rounds; the relays alternate within
//! a round (reversed every other round) so that load on a shared machine hits
//! them alike.
//!
//! `cargo bench --bench mqtt_relay` (env `MQTT_RELAY_N`, `MQTT_RELAY_RATE`,
//! `MQTT_RELAY_ROUNDS`, `MQTT_RELAY_PAIRS` = `clients`, `embedded` or both).

#![allow(clippy::expect_used, clippy::unwrap_used, missing_docs)]

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap_or(0)
}

fn wait_port(port: u16) {
    let end = Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < end, "nothing listens on {port}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn tmp(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("sb-bench-{tag}-{}", std::process::id()));
    let _ = std::fs::create_dir_all(&d);
    d
}

fn mosquitto(dir: &Path, name: &str, port: u16, extra: &str) -> Proc {
    let conf = dir.join(format!("{name}.conf"));
    std::fs::write(
        &conf,
        format!(
            "listener {port} 127.0.0.1\nallow_anonymous true\nmax_queued_messages 1000000\n\
             max_inflight_messages 1000\n{extra}"
        ),
    )
    .expect("write mosquitto.conf");
    let bin = if Path::new("/usr/sbin/mosquitto").exists() {
        "/usr/sbin/mosquitto"
    } else {
        "mosquitto"
    };
    let p = quiet(bin, "-c", &conf, "mosquitto (Debian package mosquitto)");
    wait_port(port);
    p
}

/// Starts `bin OPT FILE` with its output discarded.
fn quiet(bin: impl AsRef<std::ffi::OsStr>, opt: &str, file: &Path, what: &str) -> Proc {
    Proc(
        Command::new(bin)
            .arg(opt)
            .arg(file)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect(what),
    )
}

fn now_ns() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos())
}

/// A subscriber on B whose receipts (send time, receive time) come through
/// a channel.
fn subscriber(port: u16, qos: u8) -> (Proc, mpsc::Receiver<(u128, u128)>) {
    let mut child = Command::new("mosquitto_sub")
        .args([
            "-h",
            "127.0.0.1",
            "-p",
            &port.to_string(),
            "-q",
            &qos.to_string(),
        ])
        .args(["-t", "bench/#", "-F", "%p"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("mosquitto_sub (Debian package mosquitto-clients)");
    let out = child.stdout.take().expect("stdout");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(out).lines().map_while(Result::ok) {
            let t = now_ns();
            let sent = line
                .split_whitespace()
                .next()
                .and_then(|s| s.parse::<u128>().ok())
                .unwrap_or(0);
            if tx.send((sent, t)).is_err() {
                break;
            }
        }
    });
    (Proc(child), rx)
}

fn publisher(port: u16, qos: u8) -> Proc {
    Proc(
        Command::new("mosquitto_pub")
            .args([
                "-h",
                "127.0.0.1",
                "-p",
                &port.to_string(),
                "-q",
                &qos.to_string(),
            ])
            .args(["-t", "bench/x", "-l"])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("mosquitto_pub"),
    )
}

/// A 64-byte payload line (63 bytes + newline) starting with the send time.
fn line() -> String {
    let mut s = format!("{} ", now_ns());
    while s.len() < 63 {
        s.push('x');
    }
    s.push('\n');
    s
}

struct Figures {
    rate: f64,
    received: usize,
    p50_us: f64,
    p99_us: f64,
    /// CPU time the relay spent per message while paced (the latency run).
    cpu_us: f64,
}

/// Where the relay's CPU time is read: a process (every thread of it), or
/// this process's tokio threads (switchboard in-process).
#[derive(Clone, Copy)]
enum Cpu {
    Process(u32),
    TokioThreads,
}

impl Cpu {
    /// Nanoseconds on CPU so far (`/proc/PID/task/*/schedstat`, field 1).
    fn ns(self) -> u64 {
        let dir = match self {
            Cpu::Process(pid) => format!("/proc/{pid}/task"),
            Cpu::TokioThreads => "/proc/self/task".to_owned(),
        };
        let Ok(tasks) = std::fs::read_dir(&dir) else {
            return 0;
        };
        let mut total = 0;
        for t in tasks.flatten() {
            if matches!(self, Cpu::TokioThreads) {
                let comm = std::fs::read_to_string(t.path().join("comm")).unwrap_or_default();
                if !comm.starts_with("tokio-r") {
                    continue;
                }
            }
            total += std::fs::read_to_string(t.path().join("schedstat"))
                .ok()
                .and_then(|s| {
                    s.split_whitespace()
                        .next()
                        .and_then(|x| x.parse::<u64>().ok())
                })
                .unwrap_or(0);
        }
        total
    }
}

fn drain(rx: &mpsc::Receiver<(u128, u128)>) {
    while rx.try_recv().is_ok() {}
}

/// Sends `n` messages as fast as possible, then `paced` at `rate`/s.
fn measure(a: u16, b: u16, qos: u8, n: usize, rate: u32, cpu: Cpu) -> Figures {
    let (_sub, rx) = subscriber(b, qos);
    let mut p = publisher(a, qos);
    let mut stdin = p.0.stdin.take().expect("stdin");
    // Warm up until messages flow end to end (subscriptions in place).
    let end = Instant::now() + Duration::from_secs(20);
    loop {
        let _ = stdin.write_all(line().as_bytes());
        let _ = stdin.flush();
        if rx.recv_timeout(Duration::from_millis(100)).is_ok() {
            break;
        }
        assert!(Instant::now() < end, "the relay does not relay");
    }
    std::thread::sleep(Duration::from_millis(300));
    drain(&rx);
    // Throughput.
    let t0 = now_ns();
    let mut batch = String::with_capacity(64 * 256);
    for i in 0..n {
        batch.push_str(&line());
        if i % 256 == 255 {
            let _ = stdin.write_all(batch.as_bytes());
            batch.clear();
        }
    }
    let _ = stdin.write_all(batch.as_bytes());
    let _ = stdin.flush();
    let mut received = 0;
    let mut last = t0;
    let deadline = Instant::now() + Duration::from_secs(60);
    while received < n && Instant::now() < deadline {
        match rx.recv_timeout(Duration::from_secs(2)) {
            Ok((_, t)) => {
                received += 1;
                last = t;
            }
            Err(_) => break,
        }
    }
    let secs = (last.saturating_sub(t0)) as f64 / 1e9;
    let rate_achieved = if secs > 0.0 {
        received as f64 / secs
    } else {
        0.0
    };
    std::thread::sleep(Duration::from_millis(500));
    drain(&rx);
    // Latency at a fixed rate.
    let count = (rate as usize) * 3;
    let gap = Duration::from_secs_f64(1.0 / f64::from(rate.max(1)));
    let cpu0 = cpu.ns();
    let start = Instant::now();
    for i in 0..count {
        let due = start + gap * u32::try_from(i).unwrap_or(u32::MAX);
        if let Some(d) = due.checked_duration_since(Instant::now()) {
            std::thread::sleep(d);
        }
        let _ = stdin.write_all(line().as_bytes());
        let _ = stdin.flush();
    }
    let mut lat = Vec::with_capacity(count);
    let deadline = Instant::now() + Duration::from_secs(20);
    while lat.len() < count && Instant::now() < deadline {
        match rx.recv_timeout(Duration::from_secs(2)) {
            Ok((s, t)) if s > 0 => lat.push((t.saturating_sub(s)) as f64 / 1e3),
            Ok(_) => {}
            Err(_) => break,
        }
    }
    let cpu_us = cpu.ns().saturating_sub(cpu0) as f64 / 1e3 / count.max(1) as f64;
    lat.sort_by(|x, y| x.total_cmp(y));
    let pct = |q: f64| {
        if lat.is_empty() {
            f64::NAN
        } else {
            lat[((lat.len() as f64 - 1.0) * q).round() as usize]
        }
    };
    drop(stdin);
    Figures {
        rate: rate_achieved,
        received,
        p50_us: pct(0.5),
        p99_us: pct(0.99),
        cpu_us,
    }
}

/// The relays measured: how the publisher reaches the subscriber's broker B.
#[derive(Clone, Copy)]
enum Setup {
    /// pub -> A -> switchboard (two client adapters, one route) -> B -> sub.
    SwitchboardClients,
    /// pub -> A -> mosquitto with two bridge connections (`in` from A,
    /// `out` to B) -> B -> sub: the same processes and hops as above.
    MosquittoRelay,
    /// pub -> switchboard (embedded broker + a client adapter to B) -> B -> sub.
    SwitchboardEmbedded,
    /// pub -> mosquitto bridged to B (`out`) -> B -> sub: the same
    /// processes and hops as the embedded case.
    MosquittoBridge,
}

impl Setup {
    const ALL: [Setup; 4] = [
        Setup::SwitchboardClients,
        Setup::MosquittoRelay,
        Setup::SwitchboardEmbedded,
        Setup::MosquittoBridge,
    ];

    fn name(self) -> &'static str {
        match self {
            Setup::SwitchboardClients => "switchboard A->B clients",
            Setup::MosquittoRelay => "mosquitto A->B relay",
            Setup::SwitchboardEmbedded => "switchboard embedded->B",
            Setup::MosquittoBridge => "mosquitto bridge->B",
        }
    }
}

fn runtime() -> tokio::runtime::Runtime {
    // The same runtime as the bridge binary: multi-threaded, one worker per
    // core (two on the bench machine) unless MQTT_RELAY_WORKERS says otherwise.
    let mut b = tokio::runtime::Builder::new_multi_thread();
    // MQTT_RELAY_WORKERS: worker threads (default: one per core).
    if let Some(n) = std::env::var("MQTT_RELAY_WORKERS")
        .ok()
        .and_then(|s| s.parse().ok())
    {
        b.worker_threads(n);
    }
    b.enable_all().build().expect("runtime")
}

/// The bridge binary (`examples/bridge`, release) next to this bench.
fn bridge_bin() -> Option<PathBuf> {
    let exe = std::env::current_exe().ok()?;
    let p = exe.parent()?.parent()?.join("examples").join("bridge");
    p.exists().then_some(p)
}

fn switchboard_run(cfg: &str, pub_port: u16, b: u16, qos: u8, n: usize, rate: u32) -> Figures {
    if std::env::var_os("MQTT_RELAY_PROCESS").is_some() {
        let bin = bridge_bin().expect("examples/bridge: cargo build --release --example bridge");
        let conf = std::env::temp_dir().join(format!("sb-relay-{}.toml", std::process::id()));
        std::fs::write(&conf, cfg).expect("write config");
        let p = quiet(bin, "--config", &conf, "bridge");
        let pid = p.0.id();
        wait_port(pub_port);
        return measure(pub_port, b, qos, n, rate, Cpu::Process(pid));
    }
    let rt = runtime();
    let handle = rt
        .block_on(async { switchboard::Bridge::from_toml_str(cfg)?.start().await })
        .expect("bridge");
    if pub_port != 0 {
        wait_port(pub_port);
    }
    let f = measure(pub_port, b, qos, n, rate, Cpu::TokioThreads);
    if std::env::var_os("MQTT_RELAY_DEBUG").is_some() {
        use std::sync::atomic::Ordering::Relaxed;
        for s in handle.router().slots() {
            let m = &s.metrics;
            eprintln!(
                "  {}: received {} sent {} dropped {} errors {} queue evicted {}",
                s.name,
                m.received.load(Relaxed),
                m.sent.load(Relaxed),
                m.dropped.load(Relaxed),
                m.errors.load(Relaxed),
                s.queue.evicted()
            );
        }
    }
    let _ = rt.block_on(handle.shutdown());
    f
}

/// switchboard as the relay: an `mqtt` adapter `src` (`source`: a client
/// of A, or the embedded broker) and a client adapter `b` to B, one route.
fn switchboard_config(source: &str, b: u16, qos: u8) -> String {
    format!(
        r#"
[adapter.src]
kind = "mqtt"
{source}
[adapter.b]
kind = "mqtt"
url = "mqtt://127.0.0.1:{b}"
max_buffered = 1000000
[[route]]
from = "src:bench/#"
to = ["b:{{0}}"]
qos = {qos}
"#
    )
}

fn relay(dir: &Path, r: Setup, a: u16, b: u16, qos: u8, n: usize, rate: u32) -> Figures {
    match r {
        Setup::SwitchboardClients => {
            let cfg = switchboard_config(
                &format!("url = \"mqtt://127.0.0.1:{a}\"\nmax_buffered = 1000000"),
                b,
                qos,
            );
            switchboard_run(&cfg, a, b, qos, n, rate)
        }
        Setup::SwitchboardEmbedded => {
            let m = free_port();
            let cfg = switchboard_config(&format!(r#"listen = "127.0.0.1:{m}""#), b, qos);
            switchboard_run(&cfg, m, b, qos, n, rate)
        }
        Setup::MosquittoRelay => {
            let m = free_port();
            let _relay = mosquitto(
                dir,
                &format!("relay-q{qos}"),
                m,
                &format!(
                    "connection from_a\naddress 127.0.0.1:{a}\ntopic bench/# in {qos}\n\
                     cleansession true\n\
                     connection to_b\naddress 127.0.0.1:{b}\ntopic bench/# out {qos}\n\
                     cleansession true\n"
                ),
            );
            measure(a, b, qos, n, rate, Cpu::Process(_relay.0.id()))
        }
        Setup::MosquittoBridge => {
            let m = free_port();
            let _bridged = mosquitto(
                dir,
                &format!("bridge-q{qos}"),
                m,
                &format!(
                    "connection to_b\naddress 127.0.0.1:{b}\ntopic bench/# out {qos}\n\
                     cleansession true\n"
                ),
            );
            measure(m, b, qos, n, rate, Cpu::Process(_bridged.0.id()))
        }
    }
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        println!("mqtt_relay: bench");
        return;
    }
    let n: usize = std::env::var("MQTT_RELAY_N")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(20_000);
    let rate: u32 = std::env::var("MQTT_RELAY_RATE")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1000);
    let dir = tmp("relay");
    println!("mqtt_relay: {n} x 64 B for throughput, {rate}/s for 3 s for latency");
    println!(
        "{:<28} {:>12} {:>9} {:>10} {:>10} {:>11}",
        "relay", "msg/s", "received", "p50 us", "p99 us", "cpu us/msg"
    );
    let rounds: usize = std::env::var("MQTT_RELAY_ROUNDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(5);
    let median = |v: &mut Vec<f64>| {
        v.sort_by(|a, b| a.total_cmp(b));
        v.get(v.len() / 2).copied().unwrap_or(f64::NAN)
    };
    // MQTT_RELAY_PAIRS: "clients" (switchboard's two client adapters vs a
    // mosquitto relaying A -> B), "embedded" (switchboard's embedded broker
    // bridged to B vs a mosquitto bridged to B), or both (default).
    let pairs = std::env::var("MQTT_RELAY_PAIRS").unwrap_or_else(|_| "clients,embedded".into());
    let relays: Vec<Setup> = Setup::ALL
        .into_iter()
        .filter(|r| match r {
            Setup::SwitchboardClients | Setup::MosquittoRelay => pairs.contains("clients"),
            _ => pairs.contains("embedded"),
        })
        .collect();
    for qos in [0u8, 1] {
        let (pa, pb) = (free_port(), free_port());
        let _a = mosquitto(&dir, &format!("a-q{qos}"), pa, "");
        let _b = mosquitto(&dir, &format!("b-q{qos}"), pb, "");
        let mut runs: Vec<Vec<Figures>> = relays.iter().map(|_| Vec::new()).collect();
        // Alternate the relays (in reverse order every other round) so that
        // load changes on the shared machine hit all of them alike.
        for round in 0..rounds {
            let mut order: Vec<usize> = (0..relays.len()).collect();
            if round % 2 == 1 {
                order.reverse();
            }
            for i in order {
                runs[i].push(relay(&dir, relays[i], pa, pb, qos, n, rate));
            }
        }
        let mut med = Vec::new();
        for (i, r) in runs.iter().enumerate() {
            let (mut rate_v, mut p50, mut p99): (Vec<f64>, Vec<f64>, Vec<f64>) = (
                r.iter().map(|f| f.rate).collect(),
                r.iter().map(|f| f.p50_us).collect(),
                r.iter().map(|f| f.p99_us).collect(),
            );
            let lost = r.iter().map(|f| n - f.received.min(n)).sum::<usize>();
            let runs_rate: Vec<f64> = rate_v.iter().map(|x| x.round()).collect();
            let runs_p50: Vec<f64> = p50.iter().map(|x| x.round()).collect();
            let runs_p99: Vec<f64> = p99.iter().map(|x| x.round()).collect();
            let mut cpu: Vec<f64> = r.iter().map(|f| f.cpu_us).collect();
            let m = (
                median(&mut rate_v),
                median(&mut p50),
                median(&mut p99),
                median(&mut cpu),
            );
            println!(
                "{:<28} {:>12.0} {:>9} {:>10.0} {:>10.0} {:>11.1}",
                format!("{} QoS {qos}", relays[i].name()),
                m.0,
                n * rounds - lost,
                m.1,
                m.2,
                m.3,
            );
            println!("    runs: msg/s {runs_rate:?} p50 {runs_p50:?} p99 {runs_p99:?}");
            med.push(m);
        }
        for pair in med.chunks(2) {
            if let [s, m] = pair {
                println!(
                    "ratio QoS {qos} (switchboard / mosquitto, same hops): throughput {:.2}, p50 {:.2}, p99 {:.2}, cpu per message {:.2}",
                    s.0 / m.0,
                    s.1 / m.1,
                    s.2 / m.2,
                    s.3 / m.3
                );
            }
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
}
