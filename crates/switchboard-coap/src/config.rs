//! The `[adapter.coap]` table (SPEC section 3): listener, limits and mounts.

use std::net::{SocketAddr, ToSocketAddrs};
use std::time::Duration;

use serde::Deserialize;
use switchboard_model::Topic;
use switchboard_model::units::{ByteSize, ConfigIssue, DEFAULT_MAX_PAYLOAD, HumanDuration};

/// Configuration of one CoAP adapter instance (without the `kind` key).
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// UDP address the server binds (default `127.0.0.1:5683`).
    #[serde(default = "default_listen")]
    pub listen: String,
    /// Largest request body (single datagram or Block1 reassembly) accepted;
    /// larger ones get 4.13 with Size1 (default 1 MiB).
    #[serde(default = "default_max_payload")]
    pub max_payload: ByteSize,
    /// Block size for Block2 responses and Block1 PUTs to devices: 16..1024
    /// bytes, a power of two (default 1024). A client's smaller SZX wins.
    #[serde(default = "default_block_size")]
    pub block_size: ByteSize,
    /// Observers of one resource (default 64); more get a plain response.
    #[serde(default = "default_max_observers_per_resource")]
    pub max_observers_per_resource: usize,
    /// Observers in total (default 1024).
    #[serde(default = "default_max_observers")]
    pub max_observers: usize,
    /// Message ids remembered for deduplication (default 16384; each entry is
    /// kept at most EXCHANGE_LIFETIME, 247 s).
    #[serde(default = "default_dedup_capacity")]
    pub dedup_capacity: usize,
    /// Concurrent Block1 uploads being reassembled (default 64).
    #[serde(default = "default_max_uploads")]
    pub max_uploads: usize,
    /// Max-Age of GET responses and notifications (default 60 s).
    #[serde(default = "default_max_age")]
    pub max_age: HumanDuration,
    /// RFC 7252 ACK_TIMEOUT (default 2 s).
    #[serde(default = "default_ack_timeout")]
    pub ack_timeout: HumanDuration,
    /// RFC 7252 MAX_RETRANSMIT (default 4).
    #[serde(default = "default_max_retransmit")]
    pub max_retransmit: u32,
    /// Remote devices mounted under topic prefixes.
    #[serde(default)]
    pub mount: Vec<Mount>,
}

/// `[[adapter.coap.mount]]`: a remote CoAP device under a topic prefix.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Mount {
    /// Topic prefix: `lamp` maps `coap:lamp/PATH` to `URL/PATH`.
    pub prefix: String,
    /// The device, `coap://HOST:PORT` (port 5683 when omitted), optionally
    /// with a base path.
    pub url: String,
    /// Resource paths (relative to the URL) observed on the device.
    #[serde(default)]
    pub observe: Vec<String>,
}

fn default_listen() -> String {
    "127.0.0.1:5683".into()
}
fn default_max_payload() -> ByteSize {
    DEFAULT_MAX_PAYLOAD
}
fn default_block_size() -> ByteSize {
    ByteSize(1024)
}
fn default_max_observers_per_resource() -> usize {
    64
}
fn default_max_observers() -> usize {
    1024
}
fn default_dedup_capacity() -> usize {
    16384
}
fn default_max_uploads() -> usize {
    64
}
fn default_max_age() -> HumanDuration {
    HumanDuration(Duration::from_secs(60))
}
fn default_ack_timeout() -> HumanDuration {
    HumanDuration(Duration::from_secs(2))
}
fn default_max_retransmit() -> u32 {
    4
}

impl Default for Config {
    fn default() -> Self {
        Config {
            listen: default_listen(),
            max_payload: default_max_payload(),
            block_size: default_block_size(),
            max_observers_per_resource: default_max_observers_per_resource(),
            max_observers: default_max_observers(),
            dedup_capacity: default_dedup_capacity(),
            max_uploads: default_max_uploads(),
            max_age: default_max_age(),
            ack_timeout: default_ack_timeout(),
            max_retransmit: default_max_retransmit(),
            mount: Vec::new(),
        }
    }
}

/// A parsed `coap://host:port/base` URL.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct DeviceUrl {
    pub(crate) addr: SocketAddr,
    pub(crate) base: Vec<String>,
}

