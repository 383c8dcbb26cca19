//! The accept loop and per-connection tasks, and the loop that takes the
//! router's deliveries to the local hub.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::task::JoinSet;

use crate::service::{Shared, connection_slot, handle};

/// Accepts connections until shutdown, then lets open requests finish
/// (SSE streams end at shutdown).
pub(crate) async fn serve(listener: TcpListener, shared: Arc<Shared>) {
    let mut conns = JoinSet::new();
    let shutdown = shared.ctx.shutdown.clone();
    loop {
        tokio::select! {
            () = shutdown.cancelled() => break,
            Some(_) = conns.join_next(), if !conns.is_empty() => {}
            r = listener.accept() => {
                let (stream, peer) = match r {
                    Ok(x) => x,
                    Err(e) => {
                        tracing::warn!(adapter = %shared.ctx.name, error = %e, "Accept failed.");
                        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                        continue;
                    }
                };
                if !connection_slot(&shared) {
                    drop(stream);
                    continue;
                }
                let _ = stream.set_nodelay(true);
                let shared = shared.clone();
                conns.spawn(async move {
                    let svc_shared = shared.clone();
                    let svc = service_fn(move |req| handle(svc_shared.clone(), peer, req));
                    let conn = http1::Builder::new()
                        .max_buf_size(64 * 1024)
                        .serve_connection(TokioIo::new(stream), svc)
                        .with_upgrades();
                    tokio::pin!(conn);
                    let token = shared.ctx.shutdown.clone();
                    tokio::select! {
                        r = conn.as_mut() => if let Err(e) = r {
                            tracing::debug!(peer = %peer, error = %e, "Connection ended with an error.");
                        },
                        () = token.cancelled() => {
                            conn.as_mut().graceful_shutdown();
                            let _ = tokio::time::timeout(std::time::Duration::from_secs(5), conn).await;
                        }
                    }
                    shared.connections.fetch_sub(1, Ordering::AcqRel);
                });
            }
        }
    }
    while conns.join_next().await.is_some() {}
}

/// Takes deliveries from the router to the local hub (SSE streams) until the
/// queue is closed at shutdown.
pub(crate) async fn deliver(shared: Arc<Shared>) {
    while let Some(d) = shared.ctx.deliveries.recv().await {
        // Last values were recorded by the router; SSE clients that lag miss
        // messages (counted), a hub without clients simply has no receivers.
        let _ = shared.events.send(d.message);
        shared.ctx.metrics.inc_sent();
        d.ack.done();
    }
}
