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
//!   from the first send to the last receipt, one relay at a time;
//! - latency: both relays of a pair run side by side, each on its own topic
//!   prefix with its own publisher and subscriber, and the paced messages
//!   alternate between them (half a period apart, which one goes first
//!   swapped every round), so that whatever else the shared machine does
//!   hits both alike; p50/p99 send-to-receipt per relay, and the relay's CPU
//!   time per message.
//!
//! Each figure is the median of several rounds; the latency ratios are also
//! given per round (both relays measured in the same seconds).
//!
//! `cargo bench --bench mqtt_relay` (env `MQTT_RELAY_N`, `MQTT_RELAY_RATE`,
//! `MQTT_RELAY_ROUNDS`, `MQTT_RELAY_PAIRS` = `clients`, `embedded` or both,
//! `MQTT_RELAY_QOS`, `MQTT_RELAY_WORKERS`, `MQTT_RELAY_CURRENT_THREAD`,
//! `MQTT_RELAY_PROCESS`, `MQTT_RELAY_DEBUG`, `MQTT_RELAY_CONTROL`, `MQTT_RELAY_DUMP`
//! = a directory for each round's sorted latencies, one file per relay).

#![allow(clippy::expect_used, clippy::unwrap_used, missing_docs)]

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
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

/// A subscriber on B to `PREFIX/bench/#` whose receipts (send time,
/// receive time) come through a channel.
fn subscriber(port: u16, qos: u8, prefix: &str) -> (Proc, mpsc::Receiver<(u128, u128)>) {
    let mut child = Command::new("mosquitto_sub")
        .args([
            "-h",
            "127.0.0.1",
            "-p",
            &port.to_string(),
            "-q",
            &qos.to_string(),
        ])
        .args(["-t", &format!("{prefix}/bench/#"), "-F", "%p"])
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

/// `mosquitto_pub -l` to `PREFIX/bench/x`.
fn publisher(port: u16, qos: u8, prefix: &str) -> Proc {
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
            .args(["-t", &format!("{prefix}/bench/x"), "-l"])
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

/// A relay started for one round.
struct Relay {
    /// Where its publisher connects.
    pub_port: u16,
    /// Its topics: `PREFIX/bench/...`.
    prefix: &'static str,
    cpu: Cpu,
    bridge: Option<(
        std::sync::Arc<tokio::runtime::Runtime>,
        switchboard::BridgeHandle,
    )>,
    /// Stops the thread driving a current-thread runtime.
    stop: Option<std::sync::Arc<tokio::sync::Notify>>,
    _procs: Vec<Proc>,
}

impl Drop for Relay {
    fn drop(&mut self) {
        let Some((rt, handle)) = self.bridge.take() else {
            return;
        };
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
                for c in m.extra().iter().filter(|c| c.get() > 0) {
                    eprintln!("    {} {}", c.name, c.get());
                }
            }
        }
        let _ = rt.block_on(handle.shutdown());
        if let Some(s) = &self.stop {
            s.notify_one();
        }
    }
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
from = "src:sb/bench/#"
to = ["b:{{0}}"]
qos = {qos}
"#
    )
}

fn switchboard_start(cfg: &str, pub_port: u16) -> Relay {
    if std::env::var_os("MQTT_RELAY_PROCESS").is_some() {
        let bin = bridge_bin().expect("examples/bridge: cargo build --release --example bridge");
        let conf = std::env::temp_dir().join(format!("sb-relay-{}.toml", std::process::id()));
        std::fs::write(&conf, cfg).expect("write config");
        let p = quiet(bin, "--config", &conf, "bridge");
        let pid = p.0.id();
        wait_port(pub_port);
        return Relay {
            pub_port,
            prefix: "sb",
            cpu: Cpu::Process(pid),
            bridge: None,
            stop: None,
            _procs: vec![p],
        };
    }
    // MQTT_RELAY_CURRENT_THREAD=1: tokio's current-thread runtime, driven
    // by one thread of its own, instead of the multi-threaded one.
    if std::env::var_os("MQTT_RELAY_CURRENT_THREAD").is_some() {
        let rt = std::sync::Arc::new(
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime"),
        );
        let handle = rt
            .block_on(async { switchboard::Bridge::from_toml_str(cfg)?.start().await })
            .expect("bridge");
        let stop = std::sync::Arc::new(tokio::sync::Notify::new());
        let (driver, until) = (rt.clone(), stop.clone());
        std::thread::Builder::new()
            // Counted by `Cpu::TokioThreads`.
            .name("tokio-rt-current".into())
            .spawn(move || driver.block_on(until.notified()))
            .expect("driver thread");
        wait_port(pub_port);
        return Relay {
            pub_port,
            prefix: "sb",
            cpu: Cpu::TokioThreads,
            bridge: Some((rt, handle)),
            stop: Some(stop),
            _procs: Vec::new(),
        };
    }
    let rt = runtime();
    let handle = rt
        .block_on(async { switchboard::Bridge::from_toml_str(cfg)?.start().await })
        .expect("bridge");
    wait_port(pub_port);
    Relay {
        pub_port,
        prefix: "sb",
        cpu: Cpu::TokioThreads,
        bridge: Some((std::sync::Arc::new(rt), handle)),
        stop: None,
        _procs: Vec::new(),
    }
}

