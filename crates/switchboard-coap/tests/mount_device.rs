//! Mounts against libcoap's coap-server-notls as the remote device: observed
//! resources become messages, deliveries become CON PUTs that survive the
//! device briefly disappearing (retransmission), observations re-register.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use support::*;
use switchboard_coap::{Config, Mount};
use switchboard_model::units::HumanDuration;
use switchboard_model::{Ack, Delivery, Format, Message, Qos, RouteCounters, Topic};

struct Device {
    child: tokio::process::Child,
}

fn spawn_device(port: u16) -> Device {
    let child = tokio::process::Command::new("coap-server-notls")
        .args(["-A", "127.0.0.1", "-p", &port.to_string(), "-d", "20"])
        .kill_on_drop(true)
        .spawn()
        .expect(
            "coap-server-notls missing: install Debian libcoap3-bin (scripts/install.d/30-coap.sh)",
        );
    Device { child }
}

async fn device_up(port: u16) {
    for _ in 0..100 {
        let o = coap_client(&["-B", "1", &format!("coap://127.0.0.1:{port}/time")]).await;
        if o.status.success() && !o.stdout.is_empty() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("coap-server-notls did not come up on {port}");
}

fn free_udp_port() -> u16 {
    let s = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    s.local_addr().unwrap().port()
}

fn count(s: &Server, topic: &str) -> usize {
    s.published
        .lock()
        .unwrap()
        .iter()
        .filter(|m| m.topic.as_str() == topic)
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mounted_device_observe_and_put_with_retransmission() {
    let port = free_udp_port();
    let mut dev = spawn_device(port);
    device_up(port).await;
    let dev_url = format!("coap://127.0.0.1:{port}");
    let o = coap_client(&[
        "-m",
        "put",
        "-e",
        "on",
        "-B",
        "3",
        &format!("{dev_url}/dyn/state"),
    ])
    .await;
    assert!(o.status.success(), "{o:?}");
    let large: String = (0..2500)
        .map(|i| char::from(b'a' + (i % 26) as u8))
        .collect();
    let f = std::env::temp_dir().join(format!("coap-mount-large-{}", std::process::id()));
    std::fs::write(&f, &large).unwrap();
    let o = coap_client(&[
        "-m",
        "put",
        "-b",
        "512",
        "-f",
        f.to_str().unwrap(),
        "-B",
        "5",
        &format!("{dev_url}/dyn/large"),
    ])
    .await;
    let _ = std::fs::remove_file(&f);
    assert!(o.status.success(), "{o:?}");

    let cfg = Config {
        ack_timeout: HumanDuration(Duration::from_millis(400)),
        max_retransmit: 5,
        mount: vec![Mount {
            prefix: "lamp".into(),
            url: dev_url.clone(),
            observe: vec!["dyn/state".into(), "time".into(), "dyn/large".into()],
        }],
        ..Config::default()
    };
    let s = start(cfg).await;
    // Observed values arrive as coap:lamp/...
    assert!(
        wait_for(10, || count(&s, "lamp/dyn/state") >= 1).await,
        "initial value"
    );
    let m = s
        .published
        .lock()
        .unwrap()
        .iter()
        .find(|m| m.topic.as_str() == "lamp/dyn/state")
        .cloned()
        .unwrap();
    assert_eq!(&m.payload[..], b"on");
    assert_eq!(m.format, Format::Octets);
    assert!(
        wait_for(10, || count(&s, "lamp/time") >= 3).await,
        "several time notifications"
    );
    // A change on the device is notified.
    let o = coap_client(&[
        "-m",
        "put",
        "-e",
        "off",
        "-B",
        "3",
        &format!("{dev_url}/dyn/state"),
    ])
    .await;
    assert!(o.status.success());
    assert!(
        wait_for(10, || s
            .last_published_at("lamp/dyn/state")
            .is_some_and(|m| &m.payload[..] == b"off"))
        .await,
        "notification of the change"
    );
    // GET on our server returns the mounted value.
    let o = coap_client(&["-B", "3", &s.url("lamp/dyn/state")]).await;
    assert_eq!(stdout(&o).trim(), "off");

    // Deliveries to coap:lamp/... become CON PUTs.
    let counters = Arc::new(RouteCounters::default());
    let deliver = |path: &str, v: &str| {
        let m = Message::new("mqtt", Topic::new(path).unwrap(), v.to_owned())
            .with_format(Format::Text)
            .with_qos(Qos::AtLeastOnce);
        s.ctx
            .deliveries
            .try_push(Delivery {
                message: m.into(),
                ack: Ack::new(counters.clone()),
            })
            .unwrap();
    };
    deliver("lamp/dyn/cmd", "first");
    assert!(wait_for(10, || counters.delivered.load(Ordering::Relaxed) == 1).await);
    let o = coap_client(&["-B", "3", &format!("{dev_url}/dyn/cmd")]).await;
    assert_eq!(stdout(&o).trim(), "first");

    // A 3000-byte delivery goes block-wise.
    let big = "z".repeat(3000);
    deliver("lamp/dyn/big", &big);
    assert!(
        wait_for(10, || counters.delivered.load(Ordering::Relaxed) == 2).await,
        "block-wise PUT"
    );
    let o = coap_client(&["-B", "3", &format!("{dev_url}/dyn/big")]).await;
    assert_eq!(stdout(&o).trim().len(), 3000);

    // The device disappears; a delivery made meanwhile is retransmitted until
    // it comes back.
    dev.child.kill().await.unwrap();
    let time_before = count(&s, "lamp/time");
    deliver("lamp/dyn/cmd2", "while-away");
    tokio::time::sleep(Duration::from_millis(1200)).await;
    assert_eq!(counters.delivered.load(Ordering::Relaxed), 2);
    let _dev2 = spawn_device(port);
    assert!(
        wait_for(20, || counters.delivered.load(Ordering::Relaxed) == 3).await,
        "delivered after the device came back (failed: {})",
        counters.failed.load(Ordering::Relaxed)
    );
    assert_eq!(counters.failed.load(Ordering::Relaxed), 0);
    let o = coap_client(&["-B", "3", &format!("{dev_url}/dyn/cmd2")]).await;
    assert_eq!(stdout(&o).trim(), "while-away");
    // The lost observation of /time is re-registered.
    assert!(
        wait_for(20, || count(&s, "lamp/time") >= time_before + 3).await,
        "re-registered observation"
    );
}
