//! The `[adapter.NAME]` table of an `mqtt` adapter (SPEC section 3): either
//! `listen` (embedded broker) or `url` (client of an external broker), plus
//! the keys of each mode. Also the `mqtt://` / `mqtts://` URL parser.

use std::net::SocketAddr;
use std::path::PathBuf;

use serde::Deserialize;
use switchboard_model::units::{ByteSize, ConfigIssue, HumanDuration, Secret};
use switchboard_model::{Pattern, Qos};

/// One `[[adapter.mqtt.user]]` of the embedded broker.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct User {
    /// User name.
    pub username: String,
    /// Password.
    pub password: Secret,
    /// Filters this user may subscribe to (empty: none).
    #[serde(default)]
    pub read: Vec<String>,
    /// Filters this user may publish to (empty: none).
    #[serde(default)]
    pub write: Vec<String>,
}

/// Configuration of an `mqtt` adapter.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Embedded broker: the address to listen on.
    #[serde(default)]
    pub listen: Option<SocketAddr>,
    /// Client mode: `mqtt://[user:pass@]host[:port]` or `mqtts://...`.
    #[serde(default)]
    pub url: Option<String>,
    /// Largest payload accepted (default 1 MiB).
    #[serde(default = "default_max_payload")]
    pub max_payload: ByteSize,
    /// Broker: TLS certificate chain (PEM) for the listener.
    #[serde(default)]
    pub tls_cert: Option<PathBuf>,
    /// Broker: TLS private key (PEM).
    #[serde(default)]
    pub tls_key: Option<PathBuf>,
    /// Broker: users; once any exists, clients must log in.
    #[serde(default)]
    pub user: Vec<User>,
    /// Broker: connected clients at once (CONNACK "quota exceeded" beyond).
    #[serde(default = "default_max_clients")]
    pub max_clients: usize,
    /// Broker: sessions held, connected or persistent (default 10 000).
    #[serde(default = "default_max_sessions")]
    pub max_sessions: usize,
    /// Broker: unacknowledged QoS 1/2 messages per client (default 64).
    #[serde(default = "default_max_inflight")]
    pub max_inflight: u16,
    /// Broker: messages queued per client beyond the inflight window; more
    /// are dropped and counted (default 1000).
    #[serde(default = "default_max_queued")]
    pub max_queued: usize,
    /// Client: client identifier (default `switchboard-<name>-<pid>`).
    #[serde(default)]
    pub client_id: Option<String>,
    /// Client: protocol version, 4 (3.1.1) or 5.
    #[serde(default = "default_version")]
    pub version: u8,
    /// Client: CA certificates (PEM) to verify the broker; default: the system's.
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
    /// Client: certificate (PEM) for mutual TLS.
    #[serde(default)]
    pub client_cert: Option<PathBuf>,
    /// Client: private key (PEM) for mutual TLS.
    #[serde(default)]
    pub client_key: Option<PathBuf>,
    /// Client: subscribe as `$share/GROUP/FILTER`.
    #[serde(default)]
    pub share_group: Option<String>,
    /// Client: clean session (3.1.1) / clean start with no expiry (5).
    #[serde(default = "default_true")]
    pub clean_session: bool,
    /// Keep alive (client mode; default 30 s).
    #[serde(default = "default_keep_alive")]
    pub keep_alive: HumanDuration,
    /// Client: QoS >= 1 messages kept while the broker is away.
    #[serde(default = "default_max_buffered")]
    pub max_buffered: usize,
    /// Client: bytes of payload kept while the broker is away.
    #[serde(default = "default_max_buffered_bytes")]
    pub max_buffered_bytes: ByteSize,
}

fn default_max_payload() -> ByteSize {
    ByteSize(1024 * 1024)
}
fn default_max_clients() -> usize {
    1000
}
fn default_max_sessions() -> usize {
    10_000
}
fn default_max_inflight() -> u16 {
    64
}
fn default_max_queued() -> usize {
    1000
}
fn default_version() -> u8 {
    4
}
fn default_true() -> bool {
    true
}
fn default_keep_alive() -> HumanDuration {
    HumanDuration(std::time::Duration::from_secs(30))
}
fn default_max_buffered() -> usize {
    100_000
}
fn default_max_buffered_bytes() -> ByteSize {
    ByteSize(64 * 1024 * 1024)
}

impl Default for Config {
    fn default() -> Self {
        Config {
            listen: None,
            url: None,
            max_payload: default_max_payload(),
            tls_cert: None,
            tls_key: None,
            user: Vec::new(),
            max_clients: default_max_clients(),
            max_sessions: default_max_sessions(),
            max_inflight: default_max_inflight(),
            max_queued: default_max_queued(),
            client_id: None,
            version: default_version(),
            ca_file: None,
            client_cert: None,
            client_key: None,
            share_group: None,
            clean_session: true,
            keep_alive: default_keep_alive(),
            max_buffered: default_max_buffered(),
            max_buffered_bytes: default_max_buffered_bytes(),
        }
    }
}

