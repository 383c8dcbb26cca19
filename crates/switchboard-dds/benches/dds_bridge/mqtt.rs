//! The MQTT leg of the DDS bench: the whole bridge (the release binary, DDS
//! adapter + router + embedded MQTT broker) between Cyclone DDS and a raw
//! MQTT 3.1.1 client written here (QoS 0, so the figures are the bridge's,
//! not a client library's).
//!
//! - Cyclone -> bridge -> MQTT subscriber: `ddsperf pub` samples/s; latency
//!   of stamped `test::Reading` samples (`peer.py stamp`, value = send time).
//! - MQTT publisher -> bridge -> Cyclone: `ddsperf sub` samples/s; latency at
//!   `peer.py lat`.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime};

use tokio::io::{AsyncReadExt, AsyncWriteExt, BufReader as TokioBufReader, BufWriter};
use tokio::net::TcpStream;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};

/// The bridge binary, killed on drop.
pub(crate) struct BridgeBin {
    child: Child,
    perf: Option<Child>,
    dir: PathBuf,
    /// The embedded broker's port.
    pub(crate) port: u16,
}

impl Drop for BridgeBin {
    fn drop(&mut self) {
        if let Some(mut perf) = self.perf.take() {
            let _ = Command::new("kill")
                .args(["-INT", &perf.id().to_string()])
                .status();
            let _ = perf.wait();
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Starts `target/release/examples/bridge` with an MQTT broker on an
/// ephemeral port and DDS on `domain` (discovery), routing `dds:#` to
/// `mqtt:{0}` and `mqtt:in/#` to `dds:{1}`.
pub(crate) fn spawn_bridge(domain: u16) -> BridgeBin {
    let bin = std::env::current_exe()
        .unwrap()
        .parent()
        .unwrap()
        .parent()
        .unwrap()
        .join("examples/bridge");
    assert!(
        bin.exists(),
        "build it first: cargo build --release --example bridge (scripts/dds-bench.sh does)"
    );
    let dir = std::env::temp_dir().join(format!("sb-ddsbench-{}-{domain}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let cfg = dir.join("bridge.toml");
    std::fs::write(
        &cfg,
        format!(
            r#"[bridge]
shutdown_timeout = "1s"
[adapter.mqtt]
listen = "127.0.0.1:0"
max_payload = "2MiB"
[adapter.dds]
domain = {domain}
discover = true
max_payload = "2MiB"
[[route]]
from = "dds:#"
to = ["mqtt:{{0}}"]
[[route]]
from = "mqtt:in/#"
to = ["dds:{{1}}"]
"#
        ),
    )
    .unwrap();
    let mut child = Command::new(bin)
        .arg("--config")
        .arg(&cfg)
        .env("RUST_LOG", "info")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let mut port = None;
    let deadline = Instant::now() + Duration::from_secs(30);
    while port.is_none() && Instant::now() < deadline {
        let Some(Ok(line)) = lines.next() else { break };
        if line.contains("Listening.") && line.contains("adapter=mqtt") {
            port = line
                .split_whitespace()
                .find_map(|w| w.strip_prefix("addr="))
                .and_then(|a| a.parse::<std::net::SocketAddr>().ok())
                .map(|a| a.port());
        }
    }
    // Keep draining the log so the bridge never blocks on a full pipe.
    std::thread::spawn(move || for _ in lines {});
    // DDS_BENCH_PERF=PREFIX profiles each bridge: PREFIX.DOMAIN.data.
    let perf = std::env::var("DDS_BENCH_PERF").ok().map(|prefix| {
        Command::new("perf")
            .args(["record", "-F", "999", "--call-graph", "dwarf,16384", "-o"])
            .arg(format!("{prefix}.{domain}.data"))
            .args(["-p", &child.id().to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap()
    });
    BridgeBin {
        child,
        perf,
        dir,
        port: port.expect("the bridge did not report its MQTT listener"),
    }
}

fn remaining_length(mut n: usize, out: &mut Vec<u8>) {
    loop {
        let mut b = (n % 128) as u8;
        n /= 128;
        if n > 0 {
            b |= 0x80;
        }
        out.push(b);
        if n == 0 {
            return;
        }
    }
}

fn packet(first: u8, body: &[u8]) -> Vec<u8> {
    let mut p = vec![first];
    remaining_length(body.len(), &mut p);
    p.extend_from_slice(body);
    p
}

fn string(s: &str, out: &mut Vec<u8>) {
    out.extend_from_slice(&(s.len() as u16).to_be_bytes());
    out.extend_from_slice(s.as_bytes());
}

/// A QoS 0 PUBLISH packet.
pub(crate) fn publish_packet(topic: &str, payload: &[u8]) -> Vec<u8> {
    let mut body = Vec::with_capacity(2 + topic.len() + payload.len());
    string(topic, &mut body);
    body.extend_from_slice(payload);
    packet(0x30, &body)
}

/// One control packet: (first byte, body).
async fn read_packet(r: &mut TokioBufReader<OwnedReadHalf>) -> Option<(u8, Vec<u8>)> {
    let first = r.read_u8().await.ok()?;
    let mut len = 0usize;
    for shift in 0..4 {
        let b = r.read_u8().await.ok()?;
        len |= usize::from(b & 0x7f) << (7 * shift);
        if b & 0x80 == 0 {
            break;
        }
    }
    let mut body = vec![0; len];
    r.read_exact(&mut body).await.ok()?;
    Some((first, body))
}

/// Connects (clean session, keep-alive 60 s) and waits for CONNACK.
pub(crate) async fn connect(
    port: u16,
    id: &str,
) -> (TokioBufReader<OwnedReadHalf>, BufWriter<OwnedWriteHalf>) {
    let s = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    s.set_nodelay(true).unwrap();
    let (r, w) = s.into_split();
    let (mut r, mut w) = (
        TokioBufReader::with_capacity(1 << 20, r),
        BufWriter::with_capacity(1 << 20, w),
    );
    let mut body = Vec::new();
    string("MQTT", &mut body);
    body.extend_from_slice(&[4, 0x02, 0, 60]);
    string(id, &mut body);
    w.write_all(&packet(0x10, &body)).await.unwrap();
    w.flush().await.unwrap();
    let (first, ack) = read_packet(&mut r).await.expect("CONNACK");
    assert!(first == 0x20 && ack.get(1) == Some(&0), "CONNACK refused");
    (r, w)
}

/// Subscribes to `filter` at QoS 0, then sends what each PUBLISH carries
/// (the latency a stamped payload gives, else `None`) to `tx`.
pub(crate) async fn subscriber(
    port: u16,
    filter: &str,
    tx: tokio::sync::mpsc::Sender<Option<f64>>,
    ready: tokio::sync::oneshot::Sender<()>,
) {
    let (mut r, mut w) = connect(port, "bench-sub").await;
    let mut body = vec![0, 1];
    string(filter, &mut body);
    body.push(0);
    w.write_all(&packet(0x82, &body)).await.unwrap();
    w.flush().await.unwrap();
    loop {
        let Some((first, _)) = read_packet(&mut r).await else {
            return;
        };
        if first == 0x90 {
            break;
        }
    }
    let _ = ready.send(());
    while let Some((first, body)) = read_packet(&mut r).await {
        if first >> 4 != 3 {
            continue;
        }
        let tlen = usize::from(u16::from_be_bytes([body[0], body[1]]));
        let mut at = 2 + tlen;
        if (first >> 1) & 3 != 0 {
            at += 2;
        }
        let lat = stamp_of(&body[at..]).and_then(since_secs);
        if tx.send(lat).await.is_err() {
            return;
        }
    }
}

fn since_secs(t: f64) -> Option<f64> {
    let now = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .ok()?
        .as_secs_f64();
    Some((now - t) * 1e6)
}

/// The `value` (send time) of an encapsulated little-endian `test::Reading`
/// (`long id; double value; string label;`): XCDR1 aligns the double to 8,
/// XCDR2 to 4.
pub(crate) fn stamp_of(cdr: &[u8]) -> Option<f64> {
    let rep = u16::from_be_bytes([*cdr.first()?, *cdr.get(1)?]);
    let at = match rep {
        0x0001 | 0x0003 => 4 + 8,
        0x0007 | 0x0009 | 0x000b => 4 + 4,
        _ => return None,
    };
    let b: [u8; 8] = cdr.get(at..at + 8)?.try_into().ok()?;
    let v = f64::from_le_bytes(b);
    // ddsperf's samples are not stamped: keep only plausible send times.
    (1.0e9..1.0e11).contains(&v).then_some(v)
}

/// An encapsulated XCDR1 little-endian `test::Reading` stamped now, with a
/// `label` of `label` bytes.
pub(crate) fn stamped_reading(id: i32, label: usize) -> Vec<u8> {
    let now = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    let mut v = Vec::with_capacity(24 + label + 1);
    v.extend_from_slice(&[0, 1, 0, 0]);
    v.extend_from_slice(&id.to_le_bytes());
    v.extend_from_slice(&[0; 4]);
    v.extend_from_slice(&now.to_le_bytes());
    v.extend_from_slice(&((label + 1) as u32).to_le_bytes());
    v.resize(v.len() + label, b'x');
    v.push(0);
    v
}
