//! One WebSocket connection: a reader that parses ops and a writer that sends
//! the client's queue, pings, and the close frame.

use std::net::SocketAddr;
use std::sync::Arc;

use futures_util::{SinkExt, StreamExt};
use hyper::upgrade::Upgraded;
use hyper_util::rt::TokioIo;
use switchboard_model::Message;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::{CloseFrame, Role, WebSocketConfig};
use tokio_tungstenite::tungstenite::{Bytes, Message as Frame, Utf8Bytes};

use super::WsShared;
use super::hub::{Client, Outgoing};
use super::ops::{self, Op};
use crate::acl::Access;

fn text(s: String) -> Outgoing {
    Outgoing {
        text: Utf8Bytes::from(s),
        binary: None,
        qos: switchboard_model::Qos::AtLeastOnce,
    }
}

pub(crate) async fn run(
    shared: Arc<WsShared>,
    upgraded: Upgraded,
    access: Access,
    peer: SocketAddr,
) {
    let max = shared.config.max_payload.as_usize();
    let mut cfg = WebSocketConfig::default();
    cfg.max_message_size = Some(max);
    cfg.max_frame_size = Some(max);
    // Small buffers that grow on demand: thousands of mostly idle clients
    // must not each hold 256 KiB (tungstenite's defaults).
    cfg.read_buffer_size = 4 * 1024;
    cfg.write_buffer_size = 8 * 1024;
    let ws =
        WebSocketStream::from_raw_socket(TokioIo::new(upgraded), Role::Server, Some(cfg)).await;
    let client = shared.hub.join();
    let (mut sink, mut stream) = ws.split();
    let shutdown = shared.ctx.shutdown.clone();

    let writer = {
        let client = client.clone();
        let ping_every = shared.config.ping_interval.0;
        async move {
            let mut ping = tokio::time::interval(ping_every);
            let mut batch = std::collections::VecDeque::new();
            ping.tick().await;
            loop {
                let mut close = None;
                tokio::select! {
                    () = client.notify.notified() => {}
                    _ = ping.tick() => {
                        if sink.send(Frame::Ping(Bytes::new())).await.is_err() {
                            return;
                        }
                    }
                    () = shutdown.cancelled() => close = Some((1001u16, "the bridge is shutting down".to_owned())),
                }
                if close.is_none() && client.is_closing() {
                    close = client
                        .close_reason
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .clone();
                }
                client.drain_into(&mut batch);
                for o in batch.drain(..) {
                    if sink.feed(Frame::Text(o.text)).await.is_err() {
                        return;
                    }
                    if let Some(b) = o.binary
                        && sink.feed(Frame::Binary(b)).await.is_err()
                    {
                        return;
                    }
                }
                if sink.flush().await.is_err() {
                    return;
                }
                if let Some((code, reason)) = close {
                    let _ = sink
                        .send(Frame::Close(Some(CloseFrame {
                            code: CloseCode::from(code),
                            reason: Utf8Bytes::from(reason.as_str()),
                        })))
                        .await;
                    return;
                }
            }
        }
    };

    let reader = {
        let client = client.clone();
        let shared = shared.clone();
        async move {
            let idle = shared.config.idle_timeout.0;
            let mut pending_binary: Option<(
                switchboard_model::Topic,
                switchboard_model::Qos,
                bool,
                Option<serde_json::Value>,
            )> = None;
            loop {
                let frame = match tokio::time::timeout(idle, stream.next()).await {
                    Err(_) => {
                        client.close(1001, "idle timeout");
                        return;
                    }
                    Ok(None) => return,
                    Ok(Some(Err(e))) => {
                        tracing::debug!(peer = %peer, error = %e, "WebSocket read failed.");
                        shared.protocol_errors.inc();
                        client.close(1009, "frame too large or malformed");
                        return;
                    }
                    Ok(Some(Ok(f))) => f,
                };
                match frame {
                    Frame::Text(t) => {
                        if pending_binary.take().is_some() {
                            client.push_direct(text(ops::error(
                                "expected the binary payload frame",
                                None,
                            )));
                        }
                        match ops::parse(t.as_str()) {
                            Ok(req) => {
                                handle(&shared, &client, access, peer, req, &mut pending_binary)
                                    .await
                            }
                            Err(e) => {
                                shared.protocol_errors.inc();
                                shared.ctx.metrics.inc_errors();
                                client
                                    .push_direct(text(ops::error(&e.reason, e.reference.as_ref())));
                            }
                        }
                    }
                    Frame::Binary(b) => match pending_binary.take() {
                        Some((topic, qos, retain, reference)) => {
                            let mut m = Message::new(shared.ctx.name.clone(), topic, b);
                            m.qos = qos;
                            m.retain = retain;
                            publish(&shared, &client, peer, m, reference.as_ref()).await;
                        }
                        None => {
                            shared.protocol_errors.inc();
                            client.push_direct(text(ops::error(
                                "a binary frame must follow a pub with \"binary\":true",
                                None,
                            )));
                        }
                    },
                    Frame::Close(_) => return,
                    _ => {}
                }
                if client.is_closing() {
                    return;
                }
            }
        }
    };

    tokio::pin!(writer);
    tokio::select! {
        () = &mut writer => {}
        () = reader => {
            // Let the writer send what is queued and the close frame.
            client.close(1000, "bye");
            let _ = tokio::time::timeout(std::time::Duration::from_secs(2), writer).await;
        }
    }
    shared.hub.leave(&client);
}

