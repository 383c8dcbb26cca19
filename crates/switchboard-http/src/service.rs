//! Request handling: REST topics, SSE, the JSON API, metrics and health.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use http::{HeaderValue, Method, Request, Response, StatusCode, header};
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full, Limited};
use serde_json::json;
use switchboard_model::{AdapterContext, Counter, Format, Message, Qos};
use tokio::sync::broadcast;

use crate::acl::{Access, Acl, Denied, ReadFilter, presented_token};
use crate::config::Config;
use crate::mapping::{path_to_topic, query_patterns, query_values};
use crate::sse;

/// The response body type.
pub(crate) type Body = BoxBody<Bytes, Infallible>;

/// State shared by every connection.
pub(crate) struct Shared {
    pub(crate) ctx: AdapterContext,
    pub(crate) config: Config,
    pub(crate) acl: Acl,
    /// Local hub: every message at an `http:` address (published here or
    /// delivered by the router), for SSE streams.
    pub(crate) events: broadcast::Sender<Arc<crate::sse::Event>>,
    pub(crate) sse_drops: Counter,
    pub(crate) bad_requests: Counter,
}

pub(crate) fn full(
    status: StatusCode,
    content_type: &str,
    body: impl Into<Bytes>,
) -> Response<Body> {
    let mut r = Response::new(Full::new(body.into()).boxed());
    *r.status_mut() = status;
    if let Ok(v) = HeaderValue::from_str(content_type) {
        r.headers_mut().insert(header::CONTENT_TYPE, v);
    }
    r
}

fn json_response(status: StatusCode, v: &serde_json::Value) -> Response<Body> {
    full(status, "application/json", v.to_string())
}

fn error(shared: &Shared, status: StatusCode, msg: impl Into<String>) -> Response<Body> {
    if status.is_client_error() {
        shared.bad_requests.inc();
        shared.ctx.metrics.inc_errors();
    }
    json_response(status, &json!({ "error": msg.into() }))
}

fn no_content() -> Response<Body> {
    full(StatusCode::NO_CONTENT, "text/plain", Bytes::new())
}

/// Handles one request.
pub(crate) async fn handle<B>(
    shared: Arc<Shared>,
    peer: SocketAddr,
    req: Request<B>,
) -> Result<Response<Body>, Infallible>
where
    B: hyper::body::Body<Data = Bytes> + Send + 'static,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let path = req.uri().path().to_owned();
    let method = req.method().clone();
    let open_path = matches!(path.as_str(), "/" | "/healthz" | "/favicon.ico");
    let access = if open_path {
        Access::Open
    } else {
        let token = presented_token(req.headers(), req.uri().query());
        match shared.acl.authenticate(token.as_deref()) {
            Ok(a) => a,
            Err(d) => return Ok(denied(&shared, d)),
        }
    };
    let resp = if let Some(rest) = path.strip_prefix("/topics/") {
        match method {
            Method::PUT | Method::POST => publish(&shared, access, peer, rest, req).await,
            Method::GET | Method::HEAD => get_topic(&shared, access, rest),
            _ => method_not_allowed(&shared, "GET, HEAD, PUT, POST"),
        }
    } else {
        match (method, path.as_str()) {
            (Method::GET, "/events") => events(&shared, access, req.uri().query()),
            (Method::GET, "/api/topics") => {
                let topics: Vec<_> = shared
                    .ctx
                    .book
                    .topics()
                    .into_iter()
                    .filter(|t| {
                        access == Access::Open
                            || switchboard_model::Topic::new(&t.topic)
                                .is_ok_and(|topic| shared.acl.can_read(access, &topic).is_ok())
                    })
                    .collect();
                json_response(StatusCode::OK, &json!(topics))
            }
            (Method::GET, "/api/routes") => {
                json_response(StatusCode::OK, &json!(shared.ctx.bridge.routes()))
            }
            (Method::GET, "/api/adapters") => {
                json_response(StatusCode::OK, &json!(shared.ctx.bridge.adapters()))
            }
            (Method::GET, "/metrics") => full(
                StatusCode::OK,
                "text/plain; version=0.0.4; charset=utf-8",
                shared.ctx.bridge.metrics_text(),
            ),
            (Method::GET, "/healthz") => health(&shared),
            (Method::GET, "/") => full(
                StatusCode::OK,
                "text/html; charset=utf-8",
                crate::INDEX_HTML,
            ),
            (
                _,
                "/events" | "/api/topics" | "/api/routes" | "/api/adapters" | "/metrics"
                | "/healthz" | "/",
            ) => method_not_allowed(&shared, "GET"),
            _ => error(
                &shared,
                StatusCode::NOT_FOUND,
                format!("no resource at {path}"),
            ),
        }
    };
    Ok(resp)
}

