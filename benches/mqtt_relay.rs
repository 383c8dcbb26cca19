//! MQTT -> bridge -> MQTT relay between two real mosquitto brokers, against
//! mosquitto's own bridge mode (broker A bridged to broker B) in the same run.
//!
//! publisher (mosquitto_pub -l) -> mosquitto A -> RELAY -> mosquitto B ->
//! subscriber (mosquitto_sub), with RELAY = switchboard (two `mqtt` client
//! adapters and one route) or mosquitto A's bridge connection to B.
//! 64-byte payloads carrying the send time, QoS 0 and QoS 1:
//! - throughput: N messages written as fast as possible, messages per second
//!   from the first send to the last receipt;
//! - latency: messages paced at a fixed rate, p50/p99 send-to-receipt.
//!
//! `cargo bench --bench mqtt_relay` (env `MQTT_RELAY_N`, `MQTT_RELAY_RATE`).

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
    let child = Command::new(bin)
        .args(["-c", conf.to_str().unwrap_or_default()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("mosquitto (Debian package mosquitto)");
    wait_port(port);
    Proc(child)
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
}

fn drain(rx: &mpsc::Receiver<(u128, u128)>) {
    while rx.try_recv().is_ok() {}
}

/// Sends `n` messages as fast as possible, then `paced` at `rate`/s.
fn measure(a: u16, b: u16, qos: u8, n: usize, rate: u32) -> Figures {
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
    }
}

fn switchboard_relay(a: u16, b: u16, qos: u8, n: usize, rate: u32) -> Figures {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let cfg = format!(
        r#"
[adapter.a]
kind = "mqtt"
url = "mqtt://127.0.0.1:{a}"
max_buffered = 1000000
[adapter.b]
kind = "mqtt"
url = "mqtt://127.0.0.1:{b}"
max_buffered = 1000000
[[route]]
from = "a:bench/#"
to = ["b:{{0}}"]
qos = {qos}
"#
    );
    let handle = rt
        .block_on(async { switchboard::Bridge::from_toml_str(&cfg)?.start().await })
        .expect("bridge");
    let f = measure(a, b, qos, n, rate);
    let _ = rt.block_on(handle.shutdown());
    f
}

fn mosquitto_bridge(dir: &Path, b: u16, qos: u8, n: usize, rate: u32) -> Figures {
    let a = free_port();
    let _bridged = mosquitto(
        dir,
        &format!("bridge-q{qos}"),
        a,
        &format!(
            "connection relay\naddress 127.0.0.1:{b}\ntopic bench/# out {qos}\n\
             cleansession true\nmax_queued_messages 1000000\n"
        ),
    );
    measure(a, b, qos, n, rate)
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
        "{:<28} {:>12} {:>9} {:>10} {:>10}",
        "relay", "msg/s", "received", "p50 us", "p99 us"
    );
    let rounds: usize = std::env::var("MQTT_RELAY_ROUNDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(3);
    let median = |v: &mut Vec<f64>| {
        v.sort_by(|a, b| a.total_cmp(b));
        v.get(v.len() / 2).copied().unwrap_or(f64::NAN)
    };
    for qos in [0u8, 1] {
        let (pa, pb) = (free_port(), free_port());
        let _a = mosquitto(&dir, &format!("a-q{qos}"), pa, "");
        let _b = mosquitto(&dir, &format!("b-q{qos}"), pb, "");
        let mut runs: [Vec<Figures>; 2] = [Vec::new(), Vec::new()];
        // Alternate the two relays so that load changes hit both alike.
        for _ in 0..rounds {
            runs[0].push(switchboard_relay(pa, pb, qos, n, rate));
            runs[1].push(mosquitto_bridge(&dir, pb, qos, n, rate));
        }
        let mut med = Vec::new();
        for (i, name) in [
            format!("switchboard QoS {qos}"),
            format!("mosquitto bridge QoS {qos}"),
        ]
        .into_iter()
        .enumerate()
        {
            let r = &runs[i];
            let (mut rate_v, mut p50, mut p99): (Vec<f64>, Vec<f64>, Vec<f64>) = (
                r.iter().map(|f| f.rate).collect(),
                r.iter().map(|f| f.p50_us).collect(),
                r.iter().map(|f| f.p99_us).collect(),
            );
            let lost = r.iter().map(|f| n - f.received.min(n)).sum::<usize>();
            let m = (median(&mut rate_v), median(&mut p50), median(&mut p99));
            println!(
                "{:<28} {:>12.0} {:>9} {:>10.0} {:>10.0}   (median of {rounds}; runs msg/s {:?})",
                name,
                m.0,
                n * rounds - lost,
                m.1,
                m.2,
                r.iter().map(|f| f.rate.round()).collect::<Vec<_>>()
            );
            med.push(m);
        }
        println!(
            "ratio QoS {qos} (switchboard / mosquitto): throughput {:.2}, p50 {:.2}, p99 {:.2}",
            med[0].0 / med[1].0,
            med[0].1 / med[1].1,
            med[0].2 / med[1].2
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}
