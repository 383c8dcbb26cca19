//! End-to-end DDS bench against Cyclone DDS's `ddsperf` (topic KS,
//! `KeyedSeq`), in a loopback-only network namespace:
//!
//! - into the bridge: `ddsperf pub` -> the adapter (samples into the router),
//!   against (a) a bare rustdds reader with the same raw deserializer in the
//!   same process and run, and (b) `ddsperf sub` (Cyclone -> Cyclone);
//! - out of the bridge: deliveries -> the adapter -> `ddsperf sub`, against a
//!   bare rustdds writer writing the same samples.
//!
//! Throughput at full rate; latency (source timestamp -> taken by the
//! adapter or the bare reader) at 1 kHz. 64 B and 64 KiB samples.
//!
//! - the MQTT leg (`dds_bridge/mqtt.rs`): the bridge binary between Cyclone
//!   and a raw MQTT client, both ways, throughput and latency, against a bare
//!   rustdds reader/writer and Cyclone -> Cyclone in the same run.
//!
//! Run: `scripts/dds-bench.sh` (builds, then runs this inside the namespace);
//! arguments: `64` or `KiB` pick a size, `nomqtt` skips the MQTT leg, `mqtt`
//! runs only the MQTT leg.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

#[path = "dds_bridge/mqtt.rs"]
mod mqtt;

use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime};

use futures_util::StreamExt;
use rustdds::{DomainParticipant, QosPolicyBuilder, TopicKind};
use switchboard_dds::config::{Durability, Reliability};
use switchboard_dds::endpoints::{RawWriter, ReadItem, TopicSpec, create_reader};
use switchboard_dds::raw::{RawKey, RawSample};
use switchboard_dds::{Config, DdsAdapter};
use switchboard_model::{
    Ack, Adapter, AdapterContext, Delivery, Format, Interest, Message, Pattern, Qos, Topic,
};
use tokio::io::AsyncWriteExt;

const TOPIC: &str = "DDSPerfRDataKS";
const TYPE: &str = "KeyedSeq";
const WINDOW: Duration = Duration::from_secs(5);

fn isolated() -> bool {
    std::fs::read_to_string("/proc/self/net/dev").is_ok_and(|d| {
        d.lines()
            .skip(2)
            .all(|l| l.split(':').next().is_some_and(|i| i.trim() == "lo"))
    })
}

fn ddsperf(domain: u16, args: &[&str]) -> Child {
    Command::new("ddsperf")
        .arg("-i")
        .arg(domain.to_string())
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("ddsperf (Debian cyclonedds-tools) is needed")
}

/// Average `rate X kS/s` of a `ddsperf sub`, skipping the first report.
fn sub_rate(child: Child) -> f64 {
    let out = child.wait_with_output().expect("ddsperf output");
    let text = String::from_utf8_lossy(&out.stdout);
    let rates: Vec<f64> = text
        .lines()
        .filter_map(|l| {
            let mut it = l.split_whitespace();
            it.position(|w| w == "rate")?;
            it.next()?.parse::<f64>().ok()
        })
        .map(|k| k * 1000.0)
        .collect();
    let useful: Vec<f64> = rates.iter().skip(1).copied().filter(|r| *r > 0.0).collect();
    if useful.is_empty() {
        return rates.first().copied().unwrap_or(0.0);
    }
    useful.iter().sum::<f64>() / useful.len() as f64
}

fn percentile(v: &mut [f64], p: f64) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(|a, b| a.total_cmp(b));
    v[((v.len() - 1) as f64 * p).round() as usize]
}

fn since(t: Option<SystemTime>) -> Option<f64> {
    Some(SystemTime::now().duration_since(t?).ok()?.as_secs_f64() * 1e6)
}

struct Measured {
    rate: f64,
    lat_us: Vec<f64>,
}