pub(crate) fn denied(shared: &Shared, d: Denied) -> Response<Body> {
    match d {
        Denied::Unauthenticated => {
            let mut r = error(
                shared,
                StatusCode::UNAUTHORIZED,
                "a valid token is required",
            );
            r.headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
            r
        }
        Denied::Forbidden(m) => error(shared, StatusCode::FORBIDDEN, m),
    }
}

fn method_not_allowed(shared: &Shared, allow: &'static str) -> Response<Body> {
    let mut r = error(shared, StatusCode::METHOD_NOT_ALLOWED, "method not allowed");
    r.headers_mut()
        .insert(header::ALLOW, HeaderValue::from_static(allow));
    r
}

async fn publish<B>(
    shared: &Shared,
    access: Access,
    peer: SocketAddr,
    rest: &str,
    req: Request<B>,
) -> Response<Body>
where
    B: hyper::body::Body<Data = Bytes> + Send + 'static,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let topic = match path_to_topic(rest) {
        Ok(t) => t,
        Err(e) => return error(shared, StatusCode::BAD_REQUEST, format!("bad topic: {e}")),
    };
    if let Err(d) = shared.acl.can_write(access, &topic) {
        return denied(shared, d);
    }
    let max = shared.config.max_payload.as_usize();
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > max as u64) {
        return error(
            shared,
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("body exceeds max_payload ({max} bytes)"),
        );
    }
    let format = match req.headers().get(header::CONTENT_TYPE) {
        None => Format::Octets,
        Some(v) => match v.to_str() {
            Ok(s) if s.contains('/') => Format::from_mime(s),
            _ => {
                return error(
                    shared,
                    StatusCode::UNSUPPORTED_MEDIA_TYPE,
                    "Content-Type is not a media type",
                );
            }
        },
    };
    let query = req.uri().query().map(str::to_owned);
    let qos = match query_values(query.as_deref(), "qos").map(|v| v.last().cloned()) {
        Ok(None) => Qos::AtLeastOnce,
        Ok(Some(q)) => match q.parse::<u8>().ok().and_then(Qos::from_u8) {
            Some(q) => q,
            None => return error(shared, StatusCode::BAD_REQUEST, "qos must be 0, 1 or 2"),
        },
        Err(e) => return error(shared, StatusCode::BAD_REQUEST, e),
    };
    let retain = match query_values(query.as_deref(), "retain").map(|v| v.last().cloned()) {
        Ok(None) => *req.method() == Method::PUT,
        Ok(Some(r)) => match r.as_str() {
            "true" | "1" => true,
            "false" | "0" => false,
            _ => {
                return error(
                    shared,
                    StatusCode::BAD_REQUEST,
                    "retain must be true or false",
                );
            }
        },
        Err(e) => return error(shared, StatusCode::BAD_REQUEST, e),
    };
    let body = match Limited::new(req.into_body(), max).collect().await {
        Ok(b) => b.to_bytes(),
        Err(e) => {
            if e.downcast_ref::<http_body_util::LengthLimitError>()
                .is_some()
            {
                return error(
                    shared,
                    StatusCode::PAYLOAD_TOO_LARGE,
                    format!("body exceeds max_payload ({max} bytes)"),
                );
            }
            return error(
                shared,
                StatusCode::BAD_REQUEST,
                format!("cannot read body: {e}"),
            );
        }
    };
    if format == Format::Json && serde_json::from_slice::<serde::de::IgnoredAny>(&body).is_err() {
        return error(shared, StatusCode::BAD_REQUEST, "body is not valid JSON");
    }
    if format == Format::Text && std::str::from_utf8(&body).is_err() {
        return error(
            shared,
            StatusCode::BAD_REQUEST,
            "body is not valid UTF-8 text",
        );
    }
    let mut msg = Message::new(shared.ctx.name.clone(), topic, body);
    msg.format = format;
    msg.qos = qos;
    msg.retain = retain;
    msg.origin.peer = Some(Arc::from(peer.to_string()));
    // Local delivery first (SSE streams of this adapter), then the router.
    let _ = shared
        .events
        .send(crate::sse::Event::new(Arc::new(msg.clone())));
    match shared.ctx.ingress.publish(msg).await {
        Ok(()) => no_content(),
        Err(_) => error(
            shared,
            StatusCode::SERVICE_UNAVAILABLE,
            "the bridge is shutting down",
        ),
    }
}

