//! Client mode against a real mosquitto started by each test with its own
//! config file: both directions (3.1.1 and 5), a broker restart while QoS 1
//! messages flow, echo suppression, shared subscriptions.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::HashSet;
use std::sync::Arc;

use common::*;
use switchboard_model::{Ack, Delivery, Interest, Message, Pattern, Qos};

fn set_interest(s: &Started, filters: &[(&str, u8)]) {
    let list: Vec<Interest> = filters
        .iter()
        .map(|(f, q)| Interest {
            filter: Pattern::new(f).unwrap(),
            qos: Qos::from_u8(*q).unwrap(),
        })
        .collect();
    s.harness.interest_tx.send(Arc::from(list)).unwrap();
}

/// A client adapter `cloud` of the broker at `port` (its config: the `url`
/// and `conf`) subscribing to `filters`, once connected.
async fn connected(port: u16, conf: &str, filters: &[(&str, u8)]) -> Started {
    let s = start(
        "cloud",
        &format!("url = \"mqtt://127.0.0.1:{port}\"\n{conf}"),
    )
    .await;
    set_interest(&s, filters);
    let h = s.ctx.health.clone();
    wait_for("the client to connect", move || h.get().up).await;
    s
}

/// [`connected`] with a 5 s keep-alive and `extra` config.
async fn client(port: u16, extra: &str, filters: &[(&str, u8)]) -> Started {
    connected(port, &format!("keep_alive = \"5s\"\n{extra}"), filters).await
}

async fn deliver(s: &Started, addr: &str, payload: &str, qos: Qos) {
    let m = Message::text(addr, payload.to_owned())
        .unwrap()
        .with_qos(qos);
    s.ctx
        .deliveries
        .push(Delivery {
            message: m.into(),
            ack: Ack::none(),
        })
        .await;
}