/// Counts samples for WINDOW after the first one; records latencies.
async fn measure<S>(mut next: S) -> Measured
where
    S: FnMut() -> std::pin::Pin<Box<dyn std::future::Future<Output = Option<Option<f64>>> + Send>>,
{
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut lat = Vec::new();
    // Wait for the first sample.
    loop {
        if Instant::now() > deadline {
            return Measured {
                rate: 0.0,
                lat_us: lat,
            };
        }
        if let Ok(Some(_)) = tokio::time::timeout(Duration::from_secs(1), next()).await {
            break;
        }
    }
    let start = Instant::now();
    let mut n = 0u64;
    while start.elapsed() < WINDOW {
        match tokio::time::timeout(Duration::from_millis(200), next()).await {
            Ok(Some(l)) => {
                n += 1;
                if let Some(l) = l
                    && lat.len() < 1_000_000
                {
                    lat.push(l);
                }
            }
            Ok(None) => break,
            Err(_) => {}
        }
    }
    Measured {
        rate: n as f64 / start.elapsed().as_secs_f64(),
        lat_us: lat,
    }
}

fn ks_spec() -> TopicSpec {
    TopicSpec {
        dds_name: TOPIC.into(),
        dds_type: TYPE.into(),
        keyed: true,
        reliability: Reliability::Reliable,
        durability: Durability::Volatile,
        history: 1,
        deadline: None,
        lifespan: None,
    }
}

/// A bare rustdds reader (the same raw deserializer, no bridge) in its own
/// task feeding a channel, like the adapter's reader task feeds the router.
async fn bare_reader(domain: u16, pub_args: &[&str]) -> Measured {
    let dp = DomainParticipant::new(domain).unwrap();
    let qos = QosPolicyBuilder::new().build();
    let sub = dp.create_subscriber(&qos).unwrap();
    let topic = dp
        .create_topic(TOPIC.into(), TYPE.into(), &qos, TopicKind::WithKey)
        .unwrap();
    let mut stream = create_reader(&sub, &topic, &ks_spec()).unwrap();
    let (tx, rx) = tokio::sync::mpsc::channel::<Option<f64>>(1024);
    let reader = tokio::spawn(async move {
        while let Some(item) = stream.next().await {
            let lat = match item {
                ReadItem::Sample { source_time, .. } => since(source_time),
                _ => None,
            };
            if tx.send(lat).await.is_err() {
                return;
            }
        }
    });
    let rx = Arc::new(tokio::sync::Mutex::new(rx));
    let mut p = ddsperf(domain, pub_args);
    let m = measure(|| {
        let rx = rx.clone();
        Box::pin(async move { rx.lock().await.recv().await })
    })
    .await;
    let _ = p.kill();
    let _ = p.wait();
    reader.abort();
    m
}

async fn start_adapter(domain: u16) -> (AdapterContext, switchboard_model::StandaloneHarness) {
    let config: Config = toml::from_str(&format!("domain = {domain}\ndiscover = true")).unwrap();
    let (ctx, harness) = AdapterContext::standalone("dds", 4096);
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
        .unwrap();
    tokio::spawn(running.task);
    (ctx, harness)
}

async fn adapter_reader(domain: u16, pub_args: &[&str]) -> Measured {
    let (ctx, harness) = start_adapter(domain).await;
    let rx = Arc::new(tokio::sync::Mutex::new(harness.ingress_rx));
    let mut p = ddsperf(domain, pub_args);
    let m = measure(|| {
        let rx = rx.clone();
        Box::pin(async move {
            let msg = rx.lock().await.recv().await?;
            Some(since(msg.source_timestamp))
        })
    })
    .await;
    let _ = p.kill();
    let _ = p.wait();
    ctx.shutdown.cancel();
    m
}

fn cyclone_to_cyclone(domain: u16, pub_args: &[&str]) -> f64 {
    let secs = (WINDOW.as_secs() + 2).to_string();
    let sub = ddsperf(domain, &["-D", &secs, "sub"]);
    let mut args = vec!["-D", &secs, "pub"];
    args.extend_from_slice(pub_args);
    let mut publ = ddsperf(domain, &args);
    let r = sub_rate(sub);
    let _ = publ.kill();
    let _ = publ.wait();
    r
}

