//! The public [`Adapter`] trait and the [`AdapterContext`] an adapter is given.
//!
//! An adapter owns the I/O of one protocol instance. It is given a sender into
//! the router ([`Ingress`]), the queue of messages routed to it
//! ([`DeliveryQueue`]), the patterns the routes need from it ([`Interest`]),
//! the shared [`AddressBook`], a shutdown token, and handles for health and
//! metrics. It never sees routes, other adapters or the config file.

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;

use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;

use crate::book::AddressBook;
use crate::format::Qos;
use crate::message::Message;
use crate::metrics::{AdapterMetrics, Health, HealthState, RouteCountersSnapshot};
use crate::queue::DeliveryQueue;
use crate::topic::Pattern;

/// A boxed, sendable future.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Errors an adapter reports when starting or running.
#[derive(Debug, thiserror::Error)]
pub enum AdapterError {
    /// A listener could not be bound.
    #[error("cannot bind {addr}: {source}")]
    Bind {
        /// The address asked for.
        addr: String,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// Other I/O failure.
    #[error("I/O error: {0}")]
    Io(#[from] std::io::Error),
    /// The adapter's configuration is unusable.
    #[error("invalid configuration: {0}")]
    Config(String),
    /// Anything else, from the adapter's own error type.
    #[error(transparent)]
    Other(Box<dyn std::error::Error + Send + Sync>),
}

impl AdapterError {
    /// The first of a configuration's issues as an error, for an adapter that
    /// checks its configuration again when started.
    pub fn from_issues(issues: Vec<crate::units::ConfigIssue>) -> Result<(), AdapterError> {
        match issues.into_iter().next() {
            Some(i) => Err(AdapterError::Config(format!("{}: {}", i.key, i.message))),
            None => Ok(()),
        }
    }
}

/// A socket an adapter serves, reported once bound (the actual port when `:0`
/// was asked for).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Endpoint {
    /// What is served there (`http`, `mqtt`, `coap`, `ws`...).
    pub service: String,
    /// The bound address.
    pub addr: SocketAddr,
}

/// A started adapter: the endpoints it bound and the future that moves its
/// traffic until the context's shutdown token fires.
pub struct Running {
    /// Bound endpoints.
    pub endpoints: Vec<Endpoint>,
    /// Runs the adapter; resolves after shutdown once the adapter drained.
    pub task: BoxFuture<'static, Result<(), AdapterError>>,
}

impl std::fmt::Debug for Running {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Running")
            .field("endpoints", &self.endpoints)
            .finish()
    }
}

/// A protocol adapter. `start` validates and binds (so that errors surface
/// before traffic flows) and returns the running task.
pub trait Adapter: Send + 'static {
    /// The adapter kind (`mqtt`, `http`, ...).
    fn kind(&self) -> &str;

    /// Binds and returns the running adapter.
    fn start(
        self: Box<Self>,
        ctx: AdapterContext,
    ) -> BoxFuture<'static, Result<Running, AdapterError>>;
}

/// One subscription the routes need from an adapter: messages at topics
/// matching `filter`, at QoS up to `qos`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Interest {
    /// The topic filter.
    pub filter: Pattern,
    /// The highest QoS any route with this filter asks.
    pub qos: Qos,
}

/// Why a message could not enter the router.
#[derive(Debug, thiserror::Error)]
pub enum IngressError {
    /// The router has stopped; the message is handed back.
    #[error("the router has stopped")]
    Closed(Box<Message>),
    /// The router's queue is full (only from `try_publish`); the message is handed back.
    #[error("the router is busy")]
    Full(Box<Message>),
}

/// Routing in the publishing task: what [`Ingress::publish_direct`] calls
/// instead of handing the message to the router's task (implemented by the
/// router).
pub trait Dispatch: Send + Sync + std::fmt::Debug {
    /// Routes `msg` (already recorded at its source address) and queues its
    /// deliveries. A delivery at QoS >= 1 that does not fit its full queue is
    /// appended to `wait`, for the caller to push with back-pressure. `Err`
    /// when the router has stopped or a destination queue is closed: the
    /// message may not have reached every destination.
    fn dispatch(&self, msg: &Message, wait: &mut Vec<Waiting>) -> Result<(), Stopped>;
}

