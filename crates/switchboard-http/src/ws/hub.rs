//! The WebSocket hub: every connected client with its subscriptions and its
//! bounded outgoing queue. A message is serialized once and shared by every
//! client it goes to. A full queue drops its oldest QoS 0 message (counted);
//! a client whose queue holds only QoS >= 1 messages when another arrives, or
//! that stays full for longer than `slow_timeout`, is closed with 1008.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use bytes::Bytes;
use switchboard_model::{Counter, Message, Pattern, Qos};
use tokio::sync::Notify;
use tokio_tungstenite::tungstenite::Utf8Bytes;

use crate::acl::ReadFilter;

/// One frame (or a text frame followed by a binary one) to send.
#[derive(Clone, Debug)]
pub(crate) struct Outgoing {
    /// Shared by every client the frame goes to (a reference count, no copy).
    pub(crate) text: Utf8Bytes,
    pub(crate) binary: Option<Bytes>,
    pub(crate) qos: Qos,
}

struct Sub {
    pattern: Pattern,
    filter: ReadFilter,
    binary: bool,
}

struct Queue {
    items: VecDeque<Outgoing>,
    full_since: Option<Instant>,
}

/// One connected client.
pub(crate) struct Client {
    subs: RwLock<Vec<Sub>>,
    queue: Mutex<Queue>,
    pub(crate) notify: Notify,
    closing: AtomicBool,
    pub(crate) close_reason: Mutex<Option<(u16, String)>>,
    capacity: usize,
}

impl Client {
    /// Takes everything queued.
    pub(crate) fn drain_into(&self, batch: &mut VecDeque<Outgoing>) {
        let mut q = self.queue.lock().unwrap_or_else(|e| e.into_inner());
        q.full_since = None;
        // Swapped with the writer's empty buffer: neither side allocates
        // once both have grown to the usual burst.
        std::mem::swap(&mut q.items, batch);
    }

    /// Queues a frame for this client alone (replies, retained snapshots).
    pub(crate) fn push_direct(&self, o: Outgoing) {
        self.queue
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .items
            .push_back(o);
        self.notify.notify_one();
    }

    /// Asks the writer to close the connection with `code`.
    pub(crate) fn close(&self, code: u16, reason: &str) {
        if !self.closing.swap(true, Ordering::AcqRel) {
            *self.close_reason.lock().unwrap_or_else(|e| e.into_inner()) =
                Some((code, reason.to_owned()));
        }
        self.notify.notify_one();
    }

    /// Whether a close was requested.
    pub(crate) fn is_closing(&self) -> bool {
        self.closing.load(Ordering::Acquire)
    }

    /// Number of subscriptions.
    pub(crate) fn sub_count(&self) -> usize {
        self.subs.read().unwrap_or_else(|e| e.into_inner()).len()
    }

    /// Adds (or replaces) a subscription.
    pub(crate) fn subscribe(&self, pattern: Pattern, filter: ReadFilter, binary: bool) {
        let mut subs = self.subs.write().unwrap_or_else(|e| e.into_inner());
        subs.retain(|s| s.pattern != pattern);
        subs.push(Sub {
            pattern,
            filter,
            binary,
        });
    }

    /// Removes a subscription; whether it existed.
    pub(crate) fn unsubscribe(&self, pattern: &Pattern) -> bool {
        let mut subs = self.subs.write().unwrap_or_else(|e| e.into_inner());
        let before = subs.len();
        subs.retain(|s| s.pattern != *pattern);
        subs.len() != before
    }

    /// Whether `m` goes to this client, and as binary.
    fn wants(&self, m: &Message) -> Option<bool> {
        let subs = self.subs.read().unwrap_or_else(|e| e.into_inner());
        let mut hit = None;
        for s in subs.iter() {
            if s.pattern.matches(&m.topic) && s.filter.allows(&m.topic) {
                hit = Some(hit.unwrap_or(false) || s.binary);
            }
        }
        hit
    }
}

