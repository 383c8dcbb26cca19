//! Black-box: routes between CoAP and MQTT on the bridge binary, checked with
//! coap-client-notls and mosquitto_pub / mosquitto_sub.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod common;

use std::time::Duration;

use common::{BridgeProc, Streaming, run, wait_for};

const T: Duration = Duration::from_secs(20);

const CONFIG: &str = r#"
[bridge]
shutdown_timeout = "3s"
[adapter.mqtt]
listen = "127.0.0.1:0"
[adapter.coap]
listen = "127.0.0.1:0"
[[route]]
from = "coap:#"
to = ["mqtt:{0}"]
qos = 1
[[route]]
from = "mqtt:#"
to = ["coap:{0}"]
"#;

#[test]
fn coap_to_mqtt_and_back() {
    let b = BridgeProc::start(CONFIG);
    let mqtt = b.addr("mqtt", "mqtt").port().to_string();
    let coap = b.addr("coap", "coap").port();
    let url = |p: &str| format!("coap://127.0.0.1:{coap}/{p}");

    // CoAP PUT -> route -> MQTT subscriber (QoS 1 from the route).
    let sub = Streaming::spawn(
        "mosquitto_sub",
        &[
            "-h",
            "127.0.0.1",
            "-p",
            &mqtt,
            "-q",
            "1",
            "-t",
            "cmd/#",
            "-F",
            "%t %p %q",
        ],
    );
    // The subscription is in place once a probe published over MQTT arrives.
    wait_for("the MQTT subscriber", T, || {
        let o = run(
            "mosquitto_pub",
            &["-h", "127.0.0.1", "-p", &mqtt, "-t", "cmd/probe", "-m", "p"],
        );
        assert!(o.status.success(), "{o:?}");
        sub.wait_line(Duration::from_millis(200), |l| l.starts_with("cmd/probe"))
            .map(|_| ())
    });
    let o = run(
        "coap-client-notls",
        &[
            "-m",
            "put",
            "-t",
            "50",
            "-e",
            r#"{"on":true}"#,
            "-B",
            "5",
            &url("cmd/lamp"),
        ],
    );
    assert!(o.status.success(), "{o:?}");
    let line = sub
        .wait_line(T, |l| l.starts_with("cmd/lamp"))
        .expect("the CoAP PUT over MQTT");
    assert_eq!(line, r#"cmd/lamp {"on":true} 1"#);

    // MQTT publish -> route -> CoAP GET, then a CoAP observer sees the next one.
    let pubm = |v: &str| {
        let o = run(
            "mosquitto_pub",
            &[
                "-h",
                "127.0.0.1",
                "-p",
                &mqtt,
                "-t",
                "sensors/temp",
                "-m",
                v,
            ],
        );
        assert!(o.status.success(), "{o:?}");
    };
    pubm("21.5");
    wait_for("the MQTT value over CoAP", T, || {
        (run("coap-client-notls", &["-B", "3", &url("sensors/temp")])
            .stdout
            .trim()
            == "21.5")
            .then_some(())
    });
    let obs = Streaming::spawn(
        "coap-client-notls",
        &["-s", "8", "-w", "-B", "10", &url("sensors/temp")],
    );
    obs.wait_line(T, |l| l == "21.5")
        .expect("observe registration");
    pubm("22.0");
    obs.wait_line(T, |l| l == "22.0")
        .expect("notification from MQTT");
}
