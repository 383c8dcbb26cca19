//! The WebSocket adapter (`ws` kind): the JSON protocol of [`ops`] at path
//! `/ws`, on its own listener or sharing the HTTP adapter's (see
//! [`Listeners`]). Tokens and ACLs are the HTTP adapter's
//! (`?token=` or `Authorization: Bearer`).

pub mod ops;

mod conn;
mod hub;

use std::net::SocketAddr;
use std::sync::Arc;

use http::{Request, Response, StatusCode};
use hyper::body::Incoming;
use serde::Deserialize;
use switchboard_model::units::{ByteSize, ConfigIssue, DEFAULT_MAX_PAYLOAD, HumanDuration};
use switchboard_model::{Adapter, AdapterContext, AdapterError, BoxFuture, Counter, Running};

use crate::acl::{Acl, TokenConfig, presented_token};
use crate::listener::{Listeners, Mount, ServerLimits};
use crate::service::{Body, full};
use crate::upgrades::Upgrades;

use hub::{Hub, HubCounters};

/// `[adapter.ws]`: the WebSocket adapter's configuration.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WsConfig {
    /// Where to listen; equal to an HTTP adapter's `listen`, both share it.
    pub listen: SocketAddr,
    /// Largest message (frame) accepted from a client.
    pub max_payload: ByteSize,
    /// Most clients at once (further upgrades get 503).
    pub max_clients: usize,
    /// Most subscriptions per client.
    pub max_subscriptions: usize,
    /// Messages queued per client before the oldest QoS 0 ones are dropped.
    pub client_queue: usize,
    /// A client whose queue stays full this long is closed with 1008.
    pub slow_timeout: HumanDuration,
    /// Interval of server pings.
    pub ping_interval: HumanDuration,
    /// A client silent this long (no frame, no pong) is closed.
    pub idle_timeout: HumanDuration,
    /// Connection limit of the listener when this adapter binds it.
    pub max_connections: usize,
    /// Access tokens; the bridge copies the HTTP adapter's when unset.
    pub token: Vec<TokenConfig>,
    /// PEM certificate chain, when this adapter binds its own listener (WSS).
    pub tls_cert: Option<std::path::PathBuf>,
    /// PEM private key for `tls_cert`.
    pub tls_key: Option<std::path::PathBuf>,
}

impl Default for WsConfig {
    fn default() -> Self {
        WsConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            max_payload: DEFAULT_MAX_PAYLOAD,
            max_clients: 10_000,
            max_subscriptions: 100,
            client_queue: 1024,
            slow_timeout: HumanDuration(std::time::Duration::from_secs(5)),
            ping_interval: HumanDuration(std::time::Duration::from_secs(20)),
            idle_timeout: HumanDuration(std::time::Duration::from_secs(60)),
            max_connections: 10_240,
            token: Vec::new(),
            tls_cert: None,
            tls_key: None,
        }
    }
}

impl WsConfig {
    /// Checks what serde cannot.
    pub fn validate(&self) -> Vec<ConfigIssue> {
        let mut v = Vec::new();
        for (k, n) in [
            ("max_clients", self.max_clients),
            ("max_subscriptions", self.max_subscriptions),
            ("client_queue", self.client_queue),
            ("max_connections", self.max_connections),
        ] {
            if n == 0 {
                v.push(ConfigIssue::new(k, "must be at least 1"));
            }
        }
        for (k, d) in [
            ("ping_interval", self.ping_interval),
            ("idle_timeout", self.idle_timeout),
            ("slow_timeout", self.slow_timeout),
        ] {
            if d.0.is_zero() {
                v.push(ConfigIssue::new(k, "must be more than 0s"));
            }
        }
        v.extend(Acl::compile(&self.token).1);
        v.extend(crate::tls::validate(
            self.tls_cert.as_deref(),
            self.tls_key.as_deref(),
        ));
        v
    }

    /// The sockets this adapter binds (or shares).
    pub fn listen_addrs(&self) -> Vec<(&'static str, SocketAddr)> {
        vec![("tcp", self.listen)]
    }
}

/// The WebSocket adapter.
#[derive(Debug)]
pub struct WsAdapter {
    config: WsConfig,
    listeners: Listeners,
}

impl WsAdapter {
    /// An adapter with `config` and a listener of its own.
    pub fn new(config: WsConfig) -> Self {
        WsAdapter {
            config,
            listeners: Listeners::default(),
        }
    }

    /// Shares listeners with the other adapters of the bridge.
    pub fn with_listeners(mut self, listeners: Listeners) -> Self {
        self.listeners = listeners;
        self
    }
}

/// State shared by the mount and every connection.
pub(crate) struct WsShared {
    pub(crate) ctx: AdapterContext,
    pub(crate) config: WsConfig,
    pub(crate) acl: Acl,
    pub(crate) hub: Hub,
    pub(crate) refused: Counter,
    pub(crate) protocol_errors: Counter,
    pub(crate) subs_refused: Counter,
    /// Every upgraded connection's task: the adapter's task waits for them
    /// at shutdown so each client gets its 1001 close frame before the
    /// process exits.
    pub(crate) conns: Upgrades,
}