fn get_topic(shared: &Shared, access: Access, rest: &str) -> Response<Body> {
    let topic = match path_to_topic(rest) {
        Ok(t) => t,
        Err(e) => return error(shared, StatusCode::BAD_REQUEST, format!("bad topic: {e}")),
    };
    if let Err(d) = shared.acl.can_read(access, &topic) {
        return denied(shared, d);
    }
    match shared.ctx.book.get(&shared.ctx.name, &topic) {
        None => error(
            shared,
            StatusCode::NOT_FOUND,
            format!("no value at {topic}"),
        ),
        Some(e) => {
            let m = e.latest;
            let mut r = full(StatusCode::OK, &m.format.mime(), m.payload);
            let h = r.headers_mut();
            if let Ok(v) = HeaderValue::from_str(&m.origin.adapter) {
                h.insert("x-switchboard-origin", v);
            }
            h.insert(
                "x-switchboard-qos",
                HeaderValue::from(u16::from(m.qos.as_u8())),
            );
            h.insert(
                "x-switchboard-retain",
                HeaderValue::from_static(if m.retain { "true" } else { "false" }),
            );
            let ms = m
                .timestamp
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_millis() as u64);
            h.insert("x-switchboard-timestamp-ms", HeaderValue::from(ms));
            r
        }
    }
}

fn events(shared: &Shared, access: Access, query: Option<&str>) -> Response<Body> {
    let patterns = match query_patterns(query) {
        Ok(p) => p,
        Err(e) => {
            return error(
                shared,
                StatusCode::BAD_REQUEST,
                format!("bad topic pattern: {e}"),
            );
        }
    };
    let mut subs: Vec<(switchboard_model::Pattern, ReadFilter)> =
        Vec::with_capacity(patterns.len());
    for p in patterns {
        match shared.acl.subscribe(access, &p) {
            Ok(f) => subs.push((p, f)),
            Err(d) => return denied(shared, d),
        }
    }
    let rx = shared.events.subscribe();
    let body = sse::stream(
        rx,
        subs,
        shared.ctx.name.clone(),
        shared.config.sse_keep_alive.0,
        shared.ctx.shutdown.clone(),
        shared.sse_drops.clone(),
    );
    let mut r = Response::new(body);
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/event-stream"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    r
}

fn health(shared: &Shared) -> Response<Body> {
    let adapters = shared.ctx.bridge.adapters();
    let down: serde_json::Map<String, serde_json::Value> = adapters
        .iter()
        .filter(|a| !a.health.up)
        .map(|a| {
            (
                a.name.clone(),
                json!(a.health.reason.clone().unwrap_or_default()),
            )
        })
        .collect();
    // What adapters report about themselves (the DDS participant and its
    // topics), by adapter name.
    let detail: serde_json::Map<String, serde_json::Value> = adapters
        .iter()
        .filter_map(|a| Some((a.name.clone(), json!(a.detail.as_ref()?))))
        .collect();
    let mut body = if down.is_empty() {
        json!({ "status": "ok", "adapters": adapters.iter().map(|a| a.name.clone()).collect::<Vec<_>>() })
    } else {
        json!({ "status": "down", "down": down })
    };
    if !detail.is_empty() {
        body["detail"] = serde_json::Value::Object(detail);
    }
    let code = if down.is_empty() {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    json_response(code, &body)
}

/// The HTTP adapter's mount (`/`).
pub(crate) struct HttpMount(pub(crate) Arc<Shared>);

impl crate::listener::Mount for HttpMount {
    fn handle(
        &self,
        req: Request<hyper::body::Incoming>,
        peer: SocketAddr,
    ) -> switchboard_model::BoxFuture<'static, Response<Body>> {
        let shared = self.0.clone();
        Box::pin(async move {
            match handle(shared, peer, req).await {
                Ok(r) => r,
                Err(never) => match never {},
            }
        })
    }
}
