//! Black-box tests of the bridge binary with its MQTT adapter, against real
//! peers: mosquitto_pub / mosquitto_sub on the embedded broker, curl on the
//! HTTP adapter, and a mosquitto broker (own config file, ephemeral port)
//! restarted while QoS 1 messages flow from HTTP to it.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::{BridgeProc, Streaming, curl, free_port, run, tempdir, wait_for};

const T: Duration = Duration::from_secs(20);

fn mosquitto_pub(port: u16, args: &[&str]) {
    let p = port.to_string();
    let mut a = vec!["-h", "127.0.0.1", "-p", &p];
    a.extend_from_slice(args);
    let out = run("mosquitto_pub", &a);
    assert!(out.status.success(), "mosquitto_pub {a:?}: {}", out.stderr);
}

fn mosquitto_sub(port: u16, args: &[&str]) -> Streaming {
    let p = port.to_string();
    let mut a = vec!["-h", "127.0.0.1", "-p", &p, "-v"];
    a.extend_from_slice(args);
    Streaming::spawn("mosquitto_sub", &a)
}

/// A `mosquitto_pub -l` at `qos` on `topic` fed the lines 1..=n (each its
/// own publication); wait on the child for all of them to be sent.
fn mosquitto_pub_numbers(port: u16, qos: &str, topic: &str, n: u32) -> Child {
    use std::io::Write;
    let mut p = Command::new("mosquitto_pub")
        .args(["-h", "127.0.0.1", "-p", &port.to_string()])
        .args(["-q", qos, "-t", topic, "-l"])
        .stdin(Stdio::piped())
        .spawn()
        .expect("mosquitto_pub (Debian package mosquitto-clients)");
    let lines: String = (1..=n).map(|i| format!("{i}\n")).collect();
    p.stdin.take().unwrap().write_all(lines.as_bytes()).unwrap();
    p
}

/// The numbers received on `seq/n` by a subscriber, each once, in order of
/// first arrival, once `count` of them came in (a broker restart may
/// deliver some twice at QoS 1).
fn numbered(sub: &Streaming, count: usize) -> Vec<u32> {
    wait_for(&format!("{count} numbered messages"), T, || {
        let mut firsts: Vec<u32> = Vec::new();
        for l in sub.lines() {
            if let Some(n) = l.strip_prefix("seq/n ") {
                let n: u32 = n.parse().unwrap();
                if !firsts.contains(&n) {
                    firsts.push(n);
                }
            }
        }
        (firsts.len() >= count).then_some(firsts)
    })
}

/// Waits for the `n`-th line (1-based) of a streaming client.
fn nth_line(s: &Streaming, n: usize, what: &str) -> String {
    wait_for(what, T, || s.lines().get(n - 1).cloned())
}

#[test]
fn mqtt_to_http_and_back() {
    let b = BridgeProc::start(
        r#"
[adapter.mqtt]
listen = "127.0.0.1:0"
[adapter.http]
listen = "127.0.0.1:0"
[[route]]
from = "mqtt:sensors/#"
to = ["http:{0}"]
[[route]]
from = "http:cmd/#"
to = ["mqtt:{0}"]
qos = 1
"#,
    );
    let port = b.addr("mqtt", "mqtt").port();
    let http = b.http("http");
    // MQTT -> bridge -> HTTP GET.
    mosquitto_pub(
        port,
        &["-q", "1", "-t", "sensors/kitchen/temp", "-m", "21.5"],
    );
    let url = format!("{http}/topics/sensors/kitchen/temp");
    let body = wait_for("the HTTP value", T, || match curl(&[], &url) {
        (200, b) => Some(b),
        _ => None,
    });
    assert_eq!(body, "21.5");
    // HTTP PUT -> bridge -> MQTT subscriber, at QoS 1 (the route's override).
    mosquitto_pub(port, &["-r", "-t", "cmd/ready", "-m", "1"]);
    let sub = mosquitto_sub(port, &["-q", "1", "-t", "cmd/#", "-F", "%t %p %q"]);
    assert_eq!(nth_line(&sub, 1, "the probe"), "cmd/ready 1 0");
    let (code, _) = curl(
        &["-X", "PUT", "--data-binary", "on"],
        &format!("{http}/topics/cmd/lamp"),
    );
    assert_eq!(code, 204);
    assert_eq!(nth_line(&sub, 2, "the command"), "cmd/lamp on 1");
    // Local delivery: two MQTT clients see each other without a route.
    let chat = mosquitto_sub(port, &["-t", "chat/#", "-C", "1"]);
    wait_for("the chat subscriber", T, || {
        mosquitto_pub(port, &["-t", "chat/a", "-m", "hi"]);
        (!chat.lines().is_empty()).then_some(())
    });
    assert_eq!(chat.lines()[0], "chat/a hi");
}

