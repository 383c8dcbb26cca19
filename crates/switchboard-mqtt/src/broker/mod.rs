//! The embedded broker: MQTT 3.1.1 and 5 on one listener (TCP, optionally
//! TLS), built on rumqttc's packet codecs ([`codec`], [`encode`]) and a
//! sans-IO core ([`core`], [`subs`]). Retained messages are the router's
//! last-value cache (`ctx.book`): a client's retained publication is recorded
//! there by `ctx.ingress.publish`, and a new subscription reads it back with
//! `retained_matching`. Messages routed to `mqtt:TOPIC` reach subscribed
//! clients like any client's publication.
//!
//! [`BrokerHandle::serve`] runs the broker's connection handler on any byte
//! stream, so MQTT over WebSocket can be fed to the same broker.
//!
//! Why not rumqttd: its in-process link is QoS 0 only and hides the QoS of
//! incoming publishes, it needs one listener per protocol version, keeps its
//! own retained store (ours must be the router's last-value cache), and runs
//! its own threads and runtimes. The packet codec is rumqttc's public
//! `mqttbytes` (already our client-mode dependency, maintained, both versions,
//! both directions); what it does not check (reserved flags, CONNECT flags,
//! SUBSCRIBE option bits, topic rules) is checked in [`codec`].
//!
//! Limits and policies: `max_clients` connected clients (CONNACK 0x97 /
//! 3.1.1 0x03 beyond), `max_sessions` sessions (oldest offline evicted),
//! `max_inflight` unacknowledged QoS 1/2 messages per client (also our MQTT 5
//! receive maximum), `max_queued` messages per client beyond that window
//! (newer ones dropped and counted in `mqtt_client_queue_full`), and
//! `max_payload` (DISCONNECT 0x95 on MQTT 5, connection closed on 3.1.1).
//! Malformed input closes only that connection (0x81/0x82 on MQTT 5).
//!
//! MQTT 5 features: session expiry, will delay, message expiry (counted
//! down while queued), no-local, retain-as-published, retain handling,
//! subscription identifiers, topic aliases from clients (up to 32), receive
//! maximum both ways, the client's maximum packet size, shared subscriptions,
//! assigned client identifiers, user properties, content type, response topic
//! and correlation data passed through. Not supported: enhanced authentication
//! (CONNACK 0x8C), topic aliases from the server.

pub mod codec;
mod conn;
pub mod core;
pub mod encode;
pub mod packet;
pub mod subs;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant};

use switchboard_model::units::Secret;
use switchboard_model::{
    AdapterContext, AdapterError, AdapterMetrics, AddressBook, Counter, Endpoint, Ingress, Message,
    Pattern, Running, Topic,
};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use self::codec::{PubProps, Publish};
use self::core::{Core, CoreStats, Limits};
use crate::config::Config;
use crate::mapping::meta_of;

struct UserAcl {
    username: String,
    password: Secret,
    read: Vec<Pattern>,
    write: Vec<Pattern>,
}