/// A parsed broker URL.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BrokerUrl {
    /// `mqtts://`.
    pub tls: bool,
    /// Host name or IP (without brackets).
    pub host: String,
    /// Port (default 1883, or 8883 with TLS).
    pub port: u16,
    /// User name from the URL.
    pub username: Option<String>,
    /// Password from the URL.
    pub password: Option<Secret>,
}

fn percent_decode(s: &str) -> Result<String, String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let hex = s
                .get(i + 1..i + 3)
                .and_then(|h| u8::from_str_radix(h, 16).ok())
                .ok_or("bad percent escape")?;
            out.push(hex);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| "percent escape is not UTF-8".to_owned())
}

impl BrokerUrl {
    /// Parses `mqtt://[user[:pass]@]host[:port][/]` or `mqtts://...`.
    pub fn parse(url: &str) -> Result<BrokerUrl, String> {
        let (tls, rest) = if let Some(r) = url.strip_prefix("mqtt://") {
            (false, r)
        } else if let Some(r) = url.strip_prefix("mqtts://") {
            (true, r)
        } else {
            return Err("the scheme must be mqtt:// or mqtts://".into());
        };
        let rest = rest.strip_suffix('/').unwrap_or(rest);
        if rest.contains(['/', '?', '#']) {
            return Err("a broker URL has no path, query or fragment".into());
        }
        let (userinfo, hostport) = match rest.rsplit_once('@') {
            Some((u, h)) => (Some(u), h),
            None => (None, rest),
        };
        let (username, password) = match userinfo {
            None => (None, None),
            Some(u) => match u.split_once(':') {
                Some((n, p)) => (
                    Some(percent_decode(n)?),
                    Some(Secret::new(percent_decode(p)?)),
                ),
                None => (Some(percent_decode(u)?), None),
            },
        };
        let (host, port) = if let Some(h) = hostport.strip_prefix('[') {
            let (h, after) = h.split_once(']').ok_or("unclosed [ in host")?;
            let port = match after {
                "" => None,
                p => Some(p.strip_prefix(':').ok_or("junk after ]")?),
            };
            (h, port)
        } else {
            match hostport.rsplit_once(':') {
                Some((h, p)) => (h, Some(p)),
                None => (hostport, None),
            }
        };
        if host.is_empty() || host.contains(['[', ']', ' ']) {
            return Err("missing or bad host".into());
        }
        let port = match port {
            None => {
                if tls {
                    8883
                } else {
                    1883
                }
            }
            Some(p) => p
                .parse::<u16>()
                .ok()
                .filter(|p| *p != 0)
                .ok_or("bad port")?,
        };
        Ok(BrokerUrl {
            tls,
            host: host.to_owned(),
            port,
            username: username.filter(|u| !u.is_empty()),
            password,
        })
    }
}

impl Config {
    /// Whether this instance is an embedded broker (else a client).
    pub fn is_broker(&self) -> bool {
        self.url.is_none()
    }

    /// Checks serde cannot make.
    pub fn validate(&self) -> Vec<ConfigIssue> {
        let mut issues = Vec::new();
        match (&self.listen, &self.url) {
            (Some(_), Some(_)) => issues.push(ConfigIssue::new(
                "url",
                "set either `listen` (embedded broker) or `url` (client), not both",
            )),
            (None, None) => issues.push(ConfigIssue::new(
                "listen",
                "set `listen` (embedded broker) or `url` (client of a broker)",
            )),
            _ => {}
        }
        if self.max_payload.0 == 0 || self.max_payload.0 > 256 * 1024 * 1024 {
            issues.push(ConfigIssue::new(
                "max_payload",
                "must be between 1 B and 256MiB",
            ));
        }
        if let Some(url) = &self.url {
            if let Err(e) = BrokerUrl::parse(url) {
                issues.push(ConfigIssue::new("url", e));
            }
            if !matches!(self.version, 4 | 5) {
                issues.push(ConfigIssue::new("version", "must be 4 (MQTT 3.1.1) or 5"));
            }
            if self.client_cert.is_some() != self.client_key.is_some() {
                issues.push(ConfigIssue::new(
                    "client_key",
                    "client_cert and client_key go together",
                ));
            }
            if let Some(g) = &self.share_group
                && (g.is_empty() || g.contains(['/', '+', '#']))
            {
                issues.push(ConfigIssue::new(
                    "share_group",
                    "a group name has no `/`, `+` or `#`",
                ));
            }
            if self.client_id.as_ref().is_some_and(|c| c.len() > 65_535) {
                issues.push(ConfigIssue::new("client_id", "too long"));
            }
            for (key, set) in [
                ("tls_cert", self.tls_cert.is_some()),
                ("tls_key", self.tls_key.is_some()),
                ("user", !self.user.is_empty()),
            ] {
                if set {
                    issues.push(ConfigIssue::new(
                        key,
                        "only for the embedded broker (`listen`)",
                    ));
                }
            }
            if self.keep_alive.0.as_secs() > 65_535 {
                issues.push(ConfigIssue::new("keep_alive", "at most 65535s"));
            }
            if self.max_buffered == 0 {
                issues.push(ConfigIssue::new("max_buffered", "must be at least 1"));
            }
        } else {
            issues.extend(switchboard_model::tls::validate(
                self.tls_cert.as_deref(),
                self.tls_key.as_deref(),
            ));
            for (key, set) in [
                ("client_id", self.client_id.is_some()),
                ("ca_file", self.ca_file.is_some()),
                ("client_cert", self.client_cert.is_some()),
                ("client_key", self.client_key.is_some()),
                ("share_group", self.share_group.is_some()),
            ] {
                if set {
                    issues.push(ConfigIssue::new(key, "only for client mode (`url`)"));
                }
            }
            if self.max_clients == 0 || self.max_sessions < self.max_clients {
                issues.push(ConfigIssue::new(
                    "max_sessions",
                    "max_clients must be >= 1 and max_sessions >= max_clients",
                ));
            }
            if self.max_inflight == 0 || self.max_queued == 0 {
                issues.push(ConfigIssue::new(
                    "max_inflight",
                    "max_inflight and max_queued must be >= 1",
                ));
            }
            for (i, u) in self.user.iter().enumerate() {
                for (kind, list) in [("read", &u.read), ("write", &u.write)] {
                    for (j, f) in list.iter().enumerate() {
                        if Pattern::new(f).is_err() {
                            issues.push(ConfigIssue::new(
                                format!("user[{i}].{kind}[{j}]"),
                                format!("`{f}` is not a topic filter"),
                            ));
                        }
                    }
                }
            }
        }
        issues
    }

