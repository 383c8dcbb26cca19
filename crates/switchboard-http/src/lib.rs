//! switchboard's HTTP adapter (hyper 1.x).
//!
//! | request | effect |
//! |---|---|
//! | `PUT` or `POST /topics/TOPIC` | publish the body as `http:TOPIC` (`Content-Type` sets the format; PUT retains, POST does not, `?retain=` and `?qos=` override); 204 |
//! | `GET /topics/TOPIC` | the last value at `http:TOPIC` with its Content-Type; 404 if none |
//! | `GET /events?topic=PATTERN` | Server-Sent Events of messages at matching `http:` topics (several `topic` parameters allowed; default `#`) |
//! | `GET /api/topics`, `/api/routes`, `/api/adapters` | JSON introspection |
//! | `GET /metrics` | Prometheus text exposition |
//! | `GET /healthz` | 200 when every adapter is up, 503 with the reasons otherwise |
//!
//! Topic levels in paths are percent-decoded; `+` in a query is a literal `+`
//! (MQTT's wildcard), so `?topic=sensors/+/t` works as typed, and `#` must be
//! sent as `%23`. Errors are JSON `{"error": "..."}` with 400 (bad topic or
//! pattern, invalid JSON/text body), 404, 405, 413 (body over `max_payload`,
//! checked against `Content-Length` and while reading, never after buffering
//! more), 415 (a `Content-Type` that is not a media type) and 503 (shutting
//! down).
//!
//! Each SSE event is `event: message` with a JSON `data:` envelope:
//! `{"topic","address","payload","format","qos","retain","origin","ts"}` where
//! `payload` is the JSON value for JSON payloads, a string for text, and a
//! base64 string (with `"encoding":"base64"`) otherwise.

mod acl;
mod bytestream;
mod config;
mod listener;
pub mod mapping;
mod server;
mod service;
mod sse;
pub mod tls;
mod upgrades;
pub mod ws;

use std::sync::Arc;

use switchboard_model::{Adapter, AdapterContext, AdapterError, BoxFuture, Running};
use tokio::sync::broadcast;

pub use acl::{Access, Acl, Denied, ReadFilter, TokenConfig, presented_token};
pub use bytestream::{ByteStream, ByteStreamMount, StreamHandler};
pub use config::Config;
pub use listener::{Attached, Listeners, Mount, ServerLimits};
pub use ws::{WsAdapter, WsConfig};

use service::{HttpMount, Shared};

/// The page served at `GET /` until the dashboard exists.
const INDEX_HTML: &str = include_str!("index.html");

/// The HTTP adapter.
#[derive(Debug)]
pub struct HttpAdapter {
    config: Config,
    listeners: Listeners,
}

impl HttpAdapter {
    /// An adapter with `config` and a listener of its own.
    pub fn new(config: Config) -> Self {
        HttpAdapter {
            config,
            listeners: Listeners::default(),
        }
    }

    /// Shares listeners with other adapters of the same bridge (the
    /// WebSocket adapter, MQTT over WebSocket) so that equal `listen`
    /// addresses are served by one socket.
    pub fn with_listeners(mut self, listeners: Listeners) -> Self {
        self.listeners = listeners;
        self
    }
}

impl Adapter for HttpAdapter {
    fn kind(&self) -> &str {
        "http"
    }

    fn start(
        self: Box<Self>,
        ctx: AdapterContext,
    ) -> BoxFuture<'static, Result<Running, AdapterError>> {
        Box::pin(async move {
            let (events, _) = broadcast::channel(self.config.sse_buffer.max(1));
            let limits = ServerLimits {
                max_connections: self.config.max_connections,
                refused: ctx.metrics.counter(
                    "http_connections_refused_total",
                    "Connections closed at once because max_connections was reached.",
                ),
                tls: ws::tls_acceptor(&self.config.tls_cert, &self.config.tls_key)?,
            };
            let (acl, _) = Acl::compile(&self.config.token);
            if acl.is_open() {
                tracing::warn!(adapter = %ctx.name, "No [[adapter.http.token]] configured: HTTP access is open to anyone who can connect.");
            }
            let shared = Arc::new(Shared {
                acl,
                sse_drops: ctx.metrics.counter(
                    "http_sse_dropped_total",
                    "Messages SSE clients missed because they fell behind.",
                ),
                bad_requests: ctx.metrics.counter(
                    "http_client_errors_total",
                    "Requests answered with a 4xx status.",
                ),
                ctx,
                config: self.config,
                events,
            });
            let attached = self
                .listeners
                .attach(
                    shared.config.listen,
                    "/",
                    Arc::new(HttpMount(shared.clone())),
                    limits,
                    shared.ctx.shutdown.clone(),
                )
                .await?;
            shared.ctx.health.up();
            Ok(attached.into_running("http", server::deliver(shared.clone())))
        })
    }
}

/// Bodies of the cargo-fuzz targets in `fuzz/`, kept here so that a regular
/// test replays the checked-in corpus without the fuzzer.
#[doc(hidden)]
pub mod fuzzing {
    /// The WebSocket op parser on arbitrary text: never panics, and every
    /// reply it leads to is valid JSON.
    pub fn ws_ops(data: &[u8]) {
        let Ok(text) = std::str::from_utf8(data) else {
            return;
        };
        let reply = match crate::ws::ops::parse(text) {
            Ok(req) => {
                if let crate::ws::ops::Op::Pub {
                    topic,
                    payload: Some((p, f)),
                    ..
                } = &req.op
                {
                    let m = switchboard_model::Message::new("ws", topic.clone(), p.clone())
                        .with_format(f.clone());
                    let frame = crate::ws::ops::msg("ws", &m, false);
                    assert!(serde_json::from_str::<serde_json::Value>(&frame).is_ok());
                }
                crate::ws::ops::ok(req.reference.as_ref())
            }
            Err(e) => crate::ws::ops::error(&e.reason, e.reference.as_ref()),
        };
        assert!(serde_json::from_str::<serde_json::Value>(&reply).is_ok());
    }

    /// Request paths and query strings: `/topics/...` decoding and `?topic=`
    /// patterns, and bearer tokens from headers/queries. Never panics.
    pub fn http_paths(data: &[u8]) {
        let Ok(text) = std::str::from_utf8(data) else {
            return;
        };
        let (path, query) = text.split_once('?').unwrap_or((text, ""));
        if let Ok(t) = crate::mapping::path_to_topic(path) {
            assert!(!t.as_str().is_empty());
        }
        let _ = crate::mapping::query_patterns(Some(query));
        let _ = crate::acl::presented_token(&http::HeaderMap::new(), Some(query));
    }
}
