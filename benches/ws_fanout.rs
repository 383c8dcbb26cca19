//! WebSocket fan-out: one publisher, N subscribed clients (default 1000),
//! deliveries per second and latency percentiles, in one run against
//! (a) the switchboard bridge binary (release build, `ws` adapter; and the
//!     same fan-out as Server-Sent Events from the `http` adapter),
//! (b) a bare tokio-tungstenite broadcast server doing nothing else (the
//!     ceiling of the stack), and
//! (c) mosquitto fanning out to N MQTT subscribers over TCP.
//! The bridge's RSS is read before and after the clients connect (per-client
//! memory).
//!
//! ```text
//! cargo build --release --example bridge
//! cargo bench --bench ws_fanout -- [clients] [messages] [rate_per_s]
//! ```
//! Everything runs on 127.0.0.1 and stops by itself.
//!
//! On a machine with at least two CPUs every server runs in its own process
//! pinned to CPU 0 (`taskset -c 0`: the bridge, the bare server — this same
//! binary started with `--serve-bare PORT` — and mosquitto) and the load
//! generator (publisher and clients) pins itself to CPU 1, so the servers
//! are compared on one core each and the clients never take their CPU.
//! `FANOUT_PIN=0` turns pinning off.

#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::broadcast;
use tokio_tungstenite::tungstenite::Message as Frame;

struct Stats {
    latencies_us: Vec<u64>,
    delivered: u64,
    elapsed: Duration,
}

fn now_us(epoch: Instant) -> u64 {
    epoch.elapsed().as_micros() as u64
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

async fn ws_connect(port: u16, path: &str) -> tokio_tungstenite::WebSocketStream<TcpStream> {
    let tcp = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    let url = format!("ws://127.0.0.1:{port}{path}");
    tokio_tungstenite::client_async(url, tcp).await.unwrap().0
}

/// Connects `n` WebSocket subscribers (sending `sub` first when given) and
/// returns a task per client that counts deliveries and records latencies
/// until `expected` messages arrived or the deadline passed.
async fn ws_subscribers(
    port: u16,
    path: &str,
    n: usize,
    sub: Option<String>,
    expected: usize,
    epoch: Instant,
    ready: Arc<AtomicU64>,
) -> Vec<tokio::task::JoinHandle<(Vec<u64>, u64)>> {
    let mut tasks = Vec::new();
    for _ in 0..n {
        let mut ws = ws_connect(port, path).await;
        if let Some(s) = &sub {
            ws.send(Frame::Text(s.clone().into())).await.unwrap();
        }
        let ready = ready.clone();
        tasks.push(tokio::spawn(async move {
            let mut lat = Vec::with_capacity(expected);
            let mut got = 0u64;
            let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
            loop {
                let f = tokio::time::timeout_at(deadline, ws.next()).await;
                let Ok(Some(Ok(f))) = f else { break };
                let Frame::Text(t) = f else { continue };
                let t = t.as_str();
                if t.contains("\"op\":\"ok\"") {
                    ready.fetch_add(1, Ordering::Relaxed);
                    continue;
                }
                if let Some(sent) = sent_at(t) {
                    lat.push(now_us(epoch).saturating_sub(sent));
                    got += 1;
                    if got as usize >= expected {
                        break;
                    }
                }
            }
            (lat, got)
        }));
    }
    tasks
}

/// The `"s":<micros>` stamp a publisher put in the payload.
fn sent_at(t: &str) -> Option<u64> {
    let i = t.find("\"s\":")? + 4;
    let rest = &t[i..];
    let end = rest
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(rest.len());
    rest[..end].parse().ok()
}

async fn collect(tasks: Vec<tokio::task::JoinHandle<(Vec<u64>, u64)>>, start: Instant) -> Stats {
    let mut latencies_us = Vec::new();
    let mut delivered = 0;
    for t in tasks {
        let (l, g) = t.await.unwrap();
        latencies_us.extend(l);
        delivered += g;
    }
    Stats {
        latencies_us,
        delivered,
        elapsed: start.elapsed(),
    }
}

fn pct(v: &mut [u64], p: f64) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_unstable();
    let i = ((v.len() as f64 - 1.0) * p).round() as usize;
    v[i] as f64 / 1000.0
}

fn report(name: &str, s: &mut Stats, expected: u64) -> f64 {
    let rate = s.delivered as f64 / s.elapsed.as_secs_f64();
    println!(
        "{name:<28} delivered {:>8}/{expected:<8} {:>10.0} deliveries/s  p50 {:>7.2} ms  p99 {:>7.2} ms",
        s.delivered,
        rate,
        pct(&mut s.latencies_us, 0.50),
        pct(&mut s.latencies_us, 0.99)
    );
    rate
}

fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// Whether servers and load generator are pinned to separate CPUs.
fn pinning() -> bool {
    std::env::var("FANOUT_PIN").map_or(true, |v| v != "0")
        && std::thread::available_parallelism().map_or(1, |n| n.get()) >= 2
        && Command::new("taskset").arg("-V").output().is_ok()
}

/// `program args...`, under `taskset -c 0` when pinning.
fn server_command(program: &std::path::Path) -> Command {
    if pinning() {
        let mut c = Command::new("taskset");
        c.arg("-c").arg("0").arg(program);
        c
    } else {
        Command::new(program)
    }
}

/// A child process killed on drop, with a scratch directory removed then.
struct Kill(Child, Option<std::path::PathBuf>);
impl Drop for Kill {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
        if let Some(d) = &self.1 {
            let _ = std::fs::remove_dir_all(d);
        }
    }
}

async fn wait_port(port: u16) {
    for _ in 0..500 {
        if TcpStream::connect(("127.0.0.1", port)).await.is_ok() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("nothing listens on {port}");
}

async fn wait_ready(ready: &AtomicU64, n: u64) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while ready.load(Ordering::Relaxed) < n {
        assert!(
            Instant::now() < deadline,
            "only {} of {n} subscribers ready",
            ready.load(Ordering::Relaxed)
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// Starts the release bridge binary with `config(port)` on a free port and
/// waits until it listens; the process is killed on drop.
async fn spawn_bridge(tag: &str, config: impl Fn(u16) -> String) -> (Kill, u16) {
    let bin = std::env::current_exe()
        .unwrap()
        .parent()
        .unwrap()
        .parent()
        .unwrap()
        .join("examples/bridge");
    assert!(
        bin.exists(),
        "build it first: cargo build --release --example bridge"
    );
    let port = free_port();
    let dir = std::env::temp_dir().join(format!("sb-fanout-{tag}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let cfg = dir.join("bridge.toml");
    std::fs::write(&cfg, config(port)).unwrap();
    let child = Kill(
        server_command(&bin)
            .arg("--config")
            .arg(&cfg)
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
        Some(dir),
    );
    wait_port(port).await;
    (child, port)
}

async fn bench_bridge(n: usize, m: usize, rate: u64, epoch: Instant) -> (Stats, u64) {
    let (child, port) = spawn_bridge("ws", |port| {
        format!(
            "[adapter.http]\nlisten = \"127.0.0.1:{port}\"\nmax_connections = 4096\n[adapter.ws]\nlisten = \"127.0.0.1:{port}\"\nclient_queue = 4096\n"
        )
    })
    .await;
    let pid = child.0.id();
    let rss_before = rss_kib(pid);
    let ready = Arc::new(AtomicU64::new(0));
    let sub = r#"{"op":"sub","topic":"fan/#"}"#.to_owned();
    let tasks = ws_subscribers(port, "/ws", n, Some(sub), m, epoch, ready.clone()).await;
    wait_ready(&ready, n as u64).await;
    let rss_after = rss_kib(pid);
    let mut publisher = ws_connect(port, "/ws").await;
    let start = Instant::now();
    let gap = Duration::from_nanos(1_000_000_000 / rate.max(1));
    let mut next = tokio::time::Instant::now();
    for i in 0..m {
        let op = format!(
            r#"{{"op":"pub","topic":"fan/x","payload":{{"i":{i},"s":{}}}}}"#,
            now_us(epoch)
        );
        publisher.send(Frame::Text(op.into())).await.unwrap();
        next += gap;
        tokio::time::sleep_until(next).await;
    }
    let stats = collect(tasks, start).await;
    let per_client = rss_after.saturating_sub(rss_before) / n as u64;
    (stats, per_client)
}

/// SSE fan-out through the bridge: `n` raw-TCP `GET /events` clients, one
/// keep-alive connection POSTing `m` messages to `/topics/fan/x`.
async fn bench_sse(n: usize, m: usize, rate: u64, epoch: Instant) -> Stats {
    use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
    let (_child, port) = spawn_bridge("sse", |port| {
        format!("[adapter.http]\nlisten = \"127.0.0.1:{port}\"\nmax_connections = 4096\nsse_buffer = 4096\n")
    })
    .await;
    let ready = Arc::new(AtomicU64::new(0));
    let mut tasks = Vec::new();
    for _ in 0..n {
        let mut tcp = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
        tcp.write_all(b"GET /events?topic=fan/%23 HTTP/1.1\r\nHost: bench\r\nAccept: text/event-stream\r\n\r\n")
            .await
            .unwrap();
        let ready = ready.clone();
        tasks.push(tokio::spawn(async move {
            let mut lines = BufReader::new(tcp).lines();
            let mut lat = Vec::with_capacity(m);
            let mut got = 0u64;
            let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
            while let Ok(Ok(Some(line))) =
                tokio::time::timeout_at(deadline, lines.next_line()).await
            {
                if line.starts_with(": open") {
                    ready.fetch_add(1, Ordering::Relaxed);
                } else if line.starts_with("data:")
                    && let Some(sent) = sent_at(&line)
                {
                    lat.push(now_us(epoch).saturating_sub(sent));
                    got += 1;
                    if got as usize >= m {
                        break;
                    }
                }
            }
            (lat, got)
        }));
    }
    wait_ready(&ready, n as u64).await;
    let mut publisher = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    let mut buf = vec![0u8; 4096];
    let start = Instant::now();
    let gap = Duration::from_nanos(1_000_000_000 / rate.max(1));
    let mut next = tokio::time::Instant::now();
    for i in 0..m {
        let body = format!(r#"{{"i":{i},"s":{}}}"#, now_us(epoch));
        let req = format!(
            "POST /topics/fan/x HTTP/1.1\r\nHost: bench\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        );
        publisher.write_all(req.as_bytes()).await.unwrap();
        // 204 No Content: one small response per request.
        let _ = publisher.read(&mut buf).await;
        next += gap;
        tokio::time::sleep_until(next).await;
    }
    collect(tasks, start).await
}

/// The bare tokio-tungstenite broadcast server: every text frame a client
/// sends goes to every client. Runs in its own process (`--serve-bare PORT`).
async fn serve_bare(port: u16) {
    let listener = TcpListener::bind(("127.0.0.1", port)).await.unwrap();
    let (tx, _) = broadcast::channel::<Arc<str>>(4096);
    loop {
        let Ok((s, _)) = listener.accept().await else {
            break;
        };
        let tx = tx.clone();
        tokio::spawn(async move {
            let Ok(ws) = tokio_tungstenite::accept_async(s).await else {
                return;
            };
            let (mut sink, mut stream) = ws.split();
            let mut rx = tx.subscribe();
            let _ = sink.send(Frame::Text("{\"op\":\"ok\"}".into())).await;
            loop {
                tokio::select! {
                    m = rx.recv() => match m {
                        Ok(t) => if sink.send(Frame::Text((&*t).into())).await.is_err() { break },
                        Err(broadcast::error::RecvError::Lagged(_)) => continue,
                        Err(_) => break,
                    },
                    f = stream.next() => match f {
                        Some(Ok(Frame::Text(t))) => { let _ = tx.send(Arc::from(t.as_str())); }
                        Some(Ok(_)) => {}
                        _ => break,
                    },
                }
            }
        });
    }
}

async fn bench_bare(n: usize, m: usize, rate: u64, epoch: Instant) -> Stats {
    let port = free_port();
    let exe = std::env::current_exe().unwrap();
    let _server = Kill(
        server_command(&exe)
            .arg("--serve-bare")
            .arg(port.to_string())
            .stdout(Stdio::null())
            .spawn()
            .unwrap(),
        None,
    );
    wait_port(port).await;
    let ready = Arc::new(AtomicU64::new(0));
    let tasks = ws_subscribers(port, "/", n, None, m, epoch, ready.clone()).await;
    wait_ready(&ready, n as u64).await;
    let publisher = ws_connect(port, "/").await;
    // Its own copy of every message comes back to it; drain it.
    let (mut psink, mut pstream) = publisher.split();
    tokio::spawn(async move { while pstream.next().await.is_some() {} });
    let start = Instant::now();
    let gap = Duration::from_nanos(1_000_000_000 / rate.max(1));
    let mut next = tokio::time::Instant::now();
    for i in 0..m {
        let t = format!(
            r#"{{"op":"msg","topic":"fan/x","payload":{{"i":{i},"s":{}}}}}"#,
            now_us(epoch)
        );
        psink.send(Frame::Text(t.into())).await.unwrap();
        next += gap;
        tokio::time::sleep_until(next).await;
    }
    collect(tasks, start).await
}

async fn bench_mosquitto(n: usize, m: usize, rate: u64, epoch: Instant) -> Option<Stats> {
    let port = free_port();
    let dir = std::env::temp_dir().join(format!("sb-fanout-mq-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let conf = dir.join("m.conf");
    std::fs::write(&conf, format!("listener {port} 127.0.0.1\nallow_anonymous true\nmax_queued_messages 100000\nmax_connections -1\n")).unwrap();
    let child = server_command(std::path::Path::new("mosquitto"))
        .arg("-c")
        .arg(&conf)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .ok()?;
    let _child = Kill(child, Some(dir.clone()));
    wait_port(port).await;
    let ready = Arc::new(AtomicU64::new(0));
    let mut tasks = Vec::new();
    for k in 0..n {
        let mut o = rumqttc::MqttOptions::new(format!("sub{k}"), "127.0.0.1", port);
        o.set_keep_alive(Duration::from_secs(60));
        o.set_max_packet_size(1 << 20, 1 << 20);
        let (client, mut el) = rumqttc::AsyncClient::new(o, 64);
        client
            .subscribe("fan/#", rumqttc::QoS::AtMostOnce)
            .await
            .ok()?;
        let ready = ready.clone();
        tasks.push(tokio::spawn(async move {
            let _client = client;
            let mut lat = Vec::with_capacity(m);
            let mut got = 0u64;
            let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
            while let Ok(Ok(ev)) = tokio::time::timeout_at(deadline, el.poll()).await {
                match ev {
                    rumqttc::Event::Incoming(rumqttc::Packet::SubAck(_)) => {
                        ready.fetch_add(1, Ordering::Relaxed);
                    }
                    rumqttc::Event::Incoming(rumqttc::Packet::Publish(p)) => {
                        if let Some(s) = std::str::from_utf8(&p.payload).ok().and_then(sent_at) {
                            lat.push(now_us(epoch).saturating_sub(s));
                            got += 1;
                            if got as usize >= m {
                                break;
                            }
                        }
                    }
                    _ => {}
                }
            }
            (lat, got)
        }));
    }
    wait_ready(&ready, n as u64).await;
    let (pubc, mut pel) =
        rumqttc::AsyncClient::new(rumqttc::MqttOptions::new("pub", "127.0.0.1", port), 1024);
    tokio::spawn(async move { while pel.poll().await.is_ok() {} });
    let start = Instant::now();
    let gap = Duration::from_nanos(1_000_000_000 / rate.max(1));
    let mut next = tokio::time::Instant::now();
    for i in 0..m {
        let payload = format!(r#"{{"i":{i},"s":{}}}"#, now_us(epoch));
        pubc.publish("fan/x", rumqttc::QoS::AtMostOnce, false, payload)
            .await
            .ok()?;
        next += gap;
        tokio::time::sleep_until(next).await;
    }
    let stats = collect(tasks, start).await;
    Some(stats)
}

fn main() {
    let all: Vec<String> = std::env::args().skip(1).collect();
    if let Some(i) = all.iter().position(|a| a == "--serve-bare") {
        let port: u16 = all.get(i + 1).and_then(|p| p.parse().ok()).unwrap();
        let rt = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(serve_bare(port));
        return;
    }
    let args: Vec<String> = all.into_iter().filter(|a| !a.starts_with("--")).collect();
    let n: usize = args.first().and_then(|a| a.parse().ok()).unwrap_or(1000);
    let m: usize = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(200);
    let rate: u64 = args.get(2).and_then(|a| a.parse().ok()).unwrap_or(200);
    let pinned = pinning();
    if pinned {
        // The load generator takes CPU 1; the servers get CPU 0.
        let me = std::process::id().to_string();
        let ok = Command::new("taskset")
            .args(["-a", "-p", "-c", "1", &me])
            .stdout(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        assert!(ok, "taskset could not pin the load generator");
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let epoch = Instant::now();
        let expected = (n * m) as u64;
        println!("ws_fanout: {n} subscribers, {m} messages published at {rate}/s ({expected} deliveries expected)");
        println!(
            "  {}",
            if pinned {
                "servers pinned to CPU 0, load generator to CPU 1"
            } else {
                "not pinned"
            }
        );
        let (mut sb, per_client) = bench_bridge(n, m, rate, epoch).await;
        let r_sb = report("switchboard ws", &mut sb, expected);
        println!("  bridge RSS per connected WebSocket client: {per_client} KiB");
        let mut sse = bench_sse(n, m, rate, epoch).await;
        let r_sse = report("switchboard SSE", &mut sse, expected);
        let mut bare = bench_bare(n, m, rate, epoch).await;
        let r_bare = report("bare tokio-tungstenite", &mut bare, expected);
        let r_mq = match bench_mosquitto(n, m, rate, epoch).await {
            Some(mut s) => report("mosquitto (MQTT over TCP)", &mut s, expected),
            None => {
                println!("mosquitto not available");
                f64::NAN
            }
        };
        println!("ratio switchboard / bare tokio-tungstenite: {:.2}", r_sb / r_bare);
        println!("ratio switchboard SSE / bare tokio-tungstenite: {:.2}", r_sse / r_bare);
        println!("ratio switchboard / mosquitto:              {:.2}", r_sb / r_mq);
    });
}
