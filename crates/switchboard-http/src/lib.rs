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

mod config;
pub mod mapping;
mod server;
mod service;
mod sse;

use std::sync::Arc;
use std::sync::atomic::AtomicUsize;

use switchboard_model::{Adapter, AdapterContext, AdapterError, BoxFuture, Endpoint, Running};
use tokio::net::TcpListener;
use tokio::sync::broadcast;

pub use config::Config;

use service::Shared;

/// The page served at `GET /` until the dashboard exists.
const INDEX_HTML: &str = include_str!("index.html");

/// The HTTP adapter.
#[derive(Debug)]
pub struct HttpAdapter {
    config: Config,
}

impl HttpAdapter {
    /// An adapter with `config`.
    pub fn new(config: Config) -> Self {
        HttpAdapter { config }
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
            let listener = TcpListener::bind(self.config.listen)
                .await
                .map_err(|source| AdapterError::Bind {
                    addr: self.config.listen.to_string(),
                    source,
                })?;
            let addr = listener.local_addr()?;
            let (events, _) = broadcast::channel(self.config.sse_buffer.max(1));
            let shared = Arc::new(Shared {
                sse_drops: ctx.metrics.counter(
                    "http_sse_dropped_total",
                    "Messages SSE clients missed because they fell behind.",
                ),
                refused_connections: ctx.metrics.counter(
                    "http_connections_refused_total",
                    "Connections closed at once because max_connections was reached.",
                ),
                bad_requests: ctx.metrics.counter(
                    "http_client_errors_total",
                    "Requests answered with a 4xx status.",
                ),
                ctx,
                config: self.config,
                events,
                connections: AtomicUsize::new(0),
            });
            shared.ctx.health.up();
            let task = Box::pin(async move {
                let deliver = tokio::spawn(server::deliver(shared.clone()));
                server::serve(listener, shared.clone()).await;
                let _ = deliver.await;
                Ok(())
            });
            Ok(Running {
                endpoints: vec![Endpoint {
                    service: "http".into(),
                    addr,
                }],
                task,
            })
        })
    }
}