/// A KeyedSeq sample (XCDR1 LE): seq, keyval, sequence<octet> baggage.
fn ks_sample(seq: u32, size: usize) -> RawSample {
    let baggage = size.saturating_sub(12);
    let mut body = Vec::with_capacity(12 + baggage);
    body.extend_from_slice(&seq.to_le_bytes());
    body.extend_from_slice(&0u32.to_le_bytes());
    body.extend_from_slice(&(baggage as u32).to_le_bytes());
    body.resize(12 + baggage, 0x5a);
    RawSample {
        rep: 1,
        body: body.into(),
        key: RawKey::from_bytes(1, vec![0, 0, 0, 0]),
    }
}

async fn bare_writer(domain: u16, size: usize) -> f64 {
    let dp = DomainParticipant::new(domain).unwrap();
    let qos = QosPolicyBuilder::new().build();
    let publ = dp.create_publisher(&qos).unwrap();
    let topic = dp
        .create_topic(TOPIC.into(), TYPE.into(), &qos, TopicKind::WithKey)
        .unwrap();
    let w = RawWriter::create(&publ, &topic, &ks_spec(), 1).unwrap();
    let secs = (WINDOW.as_secs() + 3).to_string();
    let sub = ddsperf(domain, &["-D", &secs, "sub"]);
    tokio::time::sleep(Duration::from_secs(2)).await;
    let start = Instant::now();
    let mut seq = 0u32;
    while start.elapsed() < WINDOW {
        seq = seq.wrapping_add(1);
        if w.write(ks_sample(seq, size), None, TOPIC).await.is_err() {
            tokio::task::yield_now().await;
        }
    }
    drop(w);
    tokio::task::spawn_blocking(move || sub_rate(sub))
        .await
        .unwrap()
}

async fn adapter_writer(domain: u16, size: usize) -> f64 {
    let (ctx, _harness) = start_adapter(domain).await;
    let secs = (WINDOW.as_secs() + 3).to_string();
    let sub = ddsperf(domain, &["-D", &secs, "sub"]);
    // Let the adapter discover ddsperf's reader (type and QoS from discovery).
    tokio::time::sleep(Duration::from_secs(2)).await;
    let start = Instant::now();
    let stop = Arc::new(AtomicBool::new(false));
    let pushed = Arc::new(AtomicU64::new(0));
    let mut seq = 0u32;
    let topic = Topic::new(TOPIC).unwrap();
    while start.elapsed() < WINDOW && !stop.load(Ordering::Relaxed) {
        seq = seq.wrapping_add(1);
        let s = ks_sample(seq, size);
        let mut m = Message::new("bench", topic.clone(), s.to_encapsulated());
        m.format = Format::Cdr(Some(TYPE.into()));
        m.qos = Qos::AtLeastOnce;
        ctx.deliveries
            .push(Delivery {
                message: m.into(),
                ack: Ack::none(),
            })
            .await;
        pushed.fetch_add(1, Ordering::Relaxed);
    }
    let r = tokio::task::spawn_blocking(move || sub_rate(sub))
        .await
        .unwrap();
    ctx.shutdown.cancel();
    r
}

fn python() -> String {
    std::env::var("SWITCHBOARD_PYTHON").unwrap_or_else(|_| {
        format!(
            "{}/.cache/switchboard/venv/bin/python",
            std::env::var("HOME").unwrap_or_default()
        )
    })
}

/// Runs `peer.py ARGS` (the Cyclone DDS Python peer of the tests).
fn peer(args: &[&str]) -> Child {
    Command::new(python())
        .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/peers/peer.py"))
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("the project venv's python with cyclonedds (scripts/install.d)")
}

/// The last JSON line of a peer's output.
fn peer_result(child: Child) -> serde_json::Value {
    let out = child.wait_with_output().unwrap();
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .rev()
        .find_map(|l| serde_json::from_str(l).ok())
        .unwrap_or(serde_json::Value::Null)
}