/// A delivery waiting for room in its queue (see [`Dispatch`]).
pub type Waiting = (Arc<DeliveryQueue>, crate::Delivery);

/// The router has stopped (see [`Dispatch::dispatch`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stopped;

/// The sender of messages into the router, bound to one adapter instance.
#[derive(Clone, Debug)]
pub struct Ingress {
    adapter: Arc<str>,
    tx: mpsc::Sender<Message>,
    book: Arc<AddressBook>,
    metrics: Arc<AdapterMetrics>,
    direct: Option<Arc<dyn Dispatch>>,
}

impl Ingress {
    /// An ingress for `adapter` feeding `tx` (the router's input channel).
    pub fn new(
        adapter: Arc<str>,
        tx: mpsc::Sender<Message>,
        book: Arc<AddressBook>,
        metrics: Arc<AdapterMetrics>,
    ) -> Self {
        Ingress {
            adapter,
            tx,
            book,
            metrics,
            direct: None,
        }
    }

    /// Lets [`publish_direct`](Self::publish_direct) route in the caller's
    /// task through `dispatch` (without it, it goes through the channel).
    pub fn with_dispatch(mut self, dispatch: Arc<dyn Dispatch>) -> Self {
        self.direct = Some(dispatch);
        self
    }

    /// Stamps `msg` as this adapter's, records it as its address's last
    /// value (the book keeps this allocation) and counts it.
    fn record(&self, mut msg: Message) -> Arc<Message> {
        msg.origin.adapter = self.adapter.clone();
        let msg = Arc::new(msg);
        self.book.record_shared(&self.adapter, &msg);
        self.metrics.inc_received();
        msg
    }

    /// [`record`](Self::record), for the router's channel (which takes the
    /// message by value: the book's copy stays shared).
    fn prepare(&self, msg: Message) -> Message {
        Arc::unwrap_or_clone(self.record(msg))
    }

    /// Publishes a message that arrived at `ADAPTER:msg.topic` from one of this
    /// adapter's peers: records it as that address's last value, then hands it
    /// to the router, waiting while the router is busy (back-pressure). The
    /// adapter has already delivered it to its own local subscribers.
    pub async fn publish(&self, msg: Message) -> Result<(), IngressError> {
        let msg = self.prepare(msg);
        self.tx
            .send(msg)
            .await
            .map_err(|e| IngressError::Closed(Box::new(e.0)))
    }

    /// Like [`Ingress::publish`], but routes the message in the caller's task
    /// when the bridge allows it: no hand-over to the router's task, so one
    /// task switch less between receipt and forwarding. Waits while a
    /// destination's queue is full (QoS >= 1), which back-pressures this
    /// caller only.
    ///
    /// Only for a task that drains no delivery queue (one task per peer
    /// connection, say): a task waiting for room in a queue that it drains
    /// itself, directly or through a route back, would wait forever. An
    /// adapter whose one task both publishes and takes deliveries uses
    /// `publish` (the router's task then does the waiting).
    /// Messages of one caller keep their order.
    pub async fn publish_direct(&self, msg: Message) -> Result<(), IngressError> {
        self.publish_direct_with(msg, None).await
    }

    /// [`publish_direct`](Self::publish_direct), recording in `handoff` the
    /// receivers the routing woke (see [`Handoff`](crate::Handoff)).
    pub async fn publish_direct_with(
        &self,
        msg: Message,
        handoff: Option<&crate::Handoff>,
    ) -> Result<(), IngressError> {
        let Some(d) = &self.direct else {
            return self.publish(msg).await;
        };
        let mut wait = Vec::new();
        let msg = match handoff {
            Some(h) => h.record(|| self.route_here(d.as_ref(), msg, &mut wait))?,
            None => self.route_here(d.as_ref(), msg, &mut wait)?,
        };
        let mut stopped = false;
        for (q, delivery) in wait {
            stopped |= q.push(delivery).await == crate::Pushed::Closed;
        }
        if stopped {
            return Err(IngressError::Closed(Box::new(Arc::unwrap_or_clone(msg))));
        }
        Ok(())
    }

