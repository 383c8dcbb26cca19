//! TLS on the HTTP listener (shared with the WebSocket endpoint), with
//! certificates the test generates (openssl CLI) and clients that verify them:
//! curl --cacert for HTTPS, Python websockets with a CA file for WSS.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod common;

use std::path::Path;

use common::{BridgeProc, free_port, peer_script, python, run, tempdir};

fn openssl(dir: &Path, args: &[&str]) {
    let out = std::process::Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("openssl is missing (Debian package openssl)");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A CA and a server certificate for 127.0.0.1 signed by it.
fn pki(dir: &Path) {
    openssl(
        dir,
        &[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            "ca.key",
            "-out",
            "ca.pem",
            "-days",
            "2",
            "-subj",
            "/CN=switchboard test CA",
        ],
    );
    openssl(
        dir,
        &[
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            "server.key",
            "-out",
            "server.csr",
            "-subj",
            "/CN=127.0.0.1",
        ],
    );
    std::fs::write(dir.join("ext.cnf"), "subjectAltName=IP:127.0.0.1\n").unwrap();
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            "server.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-out",
            "server.pem",
            "-days",
            "2",
            "-extfile",
            "ext.cnf",
        ],
    );
}

#[test]
fn https_and_wss_with_verified_certificates() {
    let dir = tempdir::Dir::new("tls");
    pki(dir.path());
    let port = free_port();
    let p = |f: &str| dir.join(f).display().to_string();
    let b = BridgeProc::start(&format!(
        r#"
[adapter.http]
listen = "127.0.0.1:{port}"
tls_cert = "{}"
tls_key = "{}"
[adapter.ws]
listen = "127.0.0.1:{port}"
[[route]]
from = "ws:#"
to = ["http:{{0}}"]
"#,
        p("server.pem"),
        p("server.key")
    ));
    let url = format!("https://127.0.0.1:{port}");
    let ok = run(
        "curl",
        &[
            "-s",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
            "--cacert",
            &p("ca.pem"),
            &format!("{url}/healthz"),
        ],
    );
    assert_eq!(ok.stdout, "200", "{ok:?}");
    // Without the CA the certificate does not verify (curl exit 60).
    let bad = run(
        "curl",
        &["-s", "-o", "/dev/null", &format!("{url}/healthz")],
    );
    assert_eq!(bad.status.code(), Some(60), "{bad:?}");
    // Plain HTTP on the TLS port is refused.
    let plain = run(
        "curl",
        &[
            "-s",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
            &format!("http://127.0.0.1:{port}/healthz"),
        ],
    );
    assert_ne!(plain.stdout, "200");
    // WSS on the same listener, verified with the CA.
    let pubop = serde_json::json!({"op":"pub","topic":"secure/x","payload":1,"ref":1}).to_string();
    let out = run(
        &python(),
        &[
            &peer_script("ws_peer.py"),
            "run",
            &format!("wss://127.0.0.1:{port}/ws"),
            "--cafile",
            &p("ca.pem"),
            "--send",
            &pubop,
            "--recv",
            "1",
        ],
    );
    assert!(out.stdout.contains(r#"\"op\":\"ok\""#), "{out:?}");
    let got = run(
        "curl",
        &[
            "-s",
            "--cacert",
            &p("ca.pem"),
            &format!("{url}/topics/secure/x"),
        ],
    );
    assert_eq!(got.stdout, "1");
    drop(b);
}

#[test]
fn tls_config_errors_are_reported() {
    let (_dir, _, out) = common::check_config(
        "[adapter.http]\nlisten = \"127.0.0.1:0\"\ntls_cert = \"/nonexistent/cert.pem\"\n",
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(
        out.stderr
            .contains("adapter.http.tls_key: tls_cert needs tls_key"),
        "{}",
        out.stderr
    );
}