pub(crate) fn parse_url(url: &str) -> Result<DeviceUrl, String> {
    let rest = url
        .strip_prefix("coap://")
        .ok_or_else(|| format!("`{url}` is not a coap:// URL"))?;
    let (hostport, path) = rest.split_once('/').unwrap_or((rest, ""));
    let hostport = if hostport.contains(':')
        && !hostport.starts_with('[')
        && hostport.matches(':').count() == 1
        || hostport.starts_with('[') && hostport.contains("]:")
    {
        hostport.to_owned()
    } else {
        format!("{hostport}:5683")
    };
    let addr = hostport
        .to_socket_addrs()
        .map_err(|e| format!("cannot resolve `{hostport}`: {e}"))?
        .next()
        .ok_or_else(|| format!("`{hostport}` resolves to nothing"))?;
    let base = path
        .split('/')
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect();
    Ok(DeviceUrl { addr, base })
}

impl Config {
    /// Checks serde cannot do: addresses, block size, mounts.
    pub fn validate(&self) -> Vec<ConfigIssue> {
        let mut issues = Vec::new();
        if self.listen.parse::<SocketAddr>().is_err() {
            issues.push(ConfigIssue::new(
                "listen",
                format!("`{}` is not an IP:port address", self.listen),
            ));
        }
        let bs = self.block_size.0;
        if !(16..=1024).contains(&bs) || !bs.is_power_of_two() {
            issues.push(ConfigIssue::new(
                "block_size",
                "must be a power of two from 16 to 1024 bytes",
            ));
        }
        if self.max_payload.0 == 0 {
            issues.push(ConfigIssue::new("max_payload", "must be positive"));
        }
        if self.max_retransmit > 20 {
            issues.push(ConfigIssue::new("max_retransmit", "at most 20"));
        }
        if self.ack_timeout.0 < Duration::from_millis(10)
            || self.ack_timeout.0 > Duration::from_secs(60)
        {
            issues.push(ConfigIssue::new(
                "ack_timeout",
                "must be between 10ms and 60s",
            ));
        }
        for (i, m) in self.mount.iter().enumerate() {
            if Topic::new(&m.prefix).is_err()
                || m.prefix.starts_with('/')
                || m.prefix.ends_with('/')
            {
                issues.push(ConfigIssue::new(
                    format!("mount[{i}].prefix"),
                    format!("`{}` is not a topic prefix", m.prefix),
                ));
            }
            if let Err(e) = parse_url(&m.url) {
                issues.push(ConfigIssue::new(format!("mount[{i}].url"), e));
            }
            for (j, p) in m.observe.iter().enumerate() {
                if p.is_empty() || Topic::new(p).is_err() {
                    issues.push(ConfigIssue::new(
                        format!("mount[{i}].observe[{j}]"),
                        format!("`{p}` is not a resource path"),
                    ));
                }
            }
        }
        issues
    }

    /// What the adapter binds.
    pub fn listen_addrs(&self) -> Vec<(&'static str, SocketAddr)> {
        self.listen
            .parse()
            .map(|a| vec![("udp", a)])
            .unwrap_or_default()
    }

    /// The block size exponent (SZX) for the configured block size.
    pub(crate) fn szx(&self) -> u8 {
        let bs = self.block_size.0.clamp(16, 1024);
        (bs.trailing_zeros().saturating_sub(4)).min(6) as u8
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn parses_spec_example() {
        let c: Config = toml::from_str(
            r#"listen = "127.0.0.1:5683"
               max_payload = "64KiB"
               [[mount]]
               prefix = "lamp"
               url = "coap://127.0.0.1:5684"
               observe = ["state", "temp"]"#,
        )
        .unwrap();
        assert!(c.validate().is_empty(), "{:?}", c.validate());
        assert_eq!(c.max_payload.0, 65536);
        assert_eq!(c.szx(), 6);
        assert_eq!(c.listen_addrs().len(), 1);
        let u = parse_url(&c.mount[0].url).unwrap();
        assert_eq!(u.addr.port(), 5684);
        assert_eq!(
            parse_url("coap://127.0.0.1/a/b").unwrap().base,
            vec!["a", "b"]
        );
    }

    #[test]
    fn rejects_bad_values() {
        let c: Config = toml::from_str(
            r#"listen = "nope"
               block_size = 1000
               [[mount]]
               prefix = "a/+"
               url = "http://x"
               observe = [""]"#,
        )
        .unwrap();
        assert_eq!(c.validate().len(), 5);
        assert!(toml::from_str::<Config>("bogus = 1").is_err());
    }
}
