//! Counters shared between adapters, the router and the metrics endpoint, and
//! each adapter's health.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use serde::Serialize;

/// Why a message was not delivered.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DropReason {
    /// It would have gone back to an address it already passed (loop guard).
    Loop,
    /// Its hop count reached the limit.
    HopLimit,
    /// A QoS 0 message evicted from (or refused by) a full queue.
    Overflow,
    /// Its payload could not be converted to the route's format.
    Transcode,
    /// The destination adapter does not exist or has stopped.
    NoAdapter,
    /// The destination queue was closed (shutdown).
    Closed,
    /// The template produced an invalid topic.
    BadTopic,
    /// The payload exceeded the destination's limit.
    TooLarge,
}

impl DropReason {
    /// Every reason, in a fixed order.
    pub const ALL: [DropReason; 8] = [
        DropReason::Loop,
        DropReason::HopLimit,
        DropReason::Overflow,
        DropReason::Transcode,
        DropReason::NoAdapter,
        DropReason::Closed,
        DropReason::BadTopic,
        DropReason::TooLarge,
    ];

    /// The reason's label in metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            DropReason::Loop => "loop",
            DropReason::HopLimit => "hop_limit",
            DropReason::Overflow => "overflow",
            DropReason::Transcode => "transcode",
            DropReason::NoAdapter => "no_adapter",
            DropReason::Closed => "closed",
            DropReason::BadTopic => "bad_topic",
            DropReason::TooLarge => "too_large",
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// Counters of one route.
#[derive(Debug, Default)]
pub struct RouteCounters {
    /// Messages whose source matched the route.
    pub matched: AtomicU64,
    /// Deliveries a sink acknowledged.
    pub delivered: AtomicU64,
    /// Deliveries a sink gave up on.
    pub failed: AtomicU64,
    dropped: [AtomicU64; 8],
}

impl RouteCounters {
    /// Counts a drop.
    pub fn count_drop(&self, reason: DropReason) {
        self.dropped[reason.index()].fetch_add(1, Ordering::Relaxed);
    }

    /// Drops counted for `reason`.
    pub fn dropped(&self, reason: DropReason) -> u64 {
        self.dropped[reason.index()].load(Ordering::Relaxed)
    }

    /// A point-in-time copy.
    pub fn snapshot(&self) -> RouteCountersSnapshot {
        RouteCountersSnapshot {
            matched: self.matched.load(Ordering::Relaxed),
            delivered: self.delivered.load(Ordering::Relaxed),
            failed: self.failed.load(Ordering::Relaxed),
            dropped: DropReason::ALL
                .iter()
                .map(|r| (r.as_str(), self.dropped(*r)))
                .filter(|(_, n)| *n > 0)
                .collect(),
        }
    }
}

/// A copy of [`RouteCounters`] for reporting.
#[derive(Clone, Debug, Default, Serialize, PartialEq, Eq)]
pub struct RouteCountersSnapshot {
    /// Messages matched.
    pub matched: u64,
    /// Deliveries acknowledged.
    pub delivered: u64,
    /// Deliveries failed.
    pub failed: u64,
    /// Drops by reason (only non-zero reasons).
    pub dropped: std::collections::BTreeMap<&'static str, u64>,
}

/// One named counter an adapter registers for `/metrics`.
#[derive(Debug, Clone)]
pub struct Counter {
    /// Metric name, without the `switchboard_` prefix.
    pub name: &'static str,
    /// Help text.
    pub help: &'static str,
    /// The value.
    pub value: Arc<AtomicU64>,
}

impl Counter {
    /// Adds `n`.
    pub fn add(&self, n: u64) {
        self.value.fetch_add(n, Ordering::Relaxed);
    }
    /// Adds one.
    pub fn inc(&self) {
        self.add(1);
    }
    /// The current value.
    pub fn get(&self) -> u64 {
        self.value.load(Ordering::Relaxed)
    }
}

/// Counters of one adapter instance.
#[derive(Debug, Default)]
pub struct AdapterMetrics {
    /// Messages received from the adapter's peers into the bridge.
    pub received: AtomicU64,
    /// Messages the adapter delivered to its peers.
    pub sent: AtomicU64,
    /// Protocol errors (malformed input, refused requests, failed sends).
    pub errors: AtomicU64,
    /// Messages dropped by the adapter (limits, disconnected peers).
    pub dropped: AtomicU64,
    extra: Mutex<Vec<Counter>>,
    detail: Mutex<DetailSource>,
}

/// What an adapter reports about itself beyond its counters, for `/healthz`
/// and `/metrics`: facts about the whole adapter (the DDS participant) and
/// figures per topic (matched endpoints and samples per DDS topic).
#[derive(Clone, Debug, Default, Serialize)]
pub struct Detail {
    /// Facts (`participant` = GUID, `domain` = `0`).
    pub facts: BTreeMap<String, String>,
    /// Per topic: figure name (a metric name without the `switchboard_`
    /// prefix; counters end in `_total`, others are gauges) -> value.
    pub topics: BTreeMap<String, BTreeMap<&'static str, u64>>,
}

type DetailFn = Arc<dyn Fn() -> Detail + Send + Sync>;

#[derive(Default)]
struct DetailSource(Option<DetailFn>);

impl std::fmt::Debug for DetailSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.0.is_some() { "Some(..)" } else { "None" })
    }
}