/// Latency figures as printed.
fn fmt_peer_lat(v: &serde_json::Value) -> String {
    format!(
        "p50 {:.0} us, p99 {:.0} us (n={})",
        v["p50_us"].as_f64().unwrap_or(f64::NAN),
        v["p99_us"].as_f64().unwrap_or(f64::NAN),
        v["n"]
    )
}

/// Cyclone (`ddsperf pub`) -> bridge -> MQTT subscriber, samples/s.
async fn bridge_to_mqtt(domain: u16, pub_args: &[&str]) -> Measured {
    let bridge = mqtt::spawn_bridge(domain);
    let (tx, rx) = tokio::sync::mpsc::channel::<Option<f64>>(4096);
    let (ready_tx, ready_rx) = tokio::sync::oneshot::channel();
    let sub = tokio::spawn(mqtt::subscriber(bridge.port, "#", tx, ready_tx));
    tokio::time::timeout(Duration::from_secs(10), ready_rx)
        .await
        .unwrap()
        .unwrap();
    let rx = Arc::new(tokio::sync::Mutex::new(rx));
    let mut p = ddsperf(domain, pub_args);
    let m = measure(|| {
        let rx = rx.clone();
        Box::pin(async move { rx.lock().await.recv().await })
    })
    .await;
    let _ = p.kill();
    let _ = p.wait();
    sub.abort();
    drop(bridge);
    m
}

/// Stamped samples and their pacing for latency runs: (count, interval s,
/// label bytes) so that the encapsulated sample is about `size` bytes.
fn stamp_plan(size: usize) -> (usize, f64, usize) {
    if size >= 1024 {
        (250, 0.02, size - 28)
    } else {
        (1000, 0.005, size.saturating_sub(28))
    }
}

/// Latency Cyclone (`peer.py stamp`) -> `sink`: "bridge" (bridge -> MQTT
/// subscriber), "bare" (a bare rustdds reader) or "cyclone" (`peer.py lat`).
async fn stamped_in(domain: u16, size: usize, sink: &str) -> String {
    let (count, interval, label) = stamp_plan(size);
    let d = domain.to_string();
    let stamp = |extra: &[&str]| {
        let mut a = vec![
            "stamp".to_owned(),
            d.clone(),
            "stamp".into(),
            count.to_string(),
            interval.to_string(),
            label.to_string(),
        ];
        a.extend(extra.iter().map(|s| s.to_string()));
        let a: Vec<&str> = a.iter().map(String::as_str).collect();
        peer(&a)
    };
    let timeout = (count as f64 * interval + 30.0).to_string();
    match sink {
        "cyclone" => {
            let l = peer(&["lat", &d, "stamp", &count.to_string(), &timeout]);
            let w = stamp(&[]);
            let v = tokio::task::spawn_blocking(move || peer_result(l))
                .await
                .unwrap();
            let _ = tokio::task::spawn_blocking(move || peer_result(w)).await;
            fmt_peer_lat(&v)
        }
        "bare" => {
            let dp = DomainParticipant::new(domain).unwrap();
            let qos = QosPolicyBuilder::new().build();
            let sub = dp.create_subscriber(&qos).unwrap();
            let topic = dp
                .create_topic(
                    "stamp".into(),
                    "test::Reading".into(),
                    &qos,
                    TopicKind::NoKey,
                )
                .unwrap();
            let spec = TopicSpec {
                dds_name: "stamp".into(),
                dds_type: "test::Reading".into(),
                keyed: false,
                history: 10,
                ..ks_spec()
            };
            let mut stream = create_reader(&sub, &topic, &spec).unwrap();
            let w = stamp(&[]);
            let mut lat = Vec::new();
            let deadline = Instant::now() + Duration::from_secs_f64(count as f64 * interval + 30.0);
            while lat.len() < count && Instant::now() < deadline {
                match tokio::time::timeout(Duration::from_secs(1), stream.next()).await {
                    Ok(Some(ReadItem::Sample { sample, .. })) => {
                        if let Some(l) = mqtt::stamp_of(&sample.to_encapsulated()).and_then(|t| {
                            since(Some(SystemTime::UNIX_EPOCH + Duration::from_secs_f64(t)))
                        }) {
                            lat.push(l);
                        }
                    }
                    Ok(Some(_)) => {}
                    Ok(None) => break,
                    Err(_) => {}
                }
            }
            let _ = tokio::task::spawn_blocking(move || peer_result(w)).await;
            fmt_lat(lat)
        }
        _ => {
            let bridge = mqtt::spawn_bridge(domain);
            let (tx, mut rx) = tokio::sync::mpsc::channel::<Option<f64>>(4096);
            let (ready_tx, ready_rx) = tokio::sync::oneshot::channel();
            let sub = tokio::spawn(mqtt::subscriber(bridge.port, "stamp", tx, ready_tx));
            tokio::time::timeout(Duration::from_secs(10), ready_rx)
                .await
                .unwrap()
                .unwrap();
            // The bridge's reader must exist before the writer's first sample
            // (the stamp writer waits for a matched reader).
            let w = stamp(&[]);
            let mut lat = Vec::new();
            let deadline = Instant::now() + Duration::from_secs_f64(count as f64 * interval + 30.0);
            while lat.len() < count && Instant::now() < deadline {
                match tokio::time::timeout(Duration::from_secs(1), rx.recv()).await {
                    Ok(Some(Some(l))) => lat.push(l),
                    Ok(Some(None)) => {}
                    Ok(None) => break,
                    Err(_) => {}
                }
            }
            let _ = tokio::task::spawn_blocking(move || peer_result(w)).await;
            sub.abort();
            drop(bridge);
            fmt_lat(lat)
        }
    }
}