type PendingBinary = Option<(
    switchboard_model::Topic,
    switchboard_model::Qos,
    bool,
    Option<serde_json::Value>,
)>;

async fn handle(
    shared: &Arc<WsShared>,
    client: &Arc<Client>,
    access: Access,
    peer: SocketAddr,
    req: ops::Request,
    pending_binary: &mut PendingBinary,
) {
    let reference = req.reference;
    let reply_err = |reason: &str| {
        client.push_direct(text(ops::error(reason, reference.as_ref())));
    };
    match req.op {
        Op::Ping => client.push_direct(text(ops::ok(reference.as_ref()))),
        Op::Sub {
            topic,
            retained,
            binary,
        } => {
            let filter = match shared.acl.subscribe(access, &topic) {
                Ok(f) => f,
                Err(d) => {
                    shared.subs_refused.inc();
                    return reply_err(&denied_reason(d));
                }
            };
            if client.sub_count() >= shared.config.max_subscriptions {
                shared.subs_refused.inc();
                return reply_err("too many subscriptions");
            }
            client.push_direct(text(ops::ok(reference.as_ref())));
            if retained {
                for m in shared.ctx.book.latest_matching(&shared.ctx.name, &topic) {
                    if filter.allows(&m.topic) {
                        client.push_direct(shared.hub.frames(&m, binary));
                    }
                }
            }
            client.subscribe(topic, filter, binary);
        }
        Op::Unsub { topic } => {
            if client.unsubscribe(&topic) {
                client.push_direct(text(ops::ok(reference.as_ref())));
            } else {
                reply_err("not subscribed to that pattern");
            }
        }
        Op::Pub {
            topic,
            payload,
            qos,
            retain,
        } => {
            if let Err(d) = shared.acl.can_write(access, &topic) {
                return reply_err(&denied_reason(d));
            }
            match payload {
                None => *pending_binary = Some((topic, qos, retain, reference)),
                Some((bytes, format)) => {
                    let mut m = Message::new(shared.ctx.name.clone(), topic, bytes);
                    m.format = format;
                    m.qos = qos;
                    m.retain = retain;
                    publish(shared, client, peer, m, reference.as_ref()).await;
                }
            }
        }
    }
}

fn denied_reason(d: crate::acl::Denied) -> String {
    match d {
        crate::acl::Denied::Unauthenticated => "a valid token is required".into(),
        crate::acl::Denied::Forbidden(m) => format!("forbidden: {m}"),
    }
}

async fn publish(
    shared: &Arc<WsShared>,
    client: &Arc<Client>,
    peer: SocketAddr,
    mut m: Message,
    reference: Option<&serde_json::Value>,
) {
    m.origin.peer = Some(Arc::from(peer.to_string()));
    // Local delivery to every subscribed WebSocket client, then the router.
    shared.hub.dispatch(&m);
    match shared.ctx.ingress.publish(m).await {
        Ok(()) => client.push_direct(text(ops::ok(reference))),
        Err(_) => client.push_direct(text(ops::error("the bridge is shutting down", reference))),
    }
}
