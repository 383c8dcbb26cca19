//! `[adapter.http]`: the HTTP adapter's configuration.

use std::net::SocketAddr;

use serde::Deserialize;

use crate::acl::{Acl, TokenConfig};
use switchboard_model::units::{ByteSize, ConfigIssue, DEFAULT_MAX_PAYLOAD, HumanDuration};

/// The HTTP adapter's configuration.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Where to listen (loopback by default).
    pub listen: SocketAddr,
    /// Largest request body accepted (413 beyond it).
    pub max_payload: ByteSize,
    /// Most concurrent connections; further ones are closed at once (counted).
    pub max_connections: usize,
    /// Messages an SSE client may fall behind before it misses some (counted).
    pub sse_buffer: usize,
    /// Interval of SSE keep-alive comments.
    pub sse_keep_alive: HumanDuration,
    /// Access tokens (`[[adapter.http.token]]`); none means open.
    pub token: Vec<TokenConfig>,
    /// PEM certificate chain: serve HTTPS (and WSS) on this listener.
    pub tls_cert: Option<std::path::PathBuf>,
    /// PEM private key for `tls_cert`.
    pub tls_key: Option<std::path::PathBuf>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            max_payload: DEFAULT_MAX_PAYLOAD,
            max_connections: 1024,
            sse_buffer: 1024,
            sse_keep_alive: HumanDuration(std::time::Duration::from_secs(15)),
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
