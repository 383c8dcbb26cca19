//! GET requests/s of our CoAP server against libcoap's coap-server-notls
//! serving the same resource in the same run, with the same load generator:
//! a small UDP client keeping a window of CON GETs in flight, counting
//! responses, retransmissions (after 500 ms) and losses, and p50/p99 latency.
//! Servers are pinned to CPU 0 (`taskset -c 0`), run the bench itself under
//! `taskset -c 1`:
//!
//! `taskset -c 1 cargo bench -p switchboard-coap --bench coap_server -- [secs] [window]`
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::collections::HashMap;
use std::net::{SocketAddr, UdpSocket};
use std::process::{Child, Command};
use std::time::{Duration, Instant};

fn free_port() -> u16 {
    UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn request(code: u8, mid: u16, path: &str, payload: &[u8]) -> Vec<u8> {
    request_obs(code, mid, path, payload, false)
}

fn request_obs(code: u8, mid: u16, path: &str, payload: &[u8], observe: bool) -> Vec<u8> {
    let mut v = vec![0x41, code, (mid >> 8) as u8, mid as u8, 0x5a];
    let mut prev = 0u8;
    if observe {
        v.push(0x60);
        prev = 6;
    }
    for seg in path.split('/') {
        let delta: u8 = 11 - prev;
        prev = 11;
        v.push((delta << 4) | seg.len() as u8);
        v.extend_from_slice(seg.as_bytes());
    }
    if !payload.is_empty() {
        v.push(0xff);
        v.extend_from_slice(payload);
    }
    v
}

fn cpu_ticks(pid: u32) -> u64 {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let after = s.rsplit_once(')').map(|x| x.1).unwrap_or("");
    let f: Vec<&str> = after.split_whitespace().collect();
    let ut: u64 = f.get(11).and_then(|x| x.parse().ok()).unwrap_or(0);
    let st: u64 = f.get(12).and_then(|x| x.parse().ok()).unwrap_or(0);
    ut + st
}

struct Report {
    name: &'static str,
    responses: u64,
    secs: f64,
    retrans: u64,
    lost: u64,
    cpu_s: f64,
    p50_us: u64,
    p99_us: u64,
}

fn one_request(sock: &UdpSocket, to: SocketAddr, dg: &[u8]) -> bool {
    for _ in 0..20 {
        sock.send_to(dg, to).unwrap();
        let mut b = [0u8; 2048];
        if let Ok((n, _)) = sock.recv_from(&mut b)
            && n >= 4
            && b[2..4] == dg[2..4]
        {
            return true;
        }
    }
    false
}

fn load(name: &'static str, to: SocketAddr, pid: u32, secs: f64, window: usize) -> Report {
    let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
    sock.set_read_timeout(Some(Duration::from_millis(100)))
        .unwrap();
    let body = vec![b'v'; 64];
    assert!(
        one_request(&sock, to, &request(3, 1, "bench/value", &body)),
        "{name}: PUT failed"
    );
    assert!(
        one_request(&sock, to, &request(1, 2, "bench/value", &[])),
        "{name}: GET failed"
    );
    sock.set_read_timeout(Some(Duration::from_millis(5)))
        .unwrap();
    let mut inflight: HashMap<u16, (Instant, Instant, Vec<u8>)> = HashMap::new();
    let mut mid: u16 = 100;
    let mut lat = Vec::with_capacity(1 << 20);
    let (mut retrans, mut responses) = (0u64, 0u64);
    let cpu0 = cpu_ticks(pid);
    let start = Instant::now();
    let end = start + Duration::from_secs_f64(secs);
    let mut buf = [0u8; 2048];
    loop {
        let now = Instant::now();
        if now < end {
            while inflight.len() < window {
                mid = mid.wrapping_add(1);
                let dg = request(1, mid, "bench/value", &[]);
                sock.send_to(&dg, to).unwrap();
                inflight.insert(mid, (now, now, dg));
            }
        } else if inflight.is_empty() || now > end + Duration::from_secs(2) {
            break;
        }
        match sock.recv_from(&mut buf) {
            Ok((n, _)) if n >= 4 => {
                let m = u16::from_be_bytes([buf[2], buf[3]]);
                if let Some((t0, _, _)) = inflight.remove(&m) {
                    responses += 1;
                    lat.push(t0.elapsed().as_micros() as u64);
                }
            }
            _ => {}
        }
        let now = Instant::now();
        for (t0, last, dg) in inflight.values_mut() {
            let _ = t0;
            if now.duration_since(*last) > Duration::from_millis(500) {
                sock.send_to(dg, to).unwrap();
                *last = now;
                retrans += 1;
            }
        }
    }
    let elapsed = start.elapsed().as_secs_f64().min(secs + 2.0);
    let cpu_s = (cpu_ticks(pid) - cpu0) as f64 / 100.0;
    lat.sort_unstable();
    let pct = |p: f64| {
        lat.get(((lat.len() as f64) * p) as usize)
            .copied()
            .unwrap_or(0)
    };
    Report {
        name,
        responses,
        secs: elapsed,
        retrans,
        lost: inflight.len() as u64,
        cpu_s,
        p50_us: pct(0.5),
        p99_us: pct(0.99),
    }
}

struct ObsReport {
    name: &'static str,
    puts: u64,
    notifications: u64,
    secs: f64,
    cpu_s: f64,
}

/// One observer of `bench/obs` while a publisher keeps `window` CON PUTs of
/// new values in flight; counts notifications received (ACKing CON ones).
fn observe_load(
    name: &'static str,
    to: SocketAddr,
    pid: u32,
    secs: f64,
    window: usize,
) -> ObsReport {
    let publ = UdpSocket::bind("127.0.0.1:0").unwrap();
    let obs = UdpSocket::bind("127.0.0.1:0").unwrap();
    publ.set_read_timeout(Some(Duration::from_millis(100)))
        .unwrap();
    obs.set_read_timeout(Some(Duration::from_millis(100)))
        .unwrap();
    assert!(
        one_request(&publ, to, &request(3, 1, "bench/obs", b"0")),
        "{name}: PUT failed"
    );
    assert!(
        one_request(&obs, to, &request_obs(1, 2, "bench/obs", &[], true)),
        "{name}: observe failed"
    );
    publ.set_nonblocking(true).unwrap();
    obs.set_nonblocking(true).unwrap();
    let mut inflight: HashMap<u16, Instant> = HashMap::new();
    let (mut mid, mut seq, mut puts, mut notes) = (1000u16, 0u64, 0u64, 0u64);
    let mut buf = [0u8; 2048];
    let cpu0 = cpu_ticks(pid);
    let start = Instant::now();
    let end = start + Duration::from_secs_f64(secs);
    while Instant::now() < end {
        while inflight.len() < window {
            mid = mid.wrapping_add(1);
            seq += 1;
            let dg = request(3, mid, "bench/obs", seq.to_string().as_bytes());
            let _ = publ.send_to(&dg, to);
            inflight.insert(mid, Instant::now());
        }
        while let Ok((n, _)) = publ.recv_from(&mut buf) {
            if n >= 4
                && inflight
                    .remove(&u16::from_be_bytes([buf[2], buf[3]]))
                    .is_some()
            {
                puts += 1;
            }
        }
        while let Ok((n, from)) = obs.recv_from(&mut buf) {
            if n >= 4 && buf[1] >= 0x40 {
                notes += 1;
                if buf[0] & 0x30 == 0 {
                    let _ = obs.send_to(&[0x60, 0, buf[2], buf[3]], from);
                }
            }
        }
        let now = Instant::now();
        inflight.retain(|_, t| now.duration_since(*t) < Duration::from_millis(500));
    }
    let elapsed = start.elapsed().as_secs_f64();
    ObsReport {
        name,
        puts,
        notifications: notes,
        secs: elapsed,
        cpu_s: (cpu_ticks(pid) - cpu0) as f64 / 100.0,
    }
}

fn serve(port: u16) {
    use switchboard_model::Adapter;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async move {
        let cfg = switchboard_coap::Config {
            listen: format!("127.0.0.1:{port}"),
            ..Default::default()
        };
        let (ctx, mut h) = switchboard_model::AdapterContext::standalone("coap", 1024);
        let running = Box::new(switchboard_coap::CoapAdapter::new(cfg))
            .start(ctx)
            .await
            .unwrap();
        tokio::spawn(async move { while h.ingress_rx.recv().await.is_some() {} });
        let _ = running.task.await;
    });
}