struct WsMount(Arc<WsShared>);

impl Mount for WsMount {
    fn handle(
        &self,
        req: Request<Incoming>,
        peer: SocketAddr,
    ) -> BoxFuture<'static, Response<Body>> {
        let shared = self.0.clone();
        Box::pin(async move { upgrade(shared, req, peer) })
    }
}

fn json_error(status: StatusCode, msg: &str) -> Response<Body> {
    full(
        status,
        "application/json",
        serde_json::json!({ "error": msg }).to_string(),
    )
}

fn upgrade(shared: Arc<WsShared>, mut req: Request<Incoming>, peer: SocketAddr) -> Response<Body> {
    let Some(key) = crate::bytestream::upgrade_key(&req) else {
        shared.protocol_errors.inc();
        return crate::bytestream::upgrade_required();
    };
    let token = presented_token(req.headers(), req.uri().query());
    let access = match shared.acl.authenticate(token.as_deref()) {
        Ok(a) => a,
        Err(_) => {
            shared.refused.inc();
            return json_error(StatusCode::UNAUTHORIZED, "a valid token is required");
        }
    };
    if shared.hub.len() >= shared.config.max_clients {
        shared.refused.inc();
        return json_error(
            StatusCode::SERVICE_UNAVAILABLE,
            "too many WebSocket clients",
        );
    }
    let on_upgrade = hyper::upgrade::on(&mut req);
    let conns = shared.conns.clone();
    conns.spawn(async move {
        match on_upgrade.await {
            Ok(upgraded) => conn::run(shared, upgraded, access, peer).await,
            Err(e) => tracing::debug!(peer = %peer, error = %e, "WebSocket upgrade failed."),
        }
    });
    crate::bytestream::switching_protocols(&key)
}

impl Adapter for WsAdapter {
    fn kind(&self) -> &str {
        "ws"
    }

    fn start(
        self: Box<Self>,
        ctx: AdapterContext,
    ) -> BoxFuture<'static, Result<Running, AdapterError>> {
        Box::pin(async move {
            let (acl, _) = Acl::compile(&self.config.token);
            if acl.is_open() {
                tracing::warn!(adapter = %ctx.name, "No token configured: WebSocket access is open to anyone who can connect.");
            }
            let counters = HubCounters {
                dropped: ctx.metrics.counter(
                    "ws_dropped_total",
                    "QoS 0 messages dropped because a WebSocket client fell behind.",
                ),
                slow_closed: ctx.metrics.counter(
                    "ws_slow_closed_total",
                    "WebSocket clients closed with 1008 for staying behind.",
                ),
            };
            let limits = ServerLimits {
                max_connections: self.config.max_connections,
                refused: ctx.metrics.counter(
                    "ws_connections_refused_total",
                    "Connections refused at the listener's limit.",
                ),
                tls: tls_acceptor(&self.config.tls_cert, &self.config.tls_key)?,
            };
            let shared = Arc::new(WsShared {
                hub: Hub::new(
                    ctx.name.clone(),
                    self.config.client_queue,
                    self.config.slow_timeout.0,
                    counters,
                ),
                refused: ctx.metrics.counter(
                    "ws_upgrades_refused_total",
                    "WebSocket upgrades refused (401, 503).",
                ),
                protocol_errors: ctx.metrics.counter(
                    "ws_protocol_errors_total",
                    "Malformed WebSocket requests and frames.",
                ),
                subs_refused: ctx.metrics.counter(
                    "ws_subscriptions_refused_total",
                    "WebSocket subscriptions refused (max_subscriptions, access control).",
                ),
                acl,
                config: self.config,
                ctx,
                conns: Upgrades::default(),
            });
            let attached = self
                .listeners
                .attach(
                    shared.config.listen,
                    "/ws",
                    Arc::new(WsMount(shared.clone())),
                    limits,
                    shared.ctx.shutdown.clone(),
                )
                .await?;
            shared.ctx.health.up();
            Ok(attached.into_running("ws", deliver_then_close(shared.clone())))
        })
    }
}

/// Delivers until the router closes the queue, then (once shutdown is
/// signalled) waits a bounded time for every connection to send its close
/// frame: without this the process could exit first and clients would see
/// a dropped connection (1006) instead of 1001.
async fn deliver_then_close(shared: Arc<WsShared>) {
    deliver(shared.clone()).await;
    shared.ctx.shutdown.cancelled().await;
    shared.conns.drain("WebSocket").await;
}

async fn deliver(shared: Arc<WsShared>) {
    while let Some(d) = shared.ctx.deliveries.recv().await {
        shared.hub.dispatch(&d.message);
        shared.ctx.metrics.inc_sent();
        d.ack.done();
    }
}

pub(crate) fn tls_acceptor(
    cert: &Option<std::path::PathBuf>,
    key: &Option<std::path::PathBuf>,
) -> Result<Option<tokio_rustls::TlsAcceptor>, AdapterError> {
    match (cert, key) {
        (Some(c), Some(k)) => crate::tls::acceptor(c, k)
            .map(Some)
            .map_err(|e| AdapterError::Config(e.to_string())),
        _ => Ok(None),
    }
}