    /// What this adapter binds.
    pub fn listen_addrs(&self) -> Vec<(&'static str, SocketAddr)> {
        match (&self.listen, &self.url) {
            (Some(a), None) => vec![("tcp", *a)],
            _ => Vec::new(),
        }
    }
}

/// The QoS of a `u8`, clamped to 2.
pub(crate) fn qos_of(n: u8) -> Qos {
    Qos::from_u8(n.min(2)).unwrap_or(Qos::AtMostOnce)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        let u = BrokerUrl::parse("mqtts://us%40er:p:w@broker.example.com").unwrap();
        assert_eq!(
            (u.tls, u.host.as_str(), u.port, u.username.as_deref()),
            (true, "broker.example.com", 8883, Some("us@er"))
        );
        assert_eq!(u.password.unwrap().expose(), "p:w");
        let u = BrokerUrl::parse("mqtt://[::1]:1884/").unwrap();
        assert_eq!((u.host.as_str(), u.port, u.tls), ("::1", 1884, false));
        assert_eq!(BrokerUrl::parse("mqtt://h").unwrap().port, 1883);
        for bad in [
            "http://h",
            "mqtt://",
            "mqtt://h:0",
            "mqtt://h:x",
            "mqtt://h/t",
            "mqtt://[::1",
        ] {
            assert!(BrokerUrl::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn validation() {
        let c: Config = toml::from_str(r#"listen = "127.0.0.1:1883""#).unwrap();
        assert!(c.validate().is_empty());
        assert_eq!(c.listen_addrs().len(), 1);
        let c: Config = toml::from_str(
            r#"url = "mqtt://h"
            version = 3
            tls_cert = "x""#,
        )
        .unwrap();
        let keys: Vec<String> = c.validate().into_iter().map(|i| i.key).collect();
        assert_eq!(keys, ["version", "tls_cert"]);
        // The broker's listener: both files or neither, and they must load.
        let keys = |toml: &str| -> Vec<(String, String)> {
            toml::from_str::<Config>(toml)
                .unwrap()
                .validate()
                .into_iter()
                .map(|i| (i.key, i.message))
                .collect()
        };
        let half = keys("listen = \"127.0.0.1:0\"\ntls_cert = \"c.pem\"");
        assert_eq!(half, [("tls_key".into(), "tls_cert needs tls_key".into())]);
        let missing = keys(
            "listen = \"127.0.0.1:0\"\ntls_cert = \"/nonexistent/c.pem\"\ntls_key = \"/nonexistent/k.pem\"",
        );
        assert!(
            missing[0].0 == "tls_cert" && missing[0].1.contains("cannot read /nonexistent/c.pem"),
            "{missing:?}"
        );
        assert!(toml::from_str::<Config>("bogus = 1").is_err());
        let c: Config = toml::from_str(
            r#"listen = "127.0.0.1:0"
            [[user]]
            username = "u"
            password = "p"
            read = ["a/#", "b/#/c"]"#,
        )
        .unwrap();
        assert_eq!(c.validate()[0].key, "user[0].read[1]");
        assert!(!format!("{c:?}").contains("\"p\""));
    }
}