fn spawn_pinned(cmd: &str, args: &[&str]) -> Child {
    Command::new("taskset")
        .args(["-c", "0", cmd])
        .args(args)
        .spawn()
        .expect("taskset / server binary missing")
}

fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--bench"))
        .collect();
    if args.first().map(String::as_str) == Some("--serve") {
        serve(args[1].parse().unwrap());
        return;
    }
    let secs: f64 = args.first().and_then(|a| a.parse().ok()).unwrap_or(5.0);
    let window: usize = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(32);
    let me = std::env::current_exe().unwrap();
    let ours_port = free_port();
    let mut ours = spawn_pinned(me.to_str().unwrap(), &["--serve", &ours_port.to_string()]);
    let lib_port = free_port();
    let mut lib = spawn_pinned(
        "coap-server-notls",
        &["-A", "127.0.0.1", "-p", &lib_port.to_string(), "-d", "10"],
    );
    std::thread::sleep(Duration::from_millis(500));
    let lib_addr = SocketAddr::from(([127, 0, 0, 1], lib_port));
    let ours_addr = SocketAddr::from(([127, 0, 0, 1], ours_port));
    let mut reports = Vec::new();
    for _round in 0..2 {
        reports.push(load("libcoap", lib_addr, lib.id(), secs, window));
        reports.push(load("switchboard", ours_addr, ours.id(), secs, window));
    }
    let mut obs_reports = Vec::new();
    for _round in 0..2 {
        obs_reports.push(observe_load("libcoap", lib_addr, lib.id(), secs, window));
        obs_reports.push(observe_load(
            "switchboard",
            ours_addr,
            ours.id(),
            secs,
            window,
        ));
    }
    let _ = ours.kill();
    let _ = lib.kill();
    let _ = ours.wait();
    let _ = lib.wait();
    println!(
        "window {window}, {secs} s per run, servers on CPU 0, generator on the CPUs it was given"
    );
    println!(
        "{:<12} {:>10} {:>10} {:>8} {:>6} {:>12} {:>8} {:>8}",
        "server", "responses", "req/s", "retrans", "lost", "cpu us/req", "p50 us", "p99 us"
    );
    for r in &reports {
        println!(
            "{:<12} {:>10} {:>10.0} {:>8} {:>6} {:>12.2} {:>8} {:>8}",
            r.name,
            r.responses,
            r.responses as f64 / r.secs,
            r.retrans,
            r.lost,
            r.cpu_s * 1e6 / r.responses.max(1) as f64,
            r.p50_us,
            r.p99_us
        );
    }
    println!();
    println!(
        "{:<12} {:>10} {:>12} {:>16}",
        "observe", "PUT/s", "notif/s", "cpu us/notif"
    );
    for r in &obs_reports {
        println!(
            "{:<12} {:>10.0} {:>12.0} {:>16.2}",
            r.name,
            r.puts as f64 / r.secs,
            r.notifications as f64 / r.secs,
            r.cpu_s * 1e6 / r.notifications.max(1) as f64
        );
    }
    let best_obs = |n: &str| {
        obs_reports
            .iter()
            .filter(|r| r.name == n)
            .max_by_key(|r| r.notifications)
            .unwrap()
    };
    let (o, l) = (best_obs("switchboard"), best_obs("libcoap"));
    println!(
        "observe ratio (switchboard / libcoap): notifications/s {:.2}",
        (o.notifications as f64 / o.secs) / (l.notifications as f64 / l.secs).max(1e-9)
    );
    println!();
    let best = |n: &str| {
        reports
            .iter()
            .filter(|r| r.name == n)
            .max_by(|a, b| a.responses.cmp(&b.responses))
            .unwrap()
    };
    let (o, l) = (best("switchboard"), best("libcoap"));
    let rate = |r: &Report| r.responses as f64 / r.secs;
    let cpu = |r: &Report| r.cpu_s / r.responses.max(1) as f64;
    println!(
        "ratios (switchboard / libcoap, best run each): req/s {:.2}, cpu per request {:.2}, p99 {:.2}",
        rate(o) / rate(l),
        cpu(o) / cpu(l),
        o.p99_us as f64 / l.p99_us.max(1) as f64
    );
}
