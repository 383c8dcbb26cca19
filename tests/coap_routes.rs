//! Black-box tests of the bridge binary through its CoAP adapter with real
//! peers: libcoap's coap-client-notls and curl. CoAP -> route -> HTTP, HTTP ->
//! route -> CoAP GET and CoAP observe.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod common;

use std::time::Duration;

use common::{BridgeProc, Streaming, curl, run, wait_for};

const CONFIG: &str = r#"
[bridge]
shutdown_timeout = "3s"

[adapter.http]
listen = "127.0.0.1:0"

[adapter.coap]
listen = "127.0.0.1:0"

[[route]]
from = "*:#"
to = ["*:{0}"]
"#;

fn coap(args: &[&str]) -> common::Out {
    run("coap-client-notls", args)
}

#[test]
fn coap_put_is_routed_to_http() {
    let b = BridgeProc::start(CONFIG);
    let c = b.addr("coap", "coap");
    let url = format!("coap://127.0.0.1:{}/sensors/kitchen", c.port());
    let o = coap(&[
        "-m",
        "put",
        "-t",
        "50",
        "-e",
        r#"{"c":21.5}"#,
        "-B",
        "5",
        &url,
    ]);
    assert!(o.status.success(), "{o:?}");
    let get = format!("{}/topics/sensors/kitchen", b.http("http"));
    let body = wait_for("the CoAP value over HTTP", Duration::from_secs(10), || {
        let (code, body) = curl(&[], &get);
        (code == 200).then_some(body)
    });
    assert_eq!(body, r#"{"c":21.5}"#);
    let out = run("curl", &["-s", "-i", &get]);
    assert!(
        out.stdout
            .to_ascii_lowercase()
            .contains("content-type: application/json"),
        "{}",
        out.stdout
    );
    // The CoAP resource itself answers too, and lists itself.
    let o = coap(&["-B", "5", &url]);
    assert_eq!(o.stdout.trim(), r#"{"c":21.5}"#);
    let o = coap(&[
        "-B",
        "5",
        &format!("coap://127.0.0.1:{}/.well-known/core", c.port()),
    ]);
    assert!(
        o.stdout.contains("</sensors/kitchen>") && o.stdout.contains("ct=50"),
        "{o:?}"
    );
}

#[test]
fn http_puts_reach_coap_get_and_observers() {
    let b = BridgeProc::start(CONFIG);
    let c = b.addr("coap", "coap");
    let url = format!("coap://127.0.0.1:{}/lamp/state", c.port());
    let put = |v: &str| {
        let (code, _) = curl(
            &["-X", "PUT", "-H", "Content-Type: text/plain", "--data", v],
            &format!("{}/topics/lamp/state", b.http("http")),
        );
        assert_eq!(code, 204);
    };
    put("v1");
    wait_for("the HTTP value over CoAP", Duration::from_secs(10), || {
        (coap(&["-B", "3", &url]).stdout.trim() == "v1").then_some(())
    });
    let observer = Streaming::spawn("coap-client-notls", &["-s", "8", "-w", "-B", "10", &url]);
    observer
        .wait_line(Duration::from_secs(5), |l| l == "v1")
        .expect("first observe response");
    put("v2");
    observer
        .wait_line(Duration::from_secs(5), |l| l == "v2")
        .expect("notification v2");
    put("v3");
    observer
        .wait_line(Duration::from_secs(5), |l| l == "v3")
        .expect("notification v3");
    let lines: Vec<String> = observer
        .lines()
        .into_iter()
        .filter(|l| !l.is_empty())
        .collect();
    assert_eq!(lines, ["v1", "v2", "v3"]);
}

#[test]
fn check_reports_coap_config_errors_with_keys() {
    let (_dir, path, out) = common::check_config(
        "[adapter.coap]\nlisten = \"127.0.0.1:0\"\nblock_size = 1000\n[[adapter.coap.mount]]\nprefix = \"a/+\"\nurl = \"http://x\"\n",
    );
    let p = path.as_str();
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    for needle in [
        format!("{p}:3:14: adapter.coap.block_size: must be a power of two"),
        format!("{p}:5:10: adapter.coap.mount[0].prefix"),
        format!("{p}:6:7: adapter.coap.mount[0].url: `http://x` is not a coap:// URL"),
    ] {
        assert!(out.stderr.contains(&needle), "{needle}\n{}", out.stderr);
    }
}