/// Counters of the hub.
#[derive(Clone)]
pub(crate) struct HubCounters {
    pub(crate) dropped: Counter,
    pub(crate) slow_closed: Counter,
}

/// Every client of one WebSocket adapter.
pub(crate) struct Hub {
    clients: RwLock<Vec<Arc<Client>>>,
    adapter: Arc<str>,
    capacity: usize,
    slow_timeout: Duration,
    counters: HubCounters,
    next_id: AtomicU64,
}

impl Hub {
    pub(crate) fn new(
        adapter: Arc<str>,
        capacity: usize,
        slow_timeout: Duration,
        counters: HubCounters,
    ) -> Self {
        Hub {
            clients: RwLock::new(Vec::new()),
            adapter,
            capacity: capacity.max(1),
            slow_timeout,
            counters,
            next_id: AtomicU64::new(0),
        }
    }

    /// Registers a client.
    pub(crate) fn join(&self) -> Arc<Client> {
        self.next_id.fetch_add(1, Ordering::Relaxed);
        let c = Arc::new(Client {
            subs: RwLock::new(Vec::new()),
            queue: Mutex::new(Queue {
                items: VecDeque::new(),
                full_since: None,
            }),
            notify: Notify::new(),
            closing: AtomicBool::new(false),
            close_reason: Mutex::new(None),
            capacity: self.capacity,
        });
        self.clients
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .push(c.clone());
        c
    }

    /// Removes a client.
    pub(crate) fn leave(&self, c: &Arc<Client>) {
        self.clients
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .retain(|x| !Arc::ptr_eq(x, c));
    }

    /// Connected clients.
    pub(crate) fn len(&self) -> usize {
        self.clients.read().unwrap_or_else(|e| e.into_inner()).len()
    }

    /// The frames of `m`: (as text with base64, as text marker + binary).
    pub(crate) fn frames(&self, m: &Message, binary: bool) -> Outgoing {
        let text = Utf8Bytes::from(super::ops::msg(&self.adapter, m, binary));
        let is_marker = binary && text.as_str().contains("\"binary\":true");
        Outgoing {
            text,
            binary: is_marker.then(|| m.payload.clone()),
            qos: m.qos,
        }
    }

    /// Sends `m` to every client subscribed to its topic.
    pub(crate) fn dispatch(&self, m: &Message) {
        let clients = self.clients.read().unwrap_or_else(|e| e.into_inner());
        let mut plain: Option<Outgoing> = None;
        let mut bin: Option<Outgoing> = None;
        for c in clients.iter() {
            let Some(binary) = c.wants(m) else { continue };
            let o = if binary {
                bin.get_or_insert_with(|| self.frames(m, true)).clone()
            } else {
                plain.get_or_insert_with(|| self.frames(m, false)).clone()
            };
            self.push(c, o);
        }
    }

    fn push(&self, c: &Client, o: Outgoing) {
        if c.is_closing() {
            return;
        }
        let mut q = c.queue.lock().unwrap_or_else(|e| e.into_inner());
        if q.items.len() < c.capacity {
            q.items.push_back(o);
            drop(q);
            c.notify.notify_one();
            return;
        }
        let now = Instant::now();
        let since = *q.full_since.get_or_insert(now);
        let evict = q.items.iter().position(|x| x.qos == Qos::AtMostOnce);
        match (evict, o.qos) {
            (Some(i), _) => {
                q.items.remove(i);
                q.items.push_back(o);
                self.counters.dropped.inc();
            }
            (None, Qos::AtMostOnce) => self.counters.dropped.inc(),
            (None, _) => {
                drop(q);
                self.counters.slow_closed.inc();
                c.close(
                    1008,
                    "too slow: the outgoing queue is full of QoS >= 1 messages",
                );
                return;
            }
        }
        if now.duration_since(since) > self.slow_timeout {
            drop(q);
            self.counters.slow_closed.inc();
            c.close(1008, "too slow: the outgoing queue stayed full");
        }
    }
}