/// Publishes a retained marker and waits until it comes in: proof the
/// client's subscription is active.
async fn await_subscribed(port: u16, s: &mut Started, topic: &str) {
    assert!(publish(port, &["-r", "-q", "1", "-t", topic, "-m", "ready"]).await);
    loop {
        let m = within("the subscription", s.harness.ingress_rx.recv())
            .await
            .unwrap();
        if m.topic.as_str() == topic {
            break;
        }
    }
    assert!(publish(port, &["-r", "-t", topic, "-n"]).await);
    // The cleared retained value comes in as an empty message; skip it.
    let m = within("the clearing", s.harness.ingress_rx.recv())
        .await
        .unwrap();
    assert!(m.payload.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn both_directions_v4_and_v5() {
    let broker = Mosquitto::start(0, "", None).await;
    let port = broker.port;
    for version in ["4", "5"] {
        let mut s = client(port, &format!("version = {version}"), &[("in/#", 1)]).await;
        await_subscribed(port, &mut s, &format!("in/ready{version}")).await;
        let v = if version == "5" { "mqttv5" } else { "mqttv311" };
        let mut args = vec!["-V", v, "-q", "1", "-t", "in/a", "-m", "hello"];
        if version == "5" {
            args.extend(["-D", "publish", "user-property", "k", "v"]);
        }
        assert!(publish(port, &args).await);
        let m = within("ingress", s.harness.ingress_rx.recv())
            .await
            .unwrap();
        assert_eq!(
            (m.topic.as_str(), &m.payload[..], m.qos),
            ("in/a", &b"hello"[..], Qos::AtLeastOnce)
        );
        if version == "5" {
            assert_eq!(m.properties.get("k"), Some("v"));
        }
        // Router -> broker.
        // mosquitto_sub has subscribed once a retained probe reaches it.
        assert!(publish(port, &["-r", "-t", "out/0", "-m", "probe"]).await);
        let mut sub = sub(
            port,
            &[
                "-V", v, "-C", "2", "-q", "1", "-t", "out/#", "-F", "%t %p %C",
            ],
        );
        sub.read_until("the probe", |l| !l.is_empty()).await;
        deliver(&s, "cloud:out/x", "routed", Qos::AtLeastOnce).await;
        let ct = if version == "5" {
            "text/plain; charset=utf-8"
        } else {
            ""
        };
        let lines: Vec<String> = sub
            .lines()
            .await
            .iter()
            .map(|l| l.trim_end().to_owned())
            .collect();
        assert_eq!(lines, [format!("out/x routed {ct}").trim_end().to_owned()]);
        assert!(publish(port, &["-r", "-t", "out/0", "-n"]).await);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broker_restart_keeps_50_qos1_in_order() {
    restart_keeps_50_in_order("").await;
}

/// The same with a persistent session: mosquitto (with persistence) still
/// has our session after the restart, so the client resumes it and sends
/// again what the broker had not acknowledged, with the same packet
/// identifiers, before what was routed while the broker was down.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broker_restart_resumes_a_persistent_session_in_order() {
    restart_keeps_50_in_order("clean_session = false\nclient_id = \"persistent-relay\"").await;
}

async fn restart_keeps_50_in_order(extra: &str) {
    let dir = temp_dir("restart");
    let log = dir.join("mosquitto.log");
    let mut broker = Mosquitto::start(
        0,
        &format!("log_dest file {}\nlog_type all\n", log.display()),
        Some(dir),
    )
    .await;
    let port = broker.port;
    // A durable subscriber (persistent session, QoS 1).
    let mut durable = sub(port, &["-c", "-i", "durable-sub", "-q", "1", "-t", "seq/#"]);
    let s = client(port, extra, &[]).await;
    // The durable subscriber is in once a retained probe reaches it.
    assert!(publish(port, &["-r", "-q", "1", "-t", "seq/probe", "-m", "0"]).await);
    durable.read_until("the probe", |l| !l.is_empty()).await;
    for i in 1..=20 {
        deliver(&s, "cloud:seq/n", &i.to_string(), Qos::AtLeastOnce).await;
    }
    broker.stop().await;
    for i in 21..=35 {
        deliver(&s, "cloud:seq/n", &i.to_string(), Qos::AtLeastOnce).await;
    }
    let broker = broker.restart().await;
    for i in 36..=50 {
        deliver(&s, "cloud:seq/n", &i.to_string(), Qos::AtLeastOnce).await;
    }
    let firsts = numbered_in_order(&mut durable, "seq/n", 50).await;
    assert_eq!(firsts, (1..=50).collect::<Vec<_>>());
    assert_eq!(counter(&s, "mqtt_client_connects").get(), 2);
    if extra.contains("clean_session = false") {
        // The broker kept the session (mosquitto logs CONNACK's session
        // present flag first), so nothing was published again as new.
        let text = std::fs::read_to_string(&log).unwrap();
        assert!(
            text.contains("Sending CONNACK to persistent-relay (1, 0)"),
            "no resumed session in mosquitto's log"
        );
        assert_eq!(counter(&s, "mqtt_client_republished").get(), 0);
    }
    drop(broker);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn own_publications_are_not_reingested() {
    let broker = Mosquitto::start(0, "", None).await;
    let port = broker.port;
    for version in ["4", "5"] {
        let mut s = client(port, &format!("version = {version}"), &[("echo/#", 1)]).await;
        await_subscribed(port, &mut s, "echo/ready").await;
        deliver(&s, "cloud:echo/x", "mine", Qos::AtLeastOnce).await;
        let echoes = s
            .ctx
            .metrics
            .extra()
            .into_iter()
            .find(|c| c.name == "mqtt_client_echoes_dropped")
            .unwrap();
        if version == "4" {
            let e = echoes.clone();
            wait_for("the echo to be dropped", move || e.get() == 1).await;
        }
        // What others publish comes in; our own never does.
        for theirs in ["theirs1", "theirs2"] {
            assert!(publish(port, &["-q", "1", "-t", "echo/x", "-m", theirs]).await);
            let m = within("ingress", s.harness.ingress_rx.recv())
                .await
                .unwrap();
            assert_eq!(&m.payload[..], theirs.as_bytes(), "version {version}");
        }
        assert_eq!(echoes.get(), if version == "4" { 1 } else { 0 });
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn share_group_splits_one_stream() {
    let broker = Mosquitto::start(0, "", None).await;
    let port = broker.port;
    let mut a = client(
        port,
        "version = 5\nshare_group = \"sb\"\nclient_id = \"a\"",
        &[("sh/#", 1)],
    )
    .await;
    let mut b = client(
        port,
        "version = 5\nshare_group = \"sb\"\nclient_id = \"b\"",
        &[("sh/#", 1)],
    )
    .await;
    // Probe until both members receive: both subscriptions are in.
    let (mut seen_a, mut seen_b) = (false, false);
    within("both members subscribed", async {
        while !(seen_a && seen_b) {
            assert!(publish(port, &["-q", "1", "-t", "sh/probe", "-m", "p"]).await);
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            while let Ok(_m) = a.harness.ingress_rx.try_recv() {
                seen_a = true;
            }
            while let Ok(_m) = b.harness.ingress_rx.try_recv() {
                seen_b = true;
            }
        }
    })
    .await;
    for i in 0..20 {
        assert!(publish(port, &["-q", "1", "-t", "sh/n", "-m", &i.to_string()]).await);
    }
    let mut got = Vec::new();
    within("20 messages across both", async {
        while got.len() < 20 {
            tokio::select! {
                Some(m) = a.harness.ingress_rx.recv() => if m.topic.as_str() == "sh/n" { got.push(m.payload.clone()) },
                Some(m) = b.harness.ingress_rx.recv() => if m.topic.as_str() == "sh/n" { got.push(m.payload.clone()) },
            }
        }
    })
    .await;
    let distinct: HashSet<_> = got.iter().collect();
    assert_eq!(distinct.len(), 20, "each message handled once");
}

/// Reads `TOPIC N` lines until `count` different numbers came in; returns
/// the numbers in the order of their first occurrence (QoS 1 may repeat).
async fn numbered_in_order(sub: &mut Sub, topic: &str, count: usize) -> Vec<u32> {
    let prefix = format!("{topic} ");
    let lines = sub
        .read_until(&format!("{count} messages on {topic}"), |l| {
            l.iter()
                .filter(|x| x.starts_with(&prefix))
                .collect::<HashSet<_>>()
                .len()
                >= count
        })
        .await;
    let mut firsts = Vec::new();
    for l in &lines {
        let Some(n) = l.strip_prefix(&prefix) else {
            continue;
        };
        let n: u32 = n.parse().unwrap();
        if !firsts.contains(&n) {
            firsts.push(n);
        }
    }
    firsts
}

fn counter(s: &Started, name: &str) -> switchboard_model::Counter {
    s.ctx
        .metrics
        .extra()
        .into_iter()
        .find(|c| c.name == name)
        .unwrap_or_else(|| panic!("no counter {name}"))
}

fn signal(broker: &Mosquitto, sig: &str) {
    let pid = broker.child.id().unwrap().to_string();
    let ok = std::process::Command::new("kill")
        .args([sig, &pid])
        .status()
        .unwrap()
        .success();
    assert!(ok, "kill {sig} {pid}");
}

/// The client keeps its connection alive with PINGREQs (mosquitto logs
/// them), and notices a broker that stops answering (SIGSTOP) through the
/// unanswered PINGREQ: it drops the connection, connects again once the
/// broker runs, and the QoS 1 messages routed meanwhile all arrive, in order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keep_alive_pings_and_notices_a_frozen_broker() {
    for version in ["4", "5"] {
        let dir = temp_dir("ka");
        let log = dir.join("mosquitto.log");
        let broker = Mosquitto::start(
            0,
            &format!("log_dest file {}\nlog_type all\n", log.display()),
            Some(dir),
        )
        .await;
        let port = broker.port;
        let id = format!("ka-test-{version}");
        let mut durable = sub(port, &["-c", "-i", "ka-sub", "-q", "1", "-t", "ka/#"]);
        let secs = if version == "5" { 5 } else { 1 };
        let s = connected(
            port,
            &format!("version = {version}\nkeep_alive = \"{secs}s\"\nclient_id = \"{id}\""),
            &[],
        )
        .await;
        assert!(publish(port, &["-r", "-q", "1", "-t", "ka/probe", "-m", "0"]).await);
        durable.read_until("the probe", |l| !l.is_empty()).await;
        if version == "4" {
            let needle = format!("Received PINGREQ from {id}");
            wait_for("two PINGREQs from the client", || {
                std::fs::read_to_string(&log).map_or(0, |t| t.matches(&needle).count()) >= 2
            })
            .await;
        }
        let connects = counter(&s, "mqtt_client_connects");
        assert_eq!(connects.get(), 1, "never reconnected while pinging");

        signal(&broker, "-STOP");
        for i in 1..=10 {
            deliver(&s, "cloud:ka/n", &i.to_string(), Qos::AtLeastOnce).await;
        }
        let h = s.ctx.health.clone();
        within("the frozen broker to be noticed", async move {
            while h.get().up {
                tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            }
        })
        .await;
        signal(&broker, "-CONT");
        let c = connects.clone();
        wait_for("the client to connect again", move || c.get() >= 2).await;
        let firsts = numbered_in_order(&mut durable, "ka/n", 10).await;
        assert_eq!(firsts, (1..=10).collect::<Vec<_>>(), "version {version}");
        drop(broker);
    }
}

/// QoS 2 both ways through the client's own session handling: in (PUBLISH,
/// our PUBREC, PUBREL, our PUBCOMP) and out (our PUBLISH, PUBREC, our
/// PUBREL, PUBCOMP), each message once, checked in mosquitto's log.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn qos2_both_directions() {
    let dir = temp_dir("qos2");
    let log = dir.join("mosquitto.log");
    let broker = Mosquitto::start(
        0,
        &format!("log_dest file {}\nlog_type all\n", log.display()),
        Some(dir),
    )
    .await;
    let port = broker.port;
    for version in ["4", "5"] {
        let id = format!("q2-{version}");
        let mut s = client(
            port,
            &format!("version = {version}\nclient_id = \"{id}\""),
            &[("in2/#", 2)],
        )
        .await;
        await_subscribed(port, &mut s, "in2/ready").await;
        assert!(publish(port, &["-q", "2", "-t", "in2/a", "-m", "twice?"]).await);
        let m = within("the QoS 2 publication", s.harness.ingress_rx.recv())
            .await
            .unwrap();
        assert_eq!(
            (m.topic.as_str(), &m.payload[..], m.qos),
            ("in2/a", &b"twice?"[..], Qos::ExactlyOnce)
        );
        let needle = format!("Received PUBCOMP from {id}");
        wait_for("our PUBCOMP", || {
            std::fs::read_to_string(&log).is_ok_and(|t| t.contains(&needle))
        })
        .await;

        assert!(publish(port, &["-r", "-t", "out2/0", "-m", "probe"]).await);
        let mut sub = sub(port, &["-C", "2", "-q", "2", "-t", "out2/#"]);
        sub.read_until("the probe", |l| !l.is_empty()).await;
        deliver(&s, "cloud:out2/x", "exactly", Qos::ExactlyOnce).await;
        let lines = sub.lines().await;
        assert_eq!(lines, ["out2/x exactly"], "version {version}");
        let needle = format!("Received PUBREL from {id}");
        wait_for("our PUBREL", || {
            std::fs::read_to_string(&log).is_ok_and(|t| t.contains(&needle))
        })
        .await;
        // Nothing more came in: the PUBREL/PUBCOMP exchange delivered once.
        assert!(s.harness.ingress_rx.try_recv().is_err());
        assert!(publish(port, &["-r", "-t", "out2/0", "-n"]).await);
    }
}

/// MQTT 5: the broker's Server Keep Alive (CONNACK) replaces ours. Asked
/// for 60 s, told 10 s by mosquitto (`max_keepalive 10`, its minimum), the
/// client pings after 10 s (with 60 s it would not, and mosquitto would drop
/// it at 15 s).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn v5_follows_the_brokers_server_keep_alive() {
    let dir = temp_dir("ska");
    let log = dir.join("mosquitto.log");
    let broker = Mosquitto::start(
        0,
        &format!(
            "log_dest file {}\nlog_type all\nmax_keepalive 10\n",
            log.display()
        ),
        Some(dir),
    )
    .await;
    let port = broker.port;
    let s = connected(
        port,
        "version = 5\nkeep_alive = \"60s\"\nclient_id = \"ska\"",
        &[],
    )
    .await;
    wait_for("a PINGREQ", || {
        std::fs::read_to_string(&log).is_ok_and(|t| t.contains("Received PINGREQ from ska"))
    })
    .await;
    assert_eq!(counter(&s, "mqtt_client_connects").get(), 1);
    drop(broker);
}

/// MQTT 5: a publication over the broker's Maximum Packet Size (CONNACK;
/// mosquitto's `max_packet_size 1000`) is dropped and counted; the
/// connection stays up and what follows is delivered.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn v5_publication_over_the_brokers_maximum_packet_size_is_dropped() {
    let broker = Mosquitto::start(0, "max_packet_size 1000\n", None).await;
    let port = broker.port;
    let s = client(port, "version = 5", &[]).await;
    assert!(publish(port, &["-r", "-t", "big/0", "-m", "probe"]).await);
    let mut sub = sub(port, &["-V", "mqttv5", "-C", "2", "-q", "1", "-t", "big/#"]);
    sub.read_until("the probe", |l| !l.is_empty()).await;
    deliver(&s, "cloud:big/x", &"x".repeat(2000), Qos::AtLeastOnce).await;
    deliver(&s, "cloud:big/y", "small", Qos::AtLeastOnce).await;
    let lines = sub.lines().await;
    assert_eq!(lines, ["big/y small"]);
    assert_eq!(counter(&s, "mqtt_client_too_large").get(), 1);
    assert_eq!(counter(&s, "mqtt_client_connects").get(), 1);
    assert!(publish(port, &["-r", "-t", "big/0", "-n"]).await);
}

/// A broker that stops taking what we write (SIGSTOP, with megabytes to
/// send) counts as lost after the write-stall limit, long before a 60 s
/// keep-alive would notice; once it runs again the client connects again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broker_that_stops_reading_is_dropped_after_the_write_stall_limit() {
    let broker = Mosquitto::start(0, "", None).await;
    let port = broker.port;
    let s = connected(port, "keep_alive = \"60s\"", &[]).await;
    signal(&broker, "-STOP");
    let big = "x".repeat(200 * 1024);
    // 40 MB: more than the loopback socket buffers on both sides hold.
    for _ in 0..200 {
        deliver(&s, "cloud:stall/x", &big, Qos::AtMostOnce).await;
    }
    let h = s.ctx.health.clone();
    within("the stall to be noticed", async move {
        loop {
            let st = h.get();
            if !st.up {
                return st.reason;
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    })
    .await
    .filter(|r| r.contains("took nothing we wrote"))
    .expect("dropped for the write stall");
    signal(&broker, "-CONT");
    let c = counter(&s, "mqtt_client_connects");
    wait_for("the client to connect again", move || c.get() >= 2).await;
    drop(broker);
}