impl AdapterMetrics {
    /// Registers (or finds) an adapter-specific counter such as
    /// `ws_slow_client_drops`.
    pub fn counter(&self, name: &'static str, help: &'static str) -> Counter {
        let mut extra = self.extra.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(c) = extra.iter().find(|c| c.name == name) {
            return c.clone();
        }
        let c = Counter {
            name,
            help,
            value: Arc::new(AtomicU64::new(0)),
        };
        extra.push(c.clone());
        c
    }

    /// The adapter-specific counters.
    pub fn extra(&self) -> Vec<Counter> {
        self.extra.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Sets what [`AdapterMetrics::detail`] reports (called when `/healthz`
    /// or `/metrics` is read, so it should be cheap).
    pub fn set_detail(&self, f: impl Fn() -> Detail + Send + Sync + 'static) {
        self.detail.lock().unwrap_or_else(|e| e.into_inner()).0 = Some(Arc::new(f));
    }

    /// The adapter's [`Detail`], if it reports one.
    pub fn detail(&self) -> Option<Detail> {
        let f = self
            .detail
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .0
            .clone();
        f.map(|f| f())
    }

    /// Increments `received`.
    pub fn inc_received(&self) {
        self.received.fetch_add(1, Ordering::Relaxed);
    }
    /// Increments `sent`.
    pub fn inc_sent(&self) {
        self.sent.fetch_add(1, Ordering::Relaxed);
    }
    /// Increments `errors`.
    pub fn inc_errors(&self) {
        self.errors.fetch_add(1, Ordering::Relaxed);
    }
    /// Increments `dropped`.
    pub fn inc_dropped(&self) {
        self.dropped.fetch_add(1, Ordering::Relaxed);
    }
}

/// Whether an adapter is up, and why not.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct HealthState {
    /// Up and serving.
    pub up: bool,
    /// Why it is down (or a note while starting).
    pub reason: Option<String>,
}

/// A handle through which an adapter reports its health.
#[derive(Clone, Debug)]
pub struct Health(Arc<Mutex<HealthState>>);

impl Default for Health {
    fn default() -> Self {
        Health(Arc::new(Mutex::new(HealthState {
            up: false,
            reason: Some("starting".into()),
        })))
    }
}

impl Health {
    /// Reports the adapter up.
    pub fn up(&self) {
        *self.0.lock().unwrap_or_else(|e| e.into_inner()) = HealthState {
            up: true,
            reason: None,
        };
    }

    /// Reports the adapter down with a reason.
    pub fn down(&self, reason: impl Into<String>) {
        *self.0.lock().unwrap_or_else(|e| e.into_inner()) = HealthState {
            up: false,
            reason: Some(reason.into()),
        };
    }

    /// The current state.
    pub fn get(&self) -> HealthState {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}
