//! WebSocket as a byte stream: a mount that upgrades with a subprotocol (for
//! MQTT over WebSocket, `mqtt`) and hands the connection, as an ordered byte
//! stream of binary frames, to a handler (the embedded MQTT broker).

use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;

use bytes::Bytes;
use futures_util::future::ready;
use futures_util::{SinkExt, StreamExt};
use http::{HeaderValue, Method, Request, Response, StatusCode, header};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use switchboard_model::BoxFuture;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message as Frame;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tokio_tungstenite::tungstenite::protocol::{Role, WebSocketConfig};
use tokio_util::io::StreamReader;

use crate::listener::Mount;
use crate::service::{Body, full};
use crate::upgrades::Upgrades;

/// An ordered byte stream carried by WebSocket binary frames.
pub trait ByteStream: AsyncRead + AsyncWrite + Send + Unpin {}
impl<T: AsyncRead + AsyncWrite + Send + Unpin> ByteStream for T {}

/// What serves one upgraded connection.
pub type StreamHandler =
    Arc<dyn Fn(Pin<Box<dyn ByteStream>>, SocketAddr) -> BoxFuture<'static, ()> + Send + Sync>;

/// A mount that serves a byte-stream protocol over WebSocket.
pub struct ByteStreamMount {
    subprotocols: &'static [&'static str],
    handler: StreamHandler,
    max_frame: usize,
    upgrades: Upgrades,
}

impl ByteStreamMount {
    /// Upgrades requests offering one of `subprotocols` (the first offered
    /// that is known is chosen; a client offering none is still served) and
    /// runs `handler` on the stream. Frames larger than `max_frame` close it.
    pub fn new(
        subprotocols: &'static [&'static str],
        max_frame: usize,
        handler: StreamHandler,
    ) -> Self {
        ByteStreamMount {
            subprotocols,
            handler,
            max_frame,
            upgrades: Upgrades::default(),
        }
    }

    /// Shutdown: waits (at most 3 s) for the streams it serves to end, so
    /// that each handler's goodbye (an MQTT DISCONNECT) reaches its peer
    /// before the process exits. Call it once shutdown is signalled.
    pub async fn close_wait(&self) {
        self.upgrades.drain("WebSocket byte streams").await;
    }
}

impl Mount for ByteStreamMount {
    fn handle(
        &self,
        mut req: Request<Incoming>,
        peer: SocketAddr,
    ) -> BoxFuture<'static, Response<Body>> {
        let Some(key) = upgrade_key(&req) else {
            return Box::pin(async { upgrade_required() });
        };
        let offered: Vec<String> = req
            .headers()
            .get_all(header::SEC_WEBSOCKET_PROTOCOL)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(',').map(|p| p.trim().to_owned()))
            .collect();
        let chosen = offered
            .iter()
            .find(|p| self.subprotocols.contains(&p.as_str()))
            .cloned();
        if !offered.is_empty() && chosen.is_none() {
            let msg = format!(
                r#"{{"error":"subprotocol must be one of {:?}"}}"#,
                self.subprotocols
            );
            return Box::pin(async move { full(StatusCode::BAD_REQUEST, "application/json", msg) });
        }
        let on_upgrade = hyper::upgrade::on(&mut req);
        let handler = self.handler.clone();
        let max = self.max_frame;
        self.upgrades.spawn(async move {
            let upgraded = match on_upgrade.await {
                Ok(u) => u,
                Err(e) => {
                    tracing::debug!(peer = %peer, error = %e, "WebSocket upgrade failed.");
                    return;
                }
            };
            let mut cfg = WebSocketConfig::default();
            cfg.max_message_size = Some(max);
            cfg.max_frame_size = Some(max);
            // Small buffers that grow on demand: thousands of mostly idle clients
            // must not each hold 256 KiB (tungstenite's defaults).
            cfg.read_buffer_size = 4 * 1024;
            cfg.write_buffer_size = 8 * 1024;
            let ws =
                WebSocketStream::from_raw_socket(TokioIo::new(upgraded), Role::Server, Some(cfg))
                    .await;
            let (sink, stream) = ws.split();
            let reader = StreamReader::new(stream.filter_map(|f| {
                ready(match f {
                    Ok(Frame::Binary(b)) => Some(Ok::<Bytes, std::io::Error>(b)),
                    Ok(Frame::Text(t)) => Some(Ok(Bytes::copy_from_slice(t.as_bytes()))),
                    Ok(_) => None,
                    Err(e) => Some(Err(std::io::Error::other(e))),
                })
            }));
            let sink = sink
                .sink_map_err(std::io::Error::other)
                .with(|b: Bytes| ready(Ok::<Frame, std::io::Error>(Frame::Binary(b))));
            let writer = FlushingWriter {
                sink: Box::pin(sink),
                flushing: None,
            };
            let stream: Pin<Box<dyn ByteStream>> = Box::pin(tokio::io::join(reader, writer));
            handler(stream, peer).await;
        });
        Box::pin(async move {
            let mut r = switching_protocols(&key);
            if let Some(p) = chosen.and_then(|p| HeaderValue::from_str(&p).ok()) {
                r.headers_mut().insert(header::SEC_WEBSOCKET_PROTOCOL, p);
            }
            r
        })
    }
}

