//! Black-box tests of the bridge binary through its HTTP adapter, driven with
//! curl: REST publish/GET, routing through patterns and templates, SSE,
//! limits, the JSON API, metrics, health, CLI errors and graceful shutdown.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod common;

use std::time::Duration;

use common::{BridgeProc, Streaming, curl, example_bin, put_json, run, wait_for};

const TWO_HTTP: &str = r#"
[bridge]
shutdown_timeout = "3s"

[adapter.http]
listen = "127.0.0.1:0"
max_payload = "1KiB"

[adapter.api]
kind = "http"
listen = "127.0.0.1:0"

[[route]]
from = "http:sensors/+/temperature"
to = ["api:temp/{1}", "api:all/{0}"]

[[route]]
from = "api:cmd/#"
to = ["http:commands/{1}"]
format = "cbor"
"#;

#[test]
fn put_then_get_returns_value_and_content_type() {
    let b = BridgeProc::start(TWO_HTTP);
    let base = b.http("http");
    put_json(&format!("{base}/topics/a/b%20c"), r#"{"v":1}"#);
    let out = run("curl", &["-s", "-i", &format!("{base}/topics/a/b%20c")]);
    assert!(out.stdout.starts_with("HTTP/1.1 200"), "{}", out.stdout);
    assert!(
        out.stdout
            .to_ascii_lowercase()
            .contains("content-type: application/json"),
        "{}",
        out.stdout
    );
    assert!(out.stdout.ends_with(r#"{"v":1}"#), "{}", out.stdout);
    // Another adapter instance does not share http:'s values.
    let (code, _) = curl(&[], &format!("{}/topics/a/b%20c", b.http("api")));
    assert_eq!(code, 404);
}

#[test]
fn errors_are_protocol_correct() {
    let b = BridgeProc::start(TWO_HTTP);
    let base = b.http("http");
    assert_eq!(curl(&[], &format!("{base}/topics/never/set")).0, 404);
    assert_eq!(
        curl(
            &["-X", "PUT", "--data", "x"],
            &format!("{base}/topics/a/%2B")
        )
        .0,
        400
    );
    assert_eq!(
        curl(
            &["-X", "PUT", "--data", "x"],
            &format!("{base}/topics/a/%23")
        )
        .0,
        400
    );
    assert_eq!(
        curl(
            &[
                "-X",
                "PUT",
                "-H",
                "Content-Type: application/json",
                "--data",
                "{nope"
            ],
            &format!("{base}/topics/j")
        )
        .0,
        400
    );
    assert_eq!(
        curl(
            &["-X", "PUT", "-H", "Content-Type: nonsense", "--data", "x"],
            &format!("{base}/topics/j")
        )
        .0,
        415
    );
    assert_eq!(curl(&["-X", "DELETE"], &format!("{base}/topics/j")).0, 405);
    assert_eq!(curl(&[], &format!("{base}/nothing-here")).0, 404);
    // 413 from Content-Length, and from a chunked body (no length) while reading.
    let big = b.dir.join("big.bin");
    std::fs::write(&big, vec![b'x'; 4096]).unwrap();
    let at = format!("@{}", big.display());
    assert_eq!(
        curl(
            &["-X", "PUT", "--data-binary", &at],
            &format!("{base}/topics/big")
        )
        .0,
        413
    );
    assert_eq!(
        curl(
            &[
                "-X",
                "PUT",
                "-H",
                "Transfer-Encoding: chunked",
                "--data-binary",
                &at
            ],
            &format!("{base}/topics/big")
        )
        .0,
        413
    );
    assert_eq!(
        curl(&[], &format!("{base}/topics/big")).0,
        404,
        "nothing of a refused body is published"
    );
    // Exactly the limit is fine.
    std::fs::write(&big, vec![b'x'; 1024]).unwrap();
    assert_eq!(
        curl(
            &["-X", "PUT", "--data-binary", &at],
            &format!("{base}/topics/big")
        )
        .0,
        204
    );
    let metrics = curl(&[], &format!("{base}/metrics")).1;
    let errors = metrics
        .lines()
        .find(|l| l.starts_with("switchboard_adapter_errors_total{adapter=\"http\""))
        .unwrap();
    assert!(
        !errors.ends_with(" 0"),
        "client errors are counted: {errors}"
    );
}

#[test]
fn routes_follow_patterns_and_templates() {
    let b = BridgeProc::start(TWO_HTTP);
    let (http, api) = (b.http("http"), b.http("api"));
    let (code, _) = curl(
        &[
            "-X",
            "POST",
            "-H",
            "Content-Type: text/plain",
            "--data",
            "21.5",
        ],
        &format!("{http}/topics/sensors/kitchen/temperature"),
    );
    assert_eq!(code, 204);
    let got = wait_for("routed value", Duration::from_secs(5), || {
        let (c, body) = curl(&[], &format!("{api}/topics/temp/kitchen"));
        (c == 200).then_some(body)
    });
    assert_eq!(got, "21.5");
    assert_eq!(
        curl(
            &[],
            &format!("{api}/topics/all/sensors/kitchen/temperature")
        )
        .1,
        "21.5"
    );
    // Not matching the pattern: not routed.
    curl(
        &["-X", "POST", "--data", "1"],
        &format!("{http}/topics/sensors/kitchen/humidity"),
    );
    // A route with format conversion: JSON in, CBOR out.
    curl(
        &[
            "-X",
            "PUT",
            "-H",
            "Content-Type: application/json",
            "--data",
            "[1]",
        ],
        &format!("{api}/topics/cmd/lamp/on"),
    );
    let url = format!("{http}/topics/commands/lamp/on");
    let out = wait_for("converted value", Duration::from_secs(5), || {
        let o = run(
            "curl",
            &[
                "-s",
                "-o",
                "/dev/null",
                "-w",
                "%{http_code} %{content_type} %{size_download}",
                &url,
            ],
        );
        o.stdout.starts_with("200").then_some(o.stdout)
    });
    assert_eq!(out, "200 application/cbor 2", "CBOR of [1] is 0x81 0x01");
    // Route counters in the API and in /metrics.
    let routes: serde_json::Value =
        serde_json::from_str(&curl(&[], &format!("{http}/api/routes")).1).unwrap();
    assert_eq!(routes[0]["counters"]["matched"], 1);
    assert_eq!(routes[0]["counters"]["delivered"], 2);
    let metrics = curl(&[], &format!("{http}/metrics")).1;
    assert!(
        metrics.contains(
            "switchboard_route_matched_total{route=\"0\",from=\"http:sensors/+/temperature\"} 1"
        ),
        "{metrics}"
    );
    assert!(metrics.contains("# TYPE switchboard_route_delivered_total counter"));
    let topics: serde_json::Value =
        serde_json::from_str(&curl(&[], &format!("{api}/api/topics")).1).unwrap();
    assert!(
        topics
            .as_array()
            .unwrap()
            .iter()
            .any(|t| t["address"] == "api:temp/kitchen")
    );
}

#[test]
fn sse_streams_matching_messages() {
    let b = BridgeProc::start(TWO_HTTP);
    let (http, api) = (b.http("http"), b.http("api"));
    let sse = Streaming::spawn(
        "curl",
        &[
            "-s",
            "-N",
            &format!("{api}/events?topic=temp/%23&topic=other"),
        ],
    );
    assert!(
        sse.wait_line(Duration::from_secs(5), |l| l == ": open")
            .is_some(),
        "stream opened"
    );
    // A routed delivery and a local publication both arrive; a non-matching one does not.
    curl(
        &[
            "-X",
            "POST",
            "-H",
            "Content-Type: application/json",
            "--data",
            r#"{"c":3}"#,
        ],
        &format!("{http}/topics/sensors/hall/temperature"),
    );
    curl(
        &["-X", "POST", "--data", "x"],
        &format!("{api}/topics/nope"),
    );
    curl(
        &[
            "-X",
            "POST",
            "-H",
            "Content-Type: text/plain",
            "--data",
            "hello",
        ],
        &format!("{api}/topics/other"),
    );
    let first = sse
        .wait_line(Duration::from_secs(5), |l| {
            l.starts_with("data:") && l.contains("temp/hall")
        })
        .expect("routed event");
    let v: serde_json::Value =
        serde_json::from_str(first.trim_start_matches("data:").trim()).unwrap();
    assert_eq!(v["payload"]["c"], 3);
    assert_eq!(v["origin"], "http");
    let second = sse
        .wait_line(Duration::from_secs(5), |l| {
            l.starts_with("data:") && l.contains("\"other\"")
        })
        .expect("local event");
    assert!(second.contains("\"payload\":\"hello\""), "{second}");
    assert!(!sse.lines().iter().any(|l| l.contains("\"nope\"")));
    // A bad pattern is a 400.
    assert_eq!(curl(&[], &format!("{api}/events?topic=a/%23/b")).0, 400);
}

#[test]
fn health_and_index() {
    let b = BridgeProc::start(TWO_HTTP);
    let (code, body) = curl(&[], &format!("{}/healthz", b.http("http")));
    assert_eq!(code, 200, "{body}");
    assert!(body.contains("\"status\":\"ok\""));
    assert_eq!(curl(&[], &format!("{}/", b.http("http"))).0, 200);
}

#[test]
fn sigterm_shuts_down_gracefully_with_status_0() {
    let mut b = BridgeProc::start(TWO_HTTP);
    let sse = Streaming::spawn("curl", &["-s", "-N", &format!("{}/events", b.http("http"))]);
    assert!(
        sse.wait_line(Duration::from_secs(5), |l| l == ": open")
            .is_some()
    );
    let st = b
        .terminate(Duration::from_secs(10))
        .expect("bridge exits after SIGTERM");
    assert_eq!(st.code(), Some(0), "{}", b.log_text());
    assert!(b.wait_log("Stopped.", Duration::from_secs(1)));
}

#[test]
fn check_reports_every_error_with_file_line_and_key() {
    let (_dir, path, out) = common::check_config(
        "[adapter.http]\nlisten = \"127.0.0.1:0\"\ncolour = 1\n\n[[route]]\nfrom = \"http:a/+\"\nto = [\"http:{3}\", \"nope:x\"]\n",
    );
    let p = path.as_str();
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    assert!(
        out.stderr.contains(&format!(
            "{p}:3:1: adapter.http.colour: unknown field `colour`"
        )),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr.contains(&format!("{p}:7:7: route[0].to[0]")),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr
            .contains("route[0].to[1]: no adapter named `nope`"),
        "{}",
        out.stderr
    );
    // Running (not only --check) with a bad config starts nothing and exits 2.
    let out = run(example_bin("bridge").to_str().unwrap(), &["--config", p]);
    assert_eq!(out.status.code(), Some(2));
    // A missing file is reported too.
    let out = run(
        example_bin("bridge").to_str().unwrap(),
        &["--config", "/nonexistent.toml", "--check"],
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(out.stderr.contains("/nonexistent.toml"));
}

#[test]
fn default_config_is_printed_and_valid() {
    let bin = example_bin("bridge");
    let out = run(bin.to_str().unwrap(), &["--print-default-config"]);
    assert!(out.status.success());
    assert!(out.stdout.contains("[adapter.http]"));
    let dir = common::tempdir::Dir::new("default");
    let path = dir.join("default.toml");
    std::fs::write(&path, &out.stdout).unwrap();
    let out = run(
        bin.to_str().unwrap(),
        &["--config", path.to_str().unwrap(), "--check"],
    );
    assert!(out.status.success(), "{out:?}");
}

/// `[bridge] worker_threads` sizes the binary's runtime (default: one per
/// core); 0 is a config error with its place in the file.
#[test]
fn worker_threads_sizes_the_runtime() {
    let b = BridgeProc::start(&TWO_HTTP.replace("[bridge]\n", "[bridge]\nworker_threads = 1\n"));
    assert!(
        b.wait_log("workers=1", Duration::from_secs(5)),
        "{}",
        b.log_text()
    );
    let cores = std::thread::available_parallelism().map_or(1, usize::from);
    let d = BridgeProc::start(TWO_HTTP);
    assert!(
        d.wait_log(&format!("workers={cores}"), Duration::from_secs(5)),
        "{}",
        d.log_text()
    );
    let (_dir, path, out) = common::check_config("[bridge]\nworker_threads = 0\n");
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    assert!(
        out.stderr.contains(&format!("{path}:2:")) && out.stderr.contains("worker_threads"),
        "{}",
        out.stderr
    );
}
