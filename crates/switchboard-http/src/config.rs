//! `[adapter.http]`: the HTTP adapter's configuration.

use std::net::SocketAddr;

use serde::Deserialize;

use crate::acl::{Acl, TokenConfig};
use switchboard_model::units::{ByteSize, ConfigIssue, DEFAULT_MAX_PAYLOAD, HumanDuration};

/// The HTTP adapter's configuration.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Where to listen (loopback by default).
    #[serde(default = "default_listen")]
    pub listen: SocketAddr,
    /// Largest request body accepted (413 beyond it).
    #[serde(default = "default_max_payload")]
    pub max_payload: ByteSize,
    /// Most concurrent connections; further ones are closed at once (counted).
    #[serde(default = "default_max_connections")]
    pub max_connections: usize,
    /// Messages an SSE client may fall behind before it misses some (counted).
    #[serde(default = "default_sse_buffer")]
    pub sse_buffer: usize,
    /// Interval of SSE keep-alive comments.
    #[serde(default = "default_sse_keep_alive")]
    pub sse_keep_alive: HumanDuration,
    /// Access tokens (`[[adapter.http.token]]`); none means open.
    #[serde(default)]
    pub token: Vec<TokenConfig>,
    /// PEM certificate chain: serve HTTPS (and WSS) on this listener.
    pub tls_cert: Option<std::path::PathBuf>,
    /// PEM private key for `tls_cert`.
    pub tls_key: Option<std::path::PathBuf>,
}

fn default_listen() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 8080))
}
fn default_max_payload() -> ByteSize {
    DEFAULT_MAX_PAYLOAD
}
fn default_max_connections() -> usize {
    1024
}
fn default_sse_buffer() -> usize {
    1024
}
fn default_sse_keep_alive() -> HumanDuration {
    HumanDuration(std::time::Duration::from_secs(15))
}

impl Default for Config {
    fn default() -> Self {
        Config {
            listen: default_listen(),
            max_payload: default_max_payload(),
            max_connections: default_max_connections(),
            sse_buffer: default_sse_buffer(),
            sse_keep_alive: default_sse_keep_alive(),
            token: Vec::new(),
            tls_cert: None,
            tls_key: None,
        }
    }
}

impl Config {
    /// Checks what serde cannot.
    pub fn validate(&self) -> Vec<ConfigIssue> {
        let mut v = Vec::new();
        if self.max_connections == 0 {
            v.push(ConfigIssue::new("max_connections", "must be at least 1"));
        }
        if self.sse_buffer == 0 {
            v.push(ConfigIssue::new("sse_buffer", "must be at least 1"));
        }
        if self.sse_keep_alive.0.is_zero() {
            v.push(ConfigIssue::new("sse_keep_alive", "must be more than 0s"));
        }
        v.extend(Acl::compile(&self.token).1);
        v.extend(crate::tls::validate(
            self.tls_cert.as_deref(),
            self.tls_key.as_deref(),
        ));
        v
    }

    /// The sockets this adapter binds.
    pub fn listen_addrs(&self) -> Vec<(&'static str, SocketAddr)> {
        vec![("tcp", self.listen)]
    }
}
