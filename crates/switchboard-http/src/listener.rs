//! Shared listeners: one hyper server per socket address, serving *mounts*
//! (path prefixes) registered by several adapters. The HTTP adapter mounts `/`,
//! the WebSocket adapter `/ws`, and the bridge can mount MQTT over WebSocket at
//! `/mqtt` — all on one port when their `listen` addresses are equal. The first
//! adapter to start on an address binds it and runs its accept loop; the
//! others only add their mount.

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use http::{Request, Response, StatusCode};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use switchboard_model::{AdapterError, BoxFuture, Counter};
use tokio::net::TcpListener;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::service::{Body, full};

/// What a mount does with a request routed to it.
pub trait Mount: Send + Sync + 'static {
    /// Handles one request (the connection supports upgrades).
    fn handle(
        &self,
        req: Request<Incoming>,
        peer: SocketAddr,
    ) -> BoxFuture<'static, Response<Body>>;
}

struct Server {
    mounts: RwLock<Vec<(String, Arc<dyn Mount>)>>,
    tls: bool,
}

impl Server {
    fn find(&self, path: &str) -> Option<Arc<dyn Mount>> {
        let mounts = self.mounts.read().unwrap_or_else(|e| e.into_inner());
        mounts
            .iter()
            .filter(|(prefix, _)| {
                prefix == "/"
                    || path == prefix
                    || path
                        .strip_prefix(prefix.as_str())
                        .is_some_and(|r| r.starts_with('/'))
            })
            .max_by_key(|(prefix, _)| prefix.len())
            .map(|(_, m)| m.clone())
    }
}

/// The registry of shared listeners of one bridge. Cloning shares it.
#[derive(Clone, Default)]
pub struct Listeners {
    servers: Arc<Mutex<HashMap<SocketAddr, Arc<Server>>>>,
}

impl std::fmt::Debug for Listeners {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Listeners")
    }
}

/// Limits and counters of a server, taken from the adapter that binds it.
#[derive(Clone)]
pub struct ServerLimits {
    /// Most concurrent connections.
    pub max_connections: usize,
    /// Counts connections refused at the limit.
    pub refused: Counter,
    /// TLS for every connection of the listener, when set.
    pub tls: Option<tokio_rustls::TlsAcceptor>,
}

/// The result of [`Listeners::attach`].
pub struct Attached {
    /// The bound address (the real port when `:0` was asked).
    pub addr: SocketAddr,
    /// The accept loop, for the adapter that bound the socket (run it in its
    /// task); `None` when the mount joined an existing server.
    pub serve: Option<BoxFuture<'static, ()>>,
}

impl std::fmt::Debug for ServerLimits {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerLimits")
            .field("max_connections", &self.max_connections)
            .field("tls", &self.tls.is_some())
            .finish()
    }
}

impl Listeners {
    /// Adds `mount` at `prefix` on `addr`, binding it if no adapter has yet.
    /// Port 0 always binds a new socket.
    pub async fn attach(
        &self,
        addr: SocketAddr,
        prefix: &str,
        mount: Arc<dyn Mount>,
        limits: ServerLimits,
        shutdown: CancellationToken,
    ) -> Result<Attached, AdapterError> {
        if addr.port() != 0 {
            let servers = self.servers.lock().unwrap_or_else(|e| e.into_inner());
            if let Some(s) = servers.get(&addr) {
                if limits.tls.is_some() && !s.tls {
                    return Err(AdapterError::Config(format!(
                        "{addr} is already served without TLS by another adapter; set tls_cert/tls_key on the adapter that binds it"
                    )));
                }
                let mut mounts = s.mounts.write().unwrap_or_else(|e| e.into_inner());
                if mounts.iter().any(|(p, _)| p == prefix) {
                    return Err(AdapterError::Config(format!(
                        "{addr}: path {prefix} is served twice"
                    )));
                }
                mounts.push((prefix.to_owned(), mount));
                return Ok(Attached { addr, serve: None });
            }
        }
        let listener = TcpListener::bind(addr)
            .await
            .map_err(|source| AdapterError::Bind {
                addr: addr.to_string(),
                source,
            })?;
        let bound = listener.local_addr()?;
        let server = Arc::new(Server {
            mounts: RwLock::new(vec![(prefix.to_owned(), mount)]),
            tls: limits.tls.is_some(),
        });
        {
            let mut servers = self.servers.lock().unwrap_or_else(|e| e.into_inner());
            servers.insert(addr, server.clone());
            servers.insert(bound, server.clone());
        }
        Ok(Attached {
            addr: bound,
            serve: Some(Box::pin(serve(listener, server, limits, shutdown))),
        })
    }
}