/// Writes each write as one binary frame and returns only once it is flushed,
/// so the stream behaves like a socket (callers need not call `flush`).
struct FlushingWriter {
    sink: Pin<Box<dyn futures_util::Sink<Bytes, Error = std::io::Error> + Send>>,
    /// A frame was sent and is being flushed; its length is returned then.
    flushing: Option<usize>,
}

impl AsyncWrite for FlushingWriter {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        use std::task::Poll;
        if let Some(n) = self.flushing {
            return match self.sink.as_mut().poll_flush(cx) {
                Poll::Ready(r) => {
                    self.flushing = None;
                    Poll::Ready(r.map(|()| n))
                }
                Poll::Pending => Poll::Pending,
            };
        }
        if buf.is_empty() {
            return Poll::Ready(Ok(0));
        }
        match self.sink.as_mut().poll_ready(cx) {
            Poll::Ready(Ok(())) => {}
            Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
            Poll::Pending => return Poll::Pending,
        }
        self.sink.as_mut().start_send(Bytes::copy_from_slice(buf))?;
        match self.sink.as_mut().poll_flush(cx) {
            Poll::Ready(r) => Poll::Ready(r.map(|()| buf.len())),
            Poll::Pending => {
                self.flushing = Some(buf.len());
                Poll::Pending
            }
        }
    }

    fn poll_flush(
        mut self: Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        self.sink.as_mut().poll_flush(cx)
    }

    fn poll_shutdown(
        mut self: Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        self.sink.as_mut().poll_close(cx)
    }
}

/// The `Sec-WebSocket-Key` of a valid WebSocket upgrade request (a GET with
/// `Upgrade: websocket`), or `None`.
pub(crate) fn upgrade_key(req: &Request<Incoming>) -> Option<HeaderValue> {
    let is_ws = req.method() == Method::GET
        && req
            .headers()
            .get(header::UPGRADE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.eq_ignore_ascii_case("websocket"));
    is_ws
        .then(|| req.headers().get(header::SEC_WEBSOCKET_KEY).cloned())
        .flatten()
}

/// 426 for a plain request to a WebSocket endpoint.
pub(crate) fn upgrade_required() -> Response<Body> {
    let mut r = full(
        StatusCode::UPGRADE_REQUIRED,
        "application/json",
        r#"{"error":"this endpoint speaks WebSocket"}"#,
    );
    r.headers_mut()
        .insert(header::UPGRADE, HeaderValue::from_static("websocket"));
    r
}

/// The 101 answer to an upgrade with `key`.
pub(crate) fn switching_protocols(key: &HeaderValue) -> Response<Body> {
    let mut r = full(StatusCode::SWITCHING_PROTOCOLS, "text/plain", Bytes::new());
    let h = r.headers_mut();
    h.remove(header::CONTENT_TYPE);
    h.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
    h.insert(header::CONNECTION, HeaderValue::from_static("Upgrade"));
    if let Ok(v) = HeaderValue::from_str(&derive_accept_key(key.as_bytes())) {
        h.insert(header::SEC_WEBSOCKET_ACCEPT, v);
    }
    r
}