/// State shared by the connections of one broker.
pub(crate) struct Shared {
    core: Mutex<Core>,
    core_limits: Limits,
    name: Arc<str>,
    ingress: Ingress,
    book: Arc<AddressBook>,
    metrics: Arc<AdapterMetrics>,
    shutdown: CancellationToken,
    users: Vec<UserAcl>,
    max_payload: usize,
    max_packet: usize,
    anon: AtomicU64,
    tracker: TaskTracker,
    count_malformed: Counter,
    count_refused: Counter,
    count_too_large: Counter,
    count_denied: Counter,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Core> {
        self.core.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn next_anon(&self) -> u64 {
        self.anon.fetch_add(1, Ordering::Relaxed)
    }

    fn user(&self, name: Option<&str>) -> Option<&UserAcl> {
        let name = name?;
        self.users.iter().find(|u| u.username == name)
    }

    /// Whether the logged-in user may publish to `topic` (always, without users).
    fn may_write(&self, user: Option<&str>, topic: &str) -> bool {
        if self.users.is_empty() {
            return true;
        }
        let Ok(t) = Topic::new(topic) else {
            return false;
        };
        self.user(user)
            .is_some_and(|u| u.write.iter().any(|p| p.matches(&t)))
    }

    /// Whether the logged-in user may subscribe to `filter`.
    fn may_read(&self, user: Option<&str>, filter: &str) -> bool {
        if self.users.is_empty() {
            return true;
        }
        let (_, inner) = subs::split_share(filter);
        let Ok(f) = Pattern::new(inner) else {
            return false;
        };
        self.user(user)
            .is_some_and(|u| u.read.iter().any(|p| p.covers(&f)))
    }
}

/// The PUBLISH for a message from the router (payload shared, not copied).
pub(crate) fn publish_of(m: &Message) -> Publish {
    let meta = meta_of(m);
    let props = (!meta.is_empty()).then(|| {
        Arc::new(PubProps {
            payload_format: meta.payload_format,
            content_type: meta.content_type,
            user: meta.user,
            ..PubProps::default()
        })
    });
    Publish {
        topic: m.topic.as_arc().clone(),
        payload: m.payload.clone(),
        qos: m.qos.as_u8(),
        retain: m.retain,
        dup: false,
        pkid: 0,
        props,
        topic_alias: None,
        expires: None,
    }
}

/// A handle on a running embedded broker, to serve extra connections (MQTT
/// over WebSocket) on it. Cheap to clone; usable once the adapter started.
#[derive(Clone, Default)]
pub struct BrokerHandle(Arc<OnceLock<Arc<Shared>>>);

impl std::fmt::Debug for BrokerHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BrokerHandle")
            .field("started", &self.0.get().is_some())
            .finish()
    }
}

/// [`BrokerHandle::serve`] before the broker started.
#[derive(Debug, thiserror::Error)]
#[error("the MQTT broker has not started")]
pub struct NotStarted;

impl BrokerHandle {
    /// Serves one MQTT client on `stream` (any ordered byte stream, e.g. the
    /// payload of a WebSocket with subprotocol `mqtt`) until it disconnects
    /// or the broker stops. `peer` names the client in logs.
    pub async fn serve<S>(&self, stream: S, peer: &str) -> Result<(), NotStarted>
    where
        S: AsyncRead + AsyncWrite + Send + Unpin,
    {
        let shared = self.0.get().ok_or(NotStarted)?.clone();
        if shared.shutdown.is_cancelled() {
            return Ok(());
        }
        let token = shared.tracker.token();
        conn::serve(shared, stream, Arc::from(peer)).await;
        drop(token);
        Ok(())
    }

    /// Subscriptions held (0 before start).
    pub fn subscriptions(&self) -> usize {
        self.0.get().map_or(0, |s| s.lock().subscriptions())
    }

    /// Sessions held, connected or not (0 before start).
    pub fn sessions(&self) -> usize {
        self.0.get().map_or(0, |s| s.lock().sessions())
    }

    /// Connected clients (0 before start).
    pub fn clients(&self) -> usize {
        self.0.get().map_or(0, |s| s.lock().online())
    }
}

fn load_tls(cfg: &Config) -> Result<Option<tokio_rustls::TlsAcceptor>, AdapterError> {
    let (Some(cert), Some(key)) = (&cfg.tls_cert, &cfg.tls_key) else {
        return Ok(None);
    };
    let sc =
        crate::tls::server_config(cert, key).map_err(|e| AdapterError::Config(e.to_string()))?;
    Ok(Some(tokio_rustls::TlsAcceptor::from(Arc::new(sc))))
}