fn start(dir: &Path, r: Setup, a: u16, b: u16, qos: u8) -> Relay {
    // MQTT_RELAY_CONTROL=1: an A/A control, switchboard's place taken by
    // the same mosquitto setup as its pair's (on `sb/`), so the ratios show
    // what the harness itself makes of two equal relays.
    let control = std::env::var_os("MQTT_RELAY_CONTROL").is_some();
    match r {
        Setup::SwitchboardClients if control => mosquitto_setup(dir, false, "sb", a, b, qos),
        Setup::SwitchboardEmbedded if control => mosquitto_setup(dir, true, "sb", a, b, qos),
        Setup::SwitchboardClients => {
            let cfg = switchboard_config(
                &format!("url = \"mqtt://127.0.0.1:{a}\"\nmax_buffered = 1000000"),
                b,
                qos,
            );
            switchboard_start(&cfg, a)
        }
        Setup::SwitchboardEmbedded => {
            let m = free_port();
            let cfg = switchboard_config(&format!(r#"listen = "127.0.0.1:{m}""#), b, qos);
            switchboard_start(&cfg, m)
        }
        Setup::MosquittoRelay => mosquitto_setup(dir, false, "mq", a, b, qos),
        Setup::MosquittoBridge => mosquitto_setup(dir, true, "mq", a, b, qos),
    }
}

/// mosquitto as the relay on `prefix/`: relaying A -> B with two bridge
/// connections, or (`bridged`) bridged to B, its publisher connecting to it.
fn mosquitto_setup(
    dir: &Path,
    bridged: bool,
    prefix: &'static str,
    a: u16,
    b: u16,
    qos: u8,
) -> Relay {
    if bridged {
        return mosquitto_relay(
            dir,
            &format!("{prefix}-bridge-q{qos}"),
            &format!(
                "connection {prefix}_to_b\naddress 127.0.0.1:{b}\ntopic {prefix}/bench/# out {qos}\n\
                 cleansession true\n"
            ),
            prefix,
            None,
        );
    }
    mosquitto_relay(
        dir,
        &format!("{prefix}-relay-q{qos}"),
        &format!(
            "connection {prefix}_from_a\naddress 127.0.0.1:{a}\ntopic {prefix}/bench/# in {qos}\n\
             cleansession true\n\
             connection {prefix}_to_b\naddress 127.0.0.1:{b}\ntopic {prefix}/bench/# out {qos}\n\
             cleansession true\n"
        ),
        prefix,
        Some(a),
    )
}

/// A mosquitto with bridge connections (`conf`) as the relay on `mq/`; its
/// publisher connects to `pub_port`, or to this mosquitto itself.
fn mosquitto_relay(
    dir: &Path,
    name: &str,
    conf: &str,
    prefix: &'static str,
    pub_port: Option<u16>,
) -> Relay {
    let m = free_port();
    let p = mosquitto(dir, name, m, conf);
    Relay {
        pub_port: pub_port.unwrap_or(m),
        prefix,
        cpu: Cpu::Process(p.0.id()),
        bridge: None,
        stop: None,
        _procs: vec![p],
    }
}

/// A publisher and a subscriber through one relay, with messages flowing.
struct Flow {
    stdin: ChildStdin,
    rx: mpsc::Receiver<(u128, u128)>,
    _publisher: Proc,
    _subscriber: Proc,
}

fn flow(relay: &Relay, b: u16, qos: u8) -> Flow {
    let (sub, rx) = subscriber(b, qos, relay.prefix);
    let mut p = publisher(relay.pub_port, qos, relay.prefix);
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
    Flow {
        stdin,
        rx,
        _publisher: p,
        _subscriber: sub,
    }
}

/// Writes `n` messages as fast as possible: messages per second from the
/// first send to the last receipt, and how many arrived.
fn throughput(f: &mut Flow, n: usize) -> (f64, usize) {
    let t0 = now_ns();
    let mut batch = String::with_capacity(64 * 256);
    for i in 0..n {
        batch.push_str(&line());
        if i % 256 == 255 {
            let _ = f.stdin.write_all(batch.as_bytes());
            batch.clear();
        }
    }
    let _ = f.stdin.write_all(batch.as_bytes());
    let _ = f.stdin.flush();
    let mut received = 0;
    let mut last = t0;
    let deadline = Instant::now() + Duration::from_secs(60);
    while received < n && Instant::now() < deadline {
        match f.rx.recv_timeout(Duration::from_secs(2)) {
            Ok((_, t)) => {
                received += 1;
                last = t;
            }
            Err(_) => break,
        }
    }
    let secs = (last.saturating_sub(t0)) as f64 / 1e9;
    let rate = if secs > 0.0 {
        received as f64 / secs
    } else {
        0.0
    };
    std::thread::sleep(Duration::from_millis(500));
    drain(&f.rx);
    (rate, received)
}

#[derive(Clone, Copy)]
struct Latency {
    p50_us: f64,
    p99_us: f64,
    /// CPU time the relay spent per message while paced.
    cpu_us: f64,
}

/// Paces `rate` messages per second for 3 s through each of the two flows,
/// alternating, the second half a period after the first (`first` goes
/// first): p50/p99 send -> receipt and CPU per message of each relay.
fn latency(flows: &mut [Flow; 2], cpus: [Cpu; 2], rate: u32, first: usize) -> [Latency; 2] {
    let count = (rate as usize) * 3;
    let gap = Duration::from_secs_f64(1.0 / f64::from(rate.max(1)));
    let order = [first, 1 - first];
    let cpu0 = cpus.map(Cpu::ns);
    let start = Instant::now();
    for i in 0..count {
        for (k, &idx) in order.iter().enumerate() {
            let due = start
                + gap * u32::try_from(i).unwrap_or(u32::MAX)
                + (gap / 2) * u32::try_from(k).unwrap_or(0);
            if let Some(d) = due.checked_duration_since(Instant::now()) {
                std::thread::sleep(d);
            }
            let _ = flows[idx].stdin.write_all(line().as_bytes());
            let _ = flows[idx].stdin.flush();
        }
    }
    let mut out = [Latency {
        p50_us: f64::NAN,
        p99_us: f64::NAN,
        cpu_us: f64::NAN,
    }; 2];
    let deadline = Instant::now() + Duration::from_secs(20);
    for (k, f) in flows.iter().enumerate() {
        let mut lat = Vec::with_capacity(count);
        while lat.len() < count && Instant::now() < deadline {
            match f.rx.recv_timeout(Duration::from_secs(2)) {
                Ok((s, t)) if s > 0 => lat.push((t.saturating_sub(s)) as f64 / 1e3),
                Ok(_) => {}
                Err(_) => break,
            }
        }
        lat.sort_by(|x, y| x.total_cmp(y));
        if let Ok(dir) = std::env::var("MQTT_RELAY_DUMP") {
            let text: String = lat.iter().map(|l| format!("{l:.1}\n")).collect();
            let _ = std::fs::write(
                Path::new(&dir).join(format!("{}-{}.txt", now_ns(), k)),
                text,
            );
        }
        let pct = |q: f64| {
            if lat.is_empty() {
                f64::NAN
            } else {
                lat[((lat.len() as f64 - 1.0) * q).round() as usize]
            }
        };
        out[k] = Latency {
            p50_us: pct(0.5),
            p99_us: pct(0.99),
            cpu_us: cpus[k].ns().saturating_sub(cpu0[k]) as f64 / 1e3 / count.max(1) as f64,
        };
    }
    out
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
    println!(
        "mqtt_relay: {n} x 64 B for throughput; {rate}/s for 3 s through each relay of a pair, side by side, for latency"
    );
    println!(
        "{:<28} {:>12} {:>9} {:>10} {:>10} {:>11}",
        "relay", "msg/s", "received", "p50 us", "p99 us", "cpu us/msg"
    );
    let rounds: usize = std::env::var("MQTT_RELAY_ROUNDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(5);
    let median = |mut v: Vec<f64>| {
        v.sort_by(|a, b| a.total_cmp(b));
        v.get(v.len() / 2).copied().unwrap_or(f64::NAN)
    };
    // MQTT_RELAY_PAIRS: "clients" (switchboard's two client adapters vs a
    // mosquitto relaying A -> B), "embedded" (switchboard's embedded broker
    // bridged to B vs a mosquitto bridged to B), or both (default).
    let pairs = std::env::var("MQTT_RELAY_PAIRS").unwrap_or_else(|_| "clients,embedded".into());
    let mut chosen = Vec::new();
    if pairs.contains("clients") {
        chosen.push([Setup::SwitchboardClients, Setup::MosquittoRelay]);
    }
    if pairs.contains("embedded") {
        chosen.push([Setup::SwitchboardEmbedded, Setup::MosquittoBridge]);
    }
    // MQTT_RELAY_QOS: "0", "1" or both (default).
    let qos_list = std::env::var("MQTT_RELAY_QOS").unwrap_or_else(|_| "0,1".into());
    for qos in [0u8, 1] {
        if !qos_list.contains(char::from(b'0' + qos)) {
            continue;
        }
        let (pa, pb) = (free_port(), free_port());
        let _a = mosquitto(&dir, &format!("a-q{qos}"), pa, "");
        let _b = mosquitto(&dir, &format!("b-q{qos}"), pb, "");
        for pair in &chosen {
            let mut thr: [Vec<(f64, usize)>; 2] = [Vec::new(), Vec::new()];
            let mut lat: [Vec<Latency>; 2] = [Vec::new(), Vec::new()];
            for round in 0..rounds {
                // Which relay goes first swaps every round.
                let first = round % 2;
                let relays = pair.map(|r| start(&dir, r, pa, pb, qos));
                let mut flows = [flow(&relays[0], pb, qos), flow(&relays[1], pb, qos)];
                for k in [first, 1 - first] {
                    thr[k].push(throughput(&mut flows[k], n));
                }
                let l = latency(&mut flows, relays.each_ref().map(|r| r.cpu), rate, first);
                for k in 0..2 {
                    lat[k].push(l[k]);
                }
                drop(flows);
                drop(relays);
            }
            let mut med = Vec::new();
            for k in 0..2 {
                let received: usize = thr[k].iter().map(|t| t.1).sum();
                let m = (
                    median(thr[k].iter().map(|t| t.0).collect()),
                    median(lat[k].iter().map(|l| l.p50_us).collect()),
                    median(lat[k].iter().map(|l| l.p99_us).collect()),
                    median(lat[k].iter().map(|l| l.cpu_us).collect()),
                );
                println!(
                    "{:<28} {:>12.0} {:>9} {:>10.0} {:>10.0} {:>11.1}",
                    format!("{} QoS {qos}", pair[k].name()),
                    m.0,
                    received,
                    m.1,
                    m.2,
                    m.3,
                );
                let r = |f: &dyn Fn(&Latency) -> f64| -> Vec<f64> {
                    lat[k].iter().map(|l| f(l).round()).collect()
                };
                let rates: Vec<f64> = thr[k].iter().map(|t| t.0.round()).collect();
                println!(
                    "    runs: msg/s {rates:?} p50 {:?} p99 {:?}",
                    r(&|l| l.p50_us),
                    r(&|l| l.p99_us)
                );
                med.push(m);
            }
            let per_round = |f: fn(&Latency) -> f64| -> Vec<f64> {
                lat[0]
                    .iter()
                    .zip(&lat[1])
                    .map(|(s, m)| (f(s) / f(m) * 100.0).round() / 100.0)
                    .collect()
            };
            let p50_rounds = per_round(|l| l.p50_us);
            let p99_rounds = per_round(|l| l.p99_us);
            println!(
                "ratio QoS {qos} (switchboard / mosquitto, same hops): throughput {:.2}, p50 {:.2}, p99 {:.2}, cpu per message {:.2}",
                med[0].0 / med[1].0,
                med[0].1 / med[1].1,
                med[0].2 / med[1].2,
                med[0].3 / med[1].3
            );
            println!(
                "    p50 ratio per round {p50_rounds:?} (median {:.2}); p99 per round {p99_rounds:?} (median {:.2})",
                median(p50_rounds.clone()),
                median(p99_rounds.clone())
            );
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
}