    /// Records and routes `msg` through `d`; hands it back once routed.
    fn route_here(
        &self,
        d: &dyn Dispatch,
        msg: Message,
        wait: &mut Vec<Waiting>,
    ) -> Result<Arc<Message>, IngressError> {
        // What the book replaces is freed once the deliveries are pushed
        // (and those an express lane took are written).
        let _defer = crate::book::DeferDrops::begin();
        // Shared with the book, not copied for it.
        let msg = self.record(msg);
        match d.dispatch(&msg, wait) {
            Ok(()) => Ok(msg),
            Err(Stopped) => {
                // Nothing will push what waits: the router is stopping.
                for (_, d) in wait.drain(..) {
                    d.ack.dropped(crate::DropReason::Closed);
                }
                Err(IngressError::Closed(Box::new(Arc::unwrap_or_clone(msg))))
            }
        }
    }

    /// Whether [`dispatch_now`](Self::dispatch_now) routes in the caller's
    /// task (the bridge gave this ingress a dispatcher).
    pub fn has_dispatch(&self) -> bool {
        self.direct.is_some()
    }

    /// Routes the message in the caller's task without waiting: every
    /// delivery that fits its queue is queued, the ones at QoS >= 1 that
    /// find their queue full are appended to `wait`, in order, for the
    /// caller to push once there is room ([`DeliveryQueue::room`]) while it
    /// goes on draining its own queue. While any is waiting, the caller holds
    /// its next messages back (they could overtake it). Without a dispatcher
    /// this is [`try_publish`](Self::try_publish).
    pub fn dispatch_now(&self, msg: Message, wait: &mut Vec<Waiting>) -> Result<(), IngressError> {
        match &self.direct {
            Some(d) => self.route_here(d.as_ref(), msg, wait).map(drop),
            None => self.try_publish(msg),
        }
    }

    /// Like [`Ingress::publish`] without waiting: hands the message back when
    /// the router's queue is full. Its last value is recorded either way.
    pub fn try_publish(&self, msg: Message) -> Result<(), IngressError> {
        let msg = self.prepare(msg);
        self.tx.try_send(msg).map_err(|e| match e {
            mpsc::error::TrySendError::Full(m) => IngressError::Full(Box::new(m)),
            mpsc::error::TrySendError::Closed(m) => IngressError::Closed(Box::new(m)),
        })
    }

    /// Whether the router's input has room right now (a `publish` would not
    /// wait).
    pub fn has_capacity(&self) -> bool {
        self.tx.capacity() > 0
    }

    /// Waits until the router's input has room (or the router stopped), so
    /// that an adapter can keep serving its peers instead of blocking in
    /// `publish`.
    pub async fn ready(&self) {
        // Reserve and release at once: only the wake-up matters here.
        let _ = self.tx.reserve().await;
    }

    /// The adapter instance this ingress belongs to.
    pub fn adapter(&self) -> &Arc<str> {
        &self.adapter
    }
}

/// One route as reported by [`BridgeInfo::routes`].
#[derive(Clone, Debug, serde::Serialize)]
pub struct RouteInfo {
    /// Position in the configuration (0-based).
    pub index: usize,
    /// The source pattern.
    pub from: String,
    /// The destination templates.
    pub to: Vec<String>,
    /// The conversion format, if any.
    pub format: Option<String>,
    /// Counters.
    pub counters: RouteCountersSnapshot,
}

/// One adapter as reported by [`BridgeInfo::adapters`].
#[derive(Clone, Debug, serde::Serialize)]
pub struct AdapterInfo {
    /// Instance name.
    pub name: String,
    /// Kind.
    pub kind: String,
    /// Health.
    pub health: HealthState,
    /// Bound endpoints as `service=addr` strings.
    pub endpoints: Vec<String>,
    /// Messages received from peers.
    pub received: u64,
    /// Messages sent to peers.
    pub sent: u64,
    /// Protocol errors.
    pub errors: u64,
    /// Messages dropped by the adapter.
    pub dropped: u64,
    /// Deliveries waiting in its queue.
    pub queued: usize,
    /// What the adapter reports beyond its counters, if anything.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<crate::Detail>,
}