/// Binds the listener and returns the running broker.
pub(crate) async fn start(
    cfg: Config,
    ctx: AdapterContext,
    handle: BrokerHandle,
) -> Result<Running, AdapterError> {
    let Some(addr) = cfg.listen else {
        return Err(AdapterError::Config("no `listen` address".into()));
    };
    let tls = load_tls(&cfg)?;
    let listener = TcpListener::bind(addr)
        .await
        .map_err(|source| AdapterError::Bind {
            addr: addr.to_string(),
            source,
        })?;
    let local = listener.local_addr()?;
    let max_payload = cfg.max_payload.as_usize();
    let limits = Limits {
        max_clients: cfg.max_clients,
        max_sessions: cfg.max_sessions,
        max_inflight: cfg.max_inflight,
        max_queued: cfg.max_queued,
    };
    let users = cfg
        .user
        .iter()
        .map(|u| UserAcl {
            username: u.username.clone(),
            password: u.password.clone(),
            read: u.read.iter().filter_map(|f| Pattern::new(f).ok()).collect(),
            write: u
                .write
                .iter()
                .filter_map(|f| Pattern::new(f).ok())
                .collect(),
        })
        .collect();
    let m = &ctx.metrics;
    let shared = Arc::new(Shared {
        core: Mutex::new(Core::new(limits.clone(), CoreStats::new(m))),
        core_limits: limits,
        name: ctx.name.clone(),
        ingress: ctx.ingress.clone(),
        book: ctx.book.clone(),
        metrics: ctx.metrics.clone(),
        shutdown: ctx.shutdown.clone(),
        users,
        max_payload,
        // Room for the topic, properties and headers around the payload.
        max_packet: max_payload.saturating_add(65_536 + 4096),
        anon: AtomicU64::new(1),
        tracker: TaskTracker::new(),
        count_malformed: m.counter(
            "mqtt_malformed_packets",
            "Malformed MQTT packets (client disconnected).",
        ),
        count_refused: m.counter("mqtt_connections_refused", "MQTT CONNECTs refused."),
        count_too_large: m.counter(
            "mqtt_payload_too_large",
            "PUBLISHes over max_payload (client disconnected).",
        ),
        count_denied: m.counter(
            "mqtt_acl_denied",
            "PUBLISH or SUBSCRIBE refused by the user's ACL.",
        ),
    });
    if handle.0.set(shared.clone()).is_err() {
        return Err(AdapterError::Config(
            "this broker was already started".into(),
        ));
    }
    let service = if tls.is_some() { "mqtts" } else { "mqtt" };
    tracing::info!(adapter = %ctx.name, addr = %local, service, "MQTT broker listening.");
    ctx.health.up();
    let task = run(shared, listener, tls, ctx);
    Ok(Running {
        endpoints: vec![Endpoint {
            service: service.into(),
            addr: local,
        }],
        task: Box::pin(task),
    })
}

async fn run(
    shared: Arc<Shared>,
    listener: TcpListener,
    tls: Option<tokio_rustls::TlsAcceptor>,
    ctx: AdapterContext,
) -> Result<(), AdapterError> {
    let deliveries = tokio::spawn(route_deliveries(shared.clone(), ctx.clone()));
    let mut sweep = tokio::time::interval(Duration::from_secs(5));
    loop {
        tokio::select! {
            () = ctx.shutdown.cancelled() => break,
            _ = sweep.tick() => shared.lock().sweep(Instant::now()),
            r = listener.accept() => {
                let (stream, peer) = match r {
                    Ok(x) => x,
                    Err(e) => {
                        tracing::warn!(error = %e, "MQTT accept failed.");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                };
                let _ = stream.set_nodelay(true);
                let peer: Arc<str> = Arc::from(peer.to_string());
                let s = shared.clone();
                let tls = tls.clone();
                shared.tracker.spawn(async move {
                    match tls {
                        None => conn::serve(s, stream, peer).await,
                        Some(acc) => {
                            let hs = tokio::time::timeout(Duration::from_secs(10), acc.accept(stream)).await;
                            match hs {
                                Ok(Ok(t)) => conn::serve(s, t, peer).await,
                                _ => {
                                    s.metrics.inc_errors();
                                    tracing::debug!(%peer, "MQTT TLS handshake failed.");
                                }
                            }
                        }
                    }
                });
            }
        }
    }
    drop(listener);
    shared.tracker.close();
    let _ = tokio::time::timeout(Duration::from_secs(3), shared.tracker.wait()).await;
    let _ = deliveries.await;
    ctx.health.down("stopped");
    Ok(())
}

/// Messages routed to this adapter go to the subscribed clients.
async fn route_deliveries(shared: Arc<Shared>, ctx: AdapterContext) {
    let shutdown = ctx.shutdown.cancelled();
    tokio::pin!(shutdown);
    loop {
        let d = tokio::select! {
            d = ctx.deliveries.recv() => d,
            () = &mut shutdown => None,
        };
        let Some(d) = d else { break };
        let p = publish_of(&d.message);
        let wakes = shared.lock().route(&p, None);
        for w in wakes {
            w.notify_one();
        }
        d.ack.done();
    }
}
