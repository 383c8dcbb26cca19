//! The whole bridge (library, default-style config on ephemeral ports) with
//! real peers: libcoap's coap-client-notls and curl. CoAP -> route -> HTTP,
//! HTTP -> route -> CoAP GET and CoAP observe.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::Output;
use std::time::Duration;

const CONFIG: &str = r#"
[adapter.http]
listen = "127.0.0.1:0"
[adapter.coap]
listen = "127.0.0.1:0"
[[route]]
from = "*:#"
to = ["*:{0}"]
"#;

async fn run(cmd: &str, args: &[&str]) -> Output {
    let fut = tokio::process::Command::new(cmd)
        .args(args)
        .kill_on_drop(true)
        .output();
    match tokio::time::timeout(Duration::from_secs(30), fut).await {
        Ok(Ok(o)) => o,
        Ok(Err(e)) => {
            panic!("cannot run {cmd} ({e}); the test command installs it (scripts/install.d)")
        }
        Err(_) => panic!("{cmd} {args:?} timed out"),
    }
}

async fn eventually(mut f: impl AsyncFnMut() -> bool) -> bool {
    for _ in 0..100 {
        if f().await {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    false
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn coap_put_is_visible_over_http_and_http_put_over_coap() {
    let handle = switchboard::Bridge::from_toml_str(CONFIG)
        .unwrap()
        .start()
        .await
        .unwrap();
    let coap = handle.endpoint("coap", "coap").unwrap();
    let http = handle.endpoint("http", "http").unwrap();
    let coap_url = |p: &str| format!("coap://127.0.0.1:{}/{p}", coap.port());
    let http_url = |p: &str| format!("http://127.0.0.1:{}/topics/{p}", http.port());

    let o = run(
        "coap-client-notls",
        &[
            "-m",
            "put",
            "-t",
            "50",
            "-e",
            r#"{"c":21.5}"#,
            "-B",
            "5",
            &coap_url("sensors/kitchen"),
        ],
    )
    .await;
    assert!(o.status.success(), "{o:?}");
    let ok = eventually(async || {
        let o = run("curl", &["-s", "-i", &http_url("sensors/kitchen")]).await;
        let t = String::from_utf8_lossy(&o.stdout).to_lowercase();
        t.contains("200 ok") && t.contains("application/json") && t.contains(r#"{"c":21.5}"#)
    })
    .await;
    assert!(ok, "CoAP PUT routed to HTTP");

    // HTTP -> CoAP: GET, then observe two more values.
    let o = run(
        "curl",
        &[
            "-s",
            "-X",
            "PUT",
            "-H",
            "content-type: text/plain",
            "--data",
            "v1",
            &http_url("lamp/state"),
        ],
    )
    .await;
    assert!(o.status.success());
    let ok = eventually(async || {
        let o = run("coap-client-notls", &["-B", "3", &coap_url("lamp/state")]).await;
        String::from_utf8_lossy(&o.stdout).trim() == "v1"
    })
    .await;
    assert!(ok, "HTTP PUT routed to CoAP");
    let observer = tokio::process::Command::new("coap-client-notls")
        .args(["-s", "3", "-w", "-B", "5", &coap_url("lamp/state")])
        .kill_on_drop(true)
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("coap-client-notls");
    tokio::time::sleep(Duration::from_millis(700)).await;
    for v in ["v2", "v3"] {
        let o = run(
            "curl",
            &[
                "-s",
                "-X",
                "PUT",
                "-H",
                "content-type: text/plain",
                "--data",
                v,
                &http_url("lamp/state"),
            ],
        )
        .await;
        assert!(o.status.success());
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    let out = tokio::time::timeout(Duration::from_secs(10), observer.wait_with_output())
        .await
        .unwrap()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    let lines: Vec<&str> = text.lines().filter(|l| !l.is_empty()).collect();
    assert_eq!(lines, ["v1", "v2", "v3"], "{text}");
    handle.shutdown().await.unwrap();
}