async fn serve(
    listener: TcpListener,
    server: Arc<Server>,
    limits: ServerLimits,
    shutdown: CancellationToken,
) {
    let mut conns = JoinSet::new();
    let open = Arc::new(AtomicUsize::new(0));
    loop {
        tokio::select! {
            () = shutdown.cancelled() => break,
            Some(_) = conns.join_next(), if !conns.is_empty() => {}
            r = listener.accept() => {
                let (stream, peer) = match r {
                    Ok(x) => x,
                    Err(e) => {
                        tracing::warn!(error = %e, "Accept failed.");
                        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                        continue;
                    }
                };
                if open.fetch_add(1, Ordering::AcqRel) >= limits.max_connections {
                    open.fetch_sub(1, Ordering::AcqRel);
                    limits.refused.inc();
                    drop(stream);
                    continue;
                }
                let _ = stream.set_nodelay(true);
                let server = server.clone();
                let open = open.clone();
                let token = shutdown.clone();
                let tls = limits.tls.clone();
                conns.spawn(async move {
                    match tls {
                        None => serve_conn(stream, server, peer, token).await,
                        Some(acceptor) => {
                            let handshake = tokio::time::timeout(std::time::Duration::from_secs(10), acceptor.accept(stream));
                            match handshake.await {
                                Ok(Ok(s)) => serve_conn(s, server, peer, token).await,
                                Ok(Err(e)) => tracing::debug!(peer = %peer, error = %e, "TLS handshake failed."),
                                Err(_) => tracing::debug!(peer = %peer, "TLS handshake timed out."),
                            }
                        }
                    }
                    open.fetch_sub(1, Ordering::AcqRel);
                });
            }
        }
    }
    while conns.join_next().await.is_some() {}
}

async fn serve_conn<S>(stream: S, server: Arc<Server>, peer: SocketAddr, token: CancellationToken)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Send + Unpin + 'static,
{
    let svc = service_fn(move |req: Request<Incoming>| {
        let mount = server.find(req.uri().path());
        async move {
            Ok::<_, Infallible>(match mount {
                Some(m) => m.handle(req, peer).await,
                None => full(
                    StatusCode::NOT_FOUND,
                    "application/json",
                    r#"{"error":"not found"}"#,
                ),
            })
        }
    });
    let conn = http1::Builder::new()
        .max_buf_size(64 * 1024)
        .serve_connection(TokioIo::new(stream), svc)
        .with_upgrades();
    tokio::pin!(conn);
    tokio::select! {
        r = conn.as_mut() => if let Err(e) = r {
            tracing::debug!(peer = %peer, error = %e, "Connection ended with an error.");
        },
        () = token.cancelled() => {
            conn.as_mut().graceful_shutdown();
            let _ = tokio::time::timeout(std::time::Duration::from_secs(5), conn).await;
        }
    }
}

impl Attached {
    /// The running adapter for a mount: `deliver` (the adapter's loop over
    /// its delivery queue) runs beside the accept loop when this adapter
    /// bound the socket; the endpoint is reported as `service`.
    pub(crate) fn into_running(
        self,
        service: &str,
        deliver: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> switchboard_model::Running {
        let Attached { addr, serve } = self;
        let task = Box::pin(async move {
            let deliver = tokio::spawn(deliver);
            if let Some(serve) = serve {
                serve.await;
            }
            let _ = deliver.await;
            Ok(())
        });
        switchboard_model::Running {
            endpoints: vec![switchboard_model::Endpoint {
                service: service.to_owned(),
                addr,
            }],
            task,
        }
    }
}