#[test]
fn default_config_runs_the_embedded_broker_on_1883() {
    let out = run(
        common::example_bin("bridge").to_str().unwrap(),
        &["--print-default-config"],
    );
    assert!(out.stdout.contains("[adapter.mqtt]"));
    assert!(out.stdout.contains(r#"listen = "127.0.0.1:1883""#));
}

/// A mosquitto started with its own config file, killed on drop.
struct Mosquitto(Child);

impl Drop for Mosquitto {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn mosquitto(conf: &Path, port: u16) -> Mosquitto {
    let bin = if Path::new("/usr/sbin/mosquitto").exists() {
        "/usr/sbin/mosquitto"
    } else {
        "mosquitto"
    };
    let child = Command::new(bin)
        .args(["-c", conf.to_str().unwrap()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("mosquitto (Debian package mosquitto; scripts/install.d/10-mosquitto.sh)");
    wait_for("mosquitto to listen", T, || {
        std::net::TcpStream::connect(("127.0.0.1", port)).ok()
    });
    Mosquitto(child)
}

/// A mosquitto on a free port with persistence in its own directory.
struct Broker {
    port: u16,
    conf: PathBuf,
    proc: Mosquitto,
    _dir: tempdir::Dir,
}

impl Broker {
    fn start() -> Broker {
        let port = free_port();
        let dir = tempdir::Dir::new("mosquitto");
        let conf = mosquitto_dir(&dir, port);
        Broker {
            port,
            proc: mosquitto(&conf, port),
            conf,
            _dir: dir,
        }
    }

    /// SIGTERM (mosquitto saves its sessions), and wait for the exit.
    fn stop(&mut self) {
        Command::new("kill")
            .args(["-TERM", &self.proc.0.id().to_string()])
            .status()
            .unwrap();
        let _ = self.proc.0.wait();
    }
}

fn mosquitto_dir(dir: &tempdir::Dir, port: u16) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    // mosquitto started as root drops to its own user: let it save its sessions.
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
    let conf = dir.join("mosquitto.conf");
    std::fs::write(
        &conf,
        format!(
            "listener {port} 127.0.0.1\nallow_anonymous true\nmax_queued_messages 10000\n\
             persistence true\npersistence_location {}/\n",
            dir.path().display()
        ),
    )
    .unwrap();
    conf
}

#[test]
fn broker_restart_loses_no_qos1_message_from_http() {
    let mut broker = Broker::start();
    let port = broker.port;
    let b = BridgeProc::start(&format!(
        r#"
[adapter.cloud]
kind = "mqtt"
url = "mqtt://127.0.0.1:{port}"
keep_alive = "5s"
[adapter.http]
listen = "127.0.0.1:0"
[[route]]
from = "http:seq/#"
to = ["cloud:{{0}}"]
qos = 1
"#
    ));
    let http = b.http("http");
    let sub = mosquitto_sub(port, &["-c", "-i", "durable", "-q", "1", "-t", "seq/#"]);
    mosquitto_pub(port, &["-r", "-q", "1", "-t", "seq/probe", "-m", "0"]);
    assert_eq!(nth_line(&sub, 1, "the probe"), "seq/probe 0");
    let put = |i: u32| {
        let (code, _) = curl(
            &["-X", "PUT", "--data-binary", &i.to_string()],
            &format!("{http}/topics/seq/n"),
        );
        assert_eq!(code, 204, "PUT {i}");
    };
    for i in 1..=20 {
        put(i);
    }
    // Stop the broker (SIGTERM: it saves its sessions) and keep publishing.
    broker.stop();
    for i in 21..=35 {
        put(i);
    }
    broker.proc = mosquitto(&broker.conf, port);
    for i in 36..=50 {
        put(i);
    }
    assert_eq!(
        numbered(&sub, 50),
        (1..=50).collect::<Vec<_>>(),
        "all 50, in order"
    );
    drop(broker);
}

/// QoS 1 publications from clients of the embedded broker, routed to a
/// client adapter whose broker is down, are acknowledged at once (the
/// adapter keeps them) and all arrive in order once the broker is back. The
/// broker's connection acknowledges each only after the adapter took it
/// (the handoff): a wait never released would hang mosquitto_pub, which
/// waits for its PUBACK (bounded here by `timeout`).
#[test]
fn embedded_publishers_are_acknowledged_while_the_cloud_broker_is_down() {
    let mut broker = Broker::start();
    let port = broker.port;
    let b = BridgeProc::start(&format!(
        r#"
[adapter.mqtt]
listen = "127.0.0.1:0"
[adapter.cloud]
kind = "mqtt"
url = "mqtt://127.0.0.1:{port}"
keep_alive = "5s"
[[route]]
from = "mqtt:seq/#"
to = ["cloud:{{0}}"]
qos = 1
"#
    ));
    let local = b.addr("mqtt", "mqtt").port().to_string();
    let sub = mosquitto_sub(port, &["-c", "-i", "durable", "-q", "1", "-t", "seq/#"]);
    mosquitto_pub(port, &["-r", "-q", "1", "-t", "seq/probe", "-m", "0"]);
    assert_eq!(nth_line(&sub, 1, "the probe"), "seq/probe 0");
    let publish = |i: u32| {
        let n = i.to_string();
        let out = run(
            "timeout",
            &[
                "20",
                "mosquitto_pub",
                "-h",
                "127.0.0.1",
                "-p",
                &local,
                "-q",
                "1",
                "-t",
                "seq/n",
                "-m",
                &n,
            ],
        );
        assert!(
            out.status.success(),
            "publication {i} not acknowledged: {}",
            out.stderr
        );
    };
    for i in 1..=10 {
        publish(i);
    }
    broker.stop();
    for i in 11..=30 {
        publish(i);
    }
    broker.proc = mosquitto(&broker.conf, port);
    for i in 31..=40 {
        publish(i);
    }
    assert_eq!(
        numbered(&sub, 40),
        (1..=40).collect::<Vec<_>>(),
        "all 40, in order"
    );
    drop(broker);
}

/// QoS 0 deliveries to a client adapter take its express lane (written to
/// the broker straight from the routing thread) while QoS 1 deliveries of
/// another route go through its queue and outbox at the same time: 3000
/// QoS 0 and 300 QoS 1 publications from two mosquitto_pub clients of the
/// embedded broker each arrive whole and in order at a mosquitto_sub of
/// the cloud broker, and the lane's counter shows it carried QoS 0 ones.
#[test]
fn qos0_takes_the_express_lane_beside_qos1_in_order() {
    let broker = Broker::start();
    let port = broker.port;
    let b = BridgeProc::start(&format!(
        r#"
[bridge]
queue_capacity = 100000
[adapter.mqtt]
listen = "127.0.0.1:0"
[adapter.cloud]
kind = "mqtt"
url = "mqtt://127.0.0.1:{port}"
[adapter.http]
listen = "127.0.0.1:0"
[[route]]
from = "mqtt:z/#"
to = ["cloud:{{0}}"]
[[route]]
from = "mqtt:o/#"
to = ["cloud:{{0}}"]
qos = 1
"#
    ));
    let local = b.addr("mqtt", "mqtt").port();
    let http = b.http("http");
    let sub = mosquitto_sub(port, &["-q", "1", "-t", "z/#", "-t", "o/#"]);
    wait_for("a probe through the bridge", T, || {
        mosquitto_pub(local, &["-t", "z/probe", "-m", "p"]);
        sub.lines().iter().any(|l| l == "z/probe p").then_some(())
    });
    let mut q0 = mosquitto_pub_numbers(local, "0", "z/n", 3000);
    let mut q1 = mosquitto_pub_numbers(local, "1", "o/n", 300);
    assert!(q0.wait().unwrap().success());
    assert!(q1.wait().unwrap().success());
    let of = |prefix: &str| -> Vec<u32> {
        sub.lines()
            .iter()
            .filter_map(|l| l.strip_prefix(prefix)?.parse().ok())
            .collect()
    };
    wait_for("3000 QoS 0 and 300 QoS 1 messages", T, || {
        (of("z/n ").len() >= 3000 && of("o/n ").len() >= 300).then_some(())
    });
    assert_eq!(
        of("z/n "),
        (1..=3000).collect::<Vec<_>>(),
        "QoS 0: all, in order"
    );
    assert_eq!(
        of("o/n "),
        (1..=300).collect::<Vec<_>>(),
        "QoS 1: all, in order"
    );
    let (_, m) = curl(&[], &format!("{http}/metrics"));
    let counter = |name: &str| -> u64 {
        m.lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
            .unwrap_or(0)
    };
    let express = counter("switchboard_mqtt_client_express_sent{adapter=\"cloud\"}");
    let sent = counter("switchboard_adapter_sent_total{adapter=\"cloud\",kind=\"mqtt\"}");
    // The probes count too; the 300 QoS 1 messages never take the lane.
    assert!(
        express > 0 && express + 300 <= sent,
        "the express lane carried {express} of {sent} messages:\n{m}"
    );
}

/// A client adapter routing its broker's messages back to the same broker,
/// each to three topics, through a queue of two: every message makes routing
/// wait for room in the adapter's own full queue, which only the adapter's
/// task drains. It must keep draining (no deadlock), keep the order, and
/// acknowledge each message only after it was queued. 200 QoS 1 messages
/// in/seq -> out/{a,b,c}/seq, checked by mosquitto_sub.
#[test]
fn client_routing_into_its_own_full_queue_neither_stalls_nor_reorders() {
    routing_into_own_full_queue(4);
}

/// The same through MQTT 5, where the broker's receive maximum (CONNACK)
/// also limits what the client may have in flight.
#[test]
fn client_v5_routing_into_its_own_full_queue_neither_stalls_nor_reorders() {
    routing_into_own_full_queue(5);
}

fn routing_into_own_full_queue(version: u8) {
    let broker = Broker::start();
    let port = broker.port;
    let b = BridgeProc::start(&format!(
        r#"
[bridge]
queue_capacity = 2
[adapter.cloud]
kind = "mqtt"
url = "mqtt://127.0.0.1:{port}"
version = {version}
max_buffered = 2
[adapter.http]
listen = "127.0.0.1:0"
[[route]]
from = "cloud:in/#"
to = ["cloud:out/a/{{1}}", "cloud:out/b/{{1}}", "cloud:out/c/{{1}}"]
qos = 1
"#
    ));
    let http = b.http("http");
    let sub = mosquitto_sub(port, &["-q", "1", "-t", "out/#"]);
    // The route's subscription is in once a probe comes through.
    wait_for("the probe routed back", T, || {
        mosquitto_pub(port, &["-q", "1", "-t", "in/probe", "-m", "p"]);
        sub.lines()
            .iter()
            .any(|l| l == "out/c/probe p")
            .then_some(())
    });
    let mut publisher = mosquitto_pub_numbers(port, "1", "in/seq", 200);
    assert!(publisher.wait().unwrap().success());
    for t in ["a", "b", "c"] {
        let prefix = format!("out/{t}/seq ");
        let got = wait_for("all 200 routed back", T, || {
            let got: Vec<u32> = sub
                .lines()
                .iter()
                .filter_map(|l| l.strip_prefix(&prefix)?.parse().ok())
                .collect();
            (got.len() >= 200).then_some(got)
        });
        assert_eq!(
            got,
            (1..=200).collect::<Vec<_>>(),
            "out/{t}: each once, in order"
        );
    }
    let (_, m) = curl(&[], &format!("{http}/metrics"));
    let waited: u64 = m
        .lines()
        .find_map(|l| {
            l.strip_prefix("switchboard_mqtt_client_waited_for_room{adapter=\"cloud\"} ")?
                .parse()
                .ok()
        })
        .unwrap_or(0);
    assert!(
        waited > 0,
        "routing never had to wait; the test proves nothing:\n{m}"
    );
    assert!(
        m.contains("switchboard_mqtt_client_held_dropped{adapter=\"cloud\"} 0"),
        "{m}"
    );
}

/// The `count` of an address in `/api/topics`.
fn topic_count(http: &str, address: &str) -> u64 {
    let (code, body) = curl(&[], &format!("{http}/api/topics"));
    assert_eq!(code, 200);
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    let list = v
        .as_array()
        .cloned()
        .or_else(|| v["topics"].as_array().cloned())
        .unwrap_or_default();
    list.iter()
        .find(|t| t["address"] == address)
        .and_then(|t| t["count"].as_u64())
        .unwrap_or(0)
}

#[test]
fn mqtt311_echo_suppressed_on_a_bidirectional_route() {
    let broker = Broker::start();
    let port = broker.port;
    let b = BridgeProc::start(&format!(
        r#"
[adapter.cloud]
kind = "mqtt"
url = "mqtt://127.0.0.1:{port}"
version = 4
[adapter.http]
listen = "127.0.0.1:0"
[[route]]
from = "http:echo/#"
to = ["cloud:{{0}}"]
qos = 1
[[route]]
from = "cloud:echo/#"
to = ["http:{{0}}"]
"#
    ));
    let http = b.http("http");
    // The bridge's subscription is in once a retained probe comes through.
    mosquitto_pub(port, &["-r", "-q", "1", "-t", "echo/probe", "-m", "p"]);
    wait_for("the probe over HTTP", T, || {
        (curl(&[], &format!("{http}/topics/echo/probe")).0 == 200).then_some(())
    });
    let (code, _) = curl(
        &["-X", "PUT", "--data-binary", "mine"],
        &format!("{http}/topics/echo/x"),
    );
    assert_eq!(code, 204);
    wait_for("the echo to be recognised and dropped", T, || {
        let (_, m) = curl(&[], &format!("{http}/metrics"));
        m.contains("switchboard_mqtt_client_echoes_dropped{adapter=\"cloud\"} 1")
            .then_some(())
    });
    // Someone else's publication on the same topic still comes in.
    mosquitto_pub(port, &["-q", "1", "-t", "echo/x", "-m", "theirs"]);
    let body = wait_for("their message over HTTP", T, || {
        let (c, b) = curl(&[], &format!("{http}/topics/echo/x"));
        (c == 200 && b == "theirs").then_some(b)
    });
    assert_eq!(body, "theirs");
    assert_eq!(
        topic_count(&http, "http:echo/x"),
        2,
        "ours + theirs, no echo"
    );
}