/// Read-only introspection of the running bridge, for adapters that expose it
/// (HTTP's `/api/*`, `/metrics`, `/healthz`).
pub trait BridgeInfo: Send + Sync + 'static {
    /// Routes with their counters.
    fn routes(&self) -> Vec<RouteInfo>;
    /// Adapters with their health and counters.
    fn adapters(&self) -> Vec<AdapterInfo>;
    /// The Prometheus text exposition of every counter.
    fn metrics_text(&self) -> String;
}

/// A [`BridgeInfo`] that knows nothing (for adapters run alone in tests).
#[derive(Debug, Default)]
pub struct NoBridgeInfo;

impl BridgeInfo for NoBridgeInfo {
    fn routes(&self) -> Vec<RouteInfo> {
        Vec::new()
    }
    fn adapters(&self) -> Vec<AdapterInfo> {
        Vec::new()
    }
    fn metrics_text(&self) -> String {
        String::new()
    }
}

/// Everything an adapter is given to run.
#[derive(Clone)]
pub struct AdapterContext {
    /// This instance's name (`mqtt`, `cloud`, ...).
    pub name: Arc<str>,
    /// Sends messages from peers into the router.
    pub ingress: Ingress,
    /// Messages routed to this adapter.
    pub deliveries: Arc<DeliveryQueue>,
    /// The subscriptions the routes need from this adapter; changes when the
    /// route table is swapped.
    pub interest: watch::Receiver<Arc<[Interest]>>,
    /// Last values of every address.
    pub book: Arc<AddressBook>,
    /// Fires when the bridge shuts down.
    pub shutdown: CancellationToken,
    /// Report health here.
    pub health: Health,
    /// This adapter's counters.
    pub metrics: Arc<AdapterMetrics>,
    /// Read-only view of the whole bridge.
    pub bridge: Arc<dyn BridgeInfo>,
}

impl std::fmt::Debug for AdapterContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AdapterContext")
            .field("name", &self.name)
            .finish()
    }
}

/// The pieces a test holds to drive an adapter started with
/// [`AdapterContext::standalone`].
#[derive(Debug)]
pub struct StandaloneHarness {
    /// Messages the adapter published into the (absent) router.
    pub ingress_rx: mpsc::Receiver<Message>,
    /// Sets the adapter's interest.
    pub interest_tx: watch::Sender<Arc<[Interest]>>,
}

impl AdapterContext {
    /// A context for running one adapter without a router (tests, tools).
    pub fn standalone(name: &str, queue_capacity: usize) -> (AdapterContext, StandaloneHarness) {
        let name: Arc<str> = Arc::from(name);
        let (tx, ingress_rx) = mpsc::channel(1024);
        let book = Arc::new(AddressBook::default());
        let metrics = Arc::new(AdapterMetrics::default());
        let (interest_tx, interest) = watch::channel(Arc::from(Vec::new()));
        let ctx = AdapterContext {
            name: name.clone(),
            ingress: Ingress::new(name, tx, book.clone(), metrics.clone()),
            deliveries: Arc::new(DeliveryQueue::new(queue_capacity)),
            interest,
            book,
            shutdown: CancellationToken::new(),
            health: Health::default(),
            metrics,
            bridge: Arc::new(NoBridgeInfo),
        };
        (
            ctx,
            StandaloneHarness {
                ingress_rx,
                interest_tx,
            },
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::units::ConfigIssue;

    #[test]
    fn the_first_issue_becomes_the_start_error() {
        assert!(AdapterError::from_issues(Vec::new()).is_ok());
        let e = AdapterError::from_issues(vec![
            ConfigIssue::new("url", "bad scheme"),
            ConfigIssue::new("version", "3 or 5"),
        ])
        .unwrap_err();
        assert_eq!(e.to_string(), "invalid configuration: url: bad scheme");
    }
}
