//! The whole bridge with its MQTT adapter, against real peers: mosquitto_pub /
//! mosquitto_sub on the embedded broker, curl on the HTTP adapter, and a
//! mosquitto broker restarted while QoS 1 messages flow from HTTP to it.
//! (Runs the bridge in-process through the library facade.)
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use switchboard::{Bridge, BridgeHandle};

const DEADLINE: Duration = Duration::from_secs(20);

fn require(tool: &str) {
    let ok = Command::new("sh")
        .args([
            "-c",
            &format!("command -v {tool} || test -x /usr/sbin/{tool}"),
        ])
        .stdout(Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    assert!(
        ok,
        "`{tool}` is missing: scripts/install.d/10-mosquitto.sh installs it"
    );
}

/// A child process killed on drop.
struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// mosquitto_sub -v, its lines delivered through a channel.
fn sub(port: u16, args: &[&str]) -> (Proc, std::sync::mpsc::Receiver<String>) {
    require("mosquitto_sub");
    let mut child = Command::new("mosquitto_sub")
        .args(["-h", "127.0.0.1", "-p", &port.to_string(), "-v"])
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let out = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for l in BufReader::new(out).lines().map_while(Result::ok) {
            if tx.send(l).is_err() {
                break;
            }
        }
    });
    (Proc(child), rx)
}

fn next_line(rx: &std::sync::mpsc::Receiver<String>, what: &str) -> String {
    rx.recv_timeout(DEADLINE)
        .unwrap_or_else(|_| panic!("timed out waiting for {what}"))
}

fn mosquitto_pub(port: u16, args: &[&str]) {
    require("mosquitto_pub");
    let st = Command::new("mosquitto_pub")
        .args(["-h", "127.0.0.1", "-p", &port.to_string()])
        .args(args)
        .status()
        .unwrap();
    assert!(st.success(), "mosquitto_pub {args:?}");
}

/// `curl -s -o - -w '\n%{http_code}'`: (status, body).
fn curl(args: &[&str]) -> (u16, String) {
    require("curl");
    let out = Command::new("curl")
        .args(["-s", "-w", "\n%{http_code}"])
        .args(args)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (body, code) = text.rsplit_once('\n').unwrap_or(("", "0"));
    (code.trim().parse().unwrap_or(0), body.to_owned())
}

fn wait_until<T>(what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let end = Instant::now() + DEADLINE;
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(Instant::now() < end, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(25));
    }
}

async fn bridge(toml: &str) -> BridgeHandle {
    Bridge::from_toml_str(toml)
        .expect("config")
        .start()
        .await
        .expect("start")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mqtt_to_http_and_back() {
    let h = bridge(
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
    )
    .await;
    let mqtt = h.endpoint("mqtt", "mqtt").unwrap().port();
    let http = h.endpoint("http", "http").unwrap();
    let (port, http) = (mqtt, http.to_string());
    tokio::task::spawn_blocking(move || {
        // MQTT -> bridge -> HTTP GET.
        mosquitto_pub(
            port,
            &["-q", "1", "-t", "sensors/kitchen/temp", "-m", "21.5"],
        );
        let url = format!("http://{http}/topics/sensors/kitchen/temp");
        let body = wait_until("the HTTP value", || match curl(&[&url]) {
            (200, b) => Some(b),
            _ => None,
        });
        assert_eq!(body, "21.5");
        // HTTP PUT -> bridge -> MQTT subscriber, at QoS 1 (route override).
        mosquitto_pub(port, &["-r", "-t", "cmd/ready", "-m", "1"]);
        let (_p, rx) = sub(port, &["-q", "1", "-t", "cmd/#", "-F", "%t %p %q"]);
        assert_eq!(next_line(&rx, "the probe"), "cmd/ready 1 0");
        let (code, _) = curl(&[
            "-X",
            "PUT",
            "--data-binary",
            "on",
            &format!("http://{http}/topics/cmd/lamp"),
        ]);
        assert_eq!(code, 204);
        assert_eq!(next_line(&rx, "the command"), "cmd/lamp on 1");
    })
    .await
    .unwrap();
    h.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn default_config_has_the_embedded_broker() {
    assert!(switchboard::DEFAULT_CONFIG.contains("[adapter.mqtt]"));
    assert!(switchboard::DEFAULT_CONFIG.contains(r#"listen = "127.0.0.1:1883""#));
}

fn temp_dir(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!(
        "sb-root-{tag}-{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos()
    ));
    std::fs::create_dir_all(&d).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&d, std::fs::Permissions::from_mode(0o777)).unwrap();
    d
}

fn mosquitto(conf: &Path) -> Proc {
    require("mosquitto");
    let bin = if Path::new("/usr/sbin/mosquitto").exists() {
        "/usr/sbin/mosquitto"
    } else {
        "mosquitto"
    };
    Proc(
        Command::new(bin)
            .args(["-c", conf.to_str().unwrap()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    )
}

fn wait_port(port: u16) {
    wait_until("mosquitto to listen", || {
        std::net::TcpStream::connect(("127.0.0.1", port)).ok()
    });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broker_restart_loses_no_qos1_message_from_http() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let dir = temp_dir("restart");
    let conf = dir.join("mosquitto.conf");
    std::fs::write(
        &conf,
        format!(
            "listener {port} 127.0.0.1\nallow_anonymous true\nmax_queued_messages 10000\npersistence true\npersistence_location {}/\n",
            dir.display()
        ),
    )
    .unwrap();
    let mut broker = mosquitto(&conf);
    wait_port(port);
    let h = bridge(&format!(
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
    ))
    .await;
    let http = h.endpoint("http", "http").unwrap().to_string();
    tokio::task::spawn_blocking(move || {
        let (_sub, rx) = sub(port, &["-c", "-i", "durable", "-q", "1", "-t", "seq/#"]);
        mosquitto_pub(port, &["-r", "-q", "1", "-t", "seq/probe", "-m", "0"]);
        assert_eq!(next_line(&rx, "the probe"), "seq/probe 0");
        let put = |i: u32| {
            let (code, _) = curl(&[
                "-X",
                "PUT",
                "--data-binary",
                &i.to_string(),
                &format!("http://{http}/topics/seq/n"),
            ]);
            assert_eq!(code, 204, "PUT {i}");
        };
        for i in 1..=20 {
            put(i);
        }
        // Stop the broker (SIGTERM: it saves its sessions), keep publishing.
        let pid = broker.0.id().to_string();
        Command::new("kill").args(["-TERM", &pid]).status().unwrap();
        let _ = broker.0.wait();
        for i in 21..=35 {
            put(i);
        }
        broker = mosquitto(&conf);
        wait_port(port);
        for i in 36..=50 {
            put(i);
        }
        let mut firsts: Vec<u32> = Vec::new();
        while firsts.len() < 50 {
            let l = next_line(&rx, &format!("message {} of 50", firsts.len() + 1));
            if let Some(n) = l.strip_prefix("seq/n ") {
                let n: u32 = n.parse().unwrap();
                if !firsts.contains(&n) {
                    firsts.push(n);
                }
            }
        }
        assert_eq!(firsts, (1..=50).collect::<Vec<_>>(), "all 50, in order");
        drop(broker);
    })
    .await
    .unwrap();
    h.shutdown().await.unwrap();
}