/// MQTT publisher -> bridge -> Cyclone (`ddsperf sub`), as fast as the
/// publisher's TCP connection takes them, samples/s received.
async fn mqtt_to_bridge(domain: u16, size: usize) -> f64 {
    let bridge = mqtt::spawn_bridge(domain);
    let secs = (WINDOW.as_secs() + 3).to_string();
    let sub = ddsperf(domain, &["-D", &secs, "sub"]);
    // Let the bridge discover ddsperf's reader (type and QoS from discovery).
    tokio::time::sleep(Duration::from_secs(2)).await;
    let (_r, mut w) = mqtt::connect(bridge.port, "bench-pub").await;
    let start = Instant::now();
    let mut seq = 0u32;
    let topic = format!("in/{TOPIC}");
    while start.elapsed() < WINDOW {
        for _ in 0..64 {
            seq = seq.wrapping_add(1);
            let p = mqtt::publish_packet(&topic, &ks_sample(seq, size).to_encapsulated());
            w.write_all(&p).await.unwrap();
        }
        w.flush().await.unwrap();
    }
    let r = tokio::task::spawn_blocking(move || sub_rate(sub))
        .await
        .unwrap();
    drop(bridge);
    r
}

/// Latency `source` -> Cyclone (`peer.py lat`): "bridge" (MQTT publisher ->
/// bridge), "bare" (a bare rustdds writer) or "cyclone" (`peer.py stamp`).
async fn stamped_out(domain: u16, size: usize, source: &str) -> String {
    let (count, interval, label) = stamp_plan(size);
    let d = domain.to_string();
    let timeout = (count as f64 * interval + 30.0).to_string();
    let l = peer(&["lat", &d, "stamp", &count.to_string(), &timeout]);
    let gap = Duration::from_secs_f64(interval);
    match source {
        "cyclone" => {
            let w = peer(&[
                "stamp",
                &d,
                "stamp",
                &count.to_string(),
                &interval.to_string(),
                &label.to_string(),
            ]);
            let _ = tokio::task::spawn_blocking(move || peer_result(w)).await;
        }
        "bare" => {
            let dp = DomainParticipant::new(domain).unwrap();
            let qos = QosPolicyBuilder::new().build();
            let publ = dp.create_publisher(&qos).unwrap();
            let topic = dp
                .create_topic(
                    "stamp".into(),
                    "test::Reading".into(),
                    &qos,
                    TopicKind::NoKey,
                )
                .unwrap();
            let spec = TopicSpec {
                dds_name: "stamp".into(),
                dds_type: "test::Reading".into(),
                keyed: false,
                history: 10,
                ..ks_spec()
            };
            let w = RawWriter::create(&publ, &topic, &spec, 1).unwrap();
            tokio::time::sleep(Duration::from_secs(2)).await;
            for i in 0..count {
                let s = RawSample::from_encapsulated(&bytes::Bytes::from(mqtt::stamped_reading(
                    i as i32, label,
                )))
                .unwrap();
                let _ = w.write(s, None, "stamp").await;
                tokio::time::sleep(gap).await;
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
        _ => {
            let bridge = mqtt::spawn_bridge(domain);
            // Let the bridge discover the Cyclone reader.
            tokio::time::sleep(Duration::from_secs(2)).await;
            let (_r, mut w) = mqtt::connect(bridge.port, "bench-pub").await;
            for i in 0..count {
                let p = mqtt::publish_packet("in/stamp", &mqtt::stamped_reading(i as i32, label));
                w.write_all(&p).await.unwrap();
                w.flush().await.unwrap();
                tokio::time::sleep(gap).await;
            }
            let v = tokio::task::spawn_blocking(move || peer_result(l))
                .await
                .unwrap();
            drop(bridge);
            return fmt_peer_lat(&v);
        }
    }
    let v = tokio::task::spawn_blocking(move || peer_result(l))
        .await
        .unwrap();
    fmt_peer_lat(&v)
}

fn fmt_lat(mut v: Vec<f64>) -> String {
    let n = v.len();
    format!(
        "p50 {:.0} us, p99 {:.0} us (n={n})",
        percentile(&mut v, 0.5),
        percentile(&mut v, 0.99)
    )
}

fn main() {
    if !isolated() {
        eprintln!(
            "dds_bridge opens DDS participants: run it in a loopback-only network namespace \
             (scripts/dds-bench.sh)"
        );
        std::process::exit(2);
    }
    let filter: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let mut domain = 40u16;
    let mut next_domain = || {
        domain += 1;
        domain
    };
    // (label, size, offered rates for throughput ("inf" = as fast as ddsperf
    // can), rate for the latency run)
    let cases: [(&str, usize, &[&str], &str); 2] = [
        ("64 B", 64, &["1000Hz", "10000Hz", "inf"], "1000Hz"),
        ("64 KiB", 65536, &["100Hz", "1000Hz", "inf"], "100Hz"),
    ];
    for (label, size, rates, lat_rate) in cases {
        let sizes: Vec<&String> = filter
            .iter()
            .filter(|f| *f != "mqtt" && *f != "nomqtt")
            .collect();
        if !sizes.is_empty() && !sizes.iter().any(|f| label.contains(f.as_str())) {
            continue;
        }
        let only_mqtt = filter.iter().any(|f| f == "mqtt");
        let s = size.to_string();
        println!("== {label} samples (ddsperf KS, reliable, keep-last) ==");
        if !only_mqtt {
            println!(
                "into the bridge, received samples/s over {}s:",
                WINDOW.as_secs()
            );
            println!(
                "  {:>9} {:>12} {:>12} {:>12} {:>9} {:>9}",
                "offered", "Cyclone sub", "bare rustdds", "adapter", "ad/bare", "ad/Cyc"
            );
            for rate in rates {
                let cc = cyclone_to_cyclone(next_domain(), &[rate, "size", &s]);
                let bare = rt.block_on(bare_reader(next_domain(), &["pub", rate, "size", &s]));
                let bridge = rt.block_on(adapter_reader(next_domain(), &["pub", rate, "size", &s]));
                println!(
                    "  {:>9} {:>12.0} {:>12.0} {:>12.0} {:>9.2} {:>9.2}",
                    rate,
                    cc,
                    bare.rate,
                    bridge.rate,
                    bridge.rate / bare.rate,
                    bridge.rate / cc
                );
            }
            let bare_l = rt.block_on(bare_reader(next_domain(), &["pub", lat_rate, "size", &s]));
            let bridge_l = rt.block_on(adapter_reader(
                next_domain(),
                &["pub", lat_rate, "size", &s],
            ));
            println!("latency at {lat_rate} (source timestamp -> taken):");
            println!("  bare rustdds reader  {}", fmt_lat(bare_l.lat_us));
            println!("  switchboard adapter  {}", fmt_lat(bridge_l.lat_us));
            let bw = rt.block_on(bare_writer(next_domain(), size));
            let aw = rt.block_on(adapter_writer(next_domain(), size));
            println!("out of the bridge, as fast as possible (ddsperf sub receives), samples/s:");
            println!("  bare rustdds writer -> Cyclone     {:>10.0}", bw);
            println!(
                "  switchboard adapter -> Cyclone     {:>10.0}   {:.2}x bare rustdds",
                aw,
                aw / bw
            );
        }
        if !filter.iter().any(|f| f == "nomqtt") {
            println!("MQTT leg (the bridge binary: DDS adapter + router + embedded broker):");
            let cc = cyclone_to_cyclone(next_domain(), &["inf", "size", &s]);
            let bare = rt.block_on(bare_reader(next_domain(), &["pub", "inf", "size", &s]));
            let via = rt.block_on(bridge_to_mqtt(next_domain(), &["pub", "inf", "size", &s]));
            println!("  Cyclone -> X, as fast as possible, samples/s received:");
            println!("    X = Cyclone sub                  {:>10.0}", cc);
            println!("    X = bare rustdds reader          {:>10.0}", bare.rate);
            println!(
                "    X = bridge -> MQTT subscriber    {:>10.0}   {:.2}x bare rustdds, {:.3}x Cyclone",
                via.rate,
                via.rate / bare.rate,
                via.rate / cc
            );
            let (count, interval, _) = stamp_plan(size);
            println!(
                "  Cyclone -> X latency, {count} stamped samples at {:.0} Hz:",
                1.0 / interval
            );
            for (label, sink) in [
                ("Cyclone reader", "cyclone"),
                ("bare rustdds reader", "bare"),
                ("bridge -> MQTT subscriber", "bridge"),
            ] {
                let l = rt.block_on(stamped_in(next_domain(), size, sink));
                println!("    X = {label:<28} {l}");
            }
            let cc = cyclone_to_cyclone(next_domain(), &["inf", "size", &s]);
            let bw = rt.block_on(bare_writer(next_domain(), size));
            let d = next_domain();
            let mw = rt.block_on(mqtt_to_bridge(d, size));
            println!("  X -> Cyclone (ddsperf sub), as fast as possible, samples/s received:");
            println!("    X = Cyclone (ddsperf pub)        {:>10.0}", cc);
            println!("    X = bare rustdds writer          {:>10.0}", bw);
            println!(
                "    X = MQTT publisher -> bridge     {:>10.0}   {:.2}x bare rustdds, {:.3}x Cyclone (domain {d})",
                mw,
                mw / bw,
                mw / cc
            );
            println!(
                "  X -> Cyclone reader latency, {count} stamped samples at {:.0} Hz:",
                1.0 / interval
            );
            for (label, source) in [
                ("Cyclone writer", "cyclone"),
                ("bare rustdds writer", "bare"),
                ("MQTT publisher -> bridge", "bridge"),
            ] {
                let l = rt.block_on(stamped_out(next_domain(), size, source));
                println!("    X = {label:<28} {l}");
            }
        }
        println!();
    }
}
