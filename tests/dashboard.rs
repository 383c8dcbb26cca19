//! The dashboard page in headless Chromium (Debian's chromium and
//! chromedriver, driven over WebDriver by Selenium): it loads without console
//! errors, shows a message published with mosquitto_pub within a second, and a
//! publish from its form reaches a mosquitto_sub subscriber.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod common;

use common::{BridgeProc, free_port, peer_script, python, run};

#[test]
fn dashboard_in_headless_chromium() {
    let port = free_port();
    let b = BridgeProc::start(&format!(
        r#"
[adapter.mqtt]
listen = "127.0.0.1:0"
[adapter.http]
listen = "127.0.0.1:{port}"
[adapter.ws]
listen = "127.0.0.1:{port}"
[[route]]
from = "*:#"
to = ["*:{{0}}"]
"#
    ));
    let mqtt = b.addr("mqtt", "mqtt").port().to_string();
    let shot = b.dir.join("dashboard.png");
    let out = run(
        &python(),
        &[
            &peer_script("dashboard.py"),
            &format!("http://127.0.0.1:{port}/"),
            &mqtt,
            shot.to_str().unwrap(),
        ],
    );
    assert!(
        out.status.success(),
        "dashboard driver failed: {}\n{}",
        out.stdout,
        out.stderr
    );
    let report: serde_json::Value =
        serde_json::from_str(out.stdout.trim()).unwrap_or_else(|e| panic!("{e}: {}", out.stdout));
    assert_eq!(report["connected"], true, "{report}");
    assert_eq!(report["tail_live"], true, "{report}");
    let latency = report["tail_latency_s"].as_f64().unwrap_or(f64::MAX);
    assert!(
        latency < 1.0,
        "mosquitto_pub -> page took {latency}s: {report}"
    );
    assert_eq!(report["topic_listed"], true, "{report}");
    assert_eq!(
        report["mqtt_received"], r#"commands/lamp {"on": true}"#,
        "{report}"
    );
    assert_eq!(
        report["console_errors"].as_array().map(Vec::len),
        Some(0),
        "{report}"
    );
    // Keep the screenshot as an artifact next to the build.
    let keep = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("dashboard.png");
    std::fs::copy(&shot, &keep).unwrap();
    eprintln!("screenshot: {}", keep.display());
}
