//! The client's write side, shared between its task and the router: the
//! encoded bytes waiting for the socket, and the express lane that writes a
//! QoS 0 delivery to a plain-TCP broker connection straight from the
//! routing thread, with no hop to the client's task.
//!
//! Everything the client writes goes through [`Lane::lock`]: its task
//! encodes into `wbuf` and writes from it under the lock (never across an
//! `.await`), and the express lane appends behind it under the same lock,
//! so packets never interleave. Order against deliveries the task took from
//! its queue is kept by [`DeliveryQueue::settle`]: the task settles only
//! when everything it took is encoded, and any pop unsettles.

use std::sync::{Arc, Mutex, MutexGuard};

use bytes::{Buf, BytesMut};
use switchboard_model::{AdapterMetrics, Counter, Delivery, DeliveryQueue, Express};
use tokio::net::tcp::OwnedWriteHalf;
use tokio::sync::Notify;

use crate::mapping::meta_of;
use crate::wire;

/// Encoded bytes not yet written beyond which no publication is encoded.
pub(crate) const WRITE_HIGH: usize = 64 * 1024;

/// What [`Lane::lock`] guards.
pub(crate) struct Out {
    /// Encoded, not yet written.
    pub(crate) wbuf: BytesMut,
    /// The connection's socket, when it is plain TCP.
    tcp: Option<Arc<OwnedWriteHalf>>,
    /// Whether the task lets QoS 0 deliveries past it (connected, nothing
    /// of its own that must go first, no echo bookkeeping).
    open: bool,
    /// MQTT 5 framing (an empty property list).
    v5: bool,
    /// The largest packet the broker takes.
    max_packet: usize,
}

/// The shared write side of one client adapter.
pub(crate) struct Lane {
    out: Mutex<Out>,
    /// Wakes the client's task when the express lane left bytes unwritten.
    pub(crate) wake: Notify,
    max_payload: usize,
    metrics: Arc<AdapterMetrics>,
    /// Deliveries the express lane wrote.
    sent: Counter,
}

impl Lane {
    pub(crate) fn new(v5: bool, max_payload: usize, metrics: Arc<AdapterMetrics>) -> Lane {
        Lane {
            out: Mutex::new(Out {
                wbuf: BytesMut::with_capacity(8 * 1024),
                tcp: None,
                open: false,
                v5,
                max_packet: 0,
            }),
            wake: Notify::new(),
            max_payload,
            sent: metrics.counter(
                "mqtt_client_express_sent",
                "QoS 0 deliveries written to the broker straight from the routing thread.",
            ),
            metrics,
        }
    }

    /// The write side. Never held across an `.await`.
    pub(crate) fn lock(&self) -> MutexGuard<'_, Out> {
        // Every holder leaves the buffer whole (appends and advances are
        // single steps), so a poisoned lock is still consistent.
        self.out.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A connection is up (its handshake written through this buffer): its
    /// socket, when plain TCP, is the express lane's; `max_packet` is the
    /// largest packet its broker takes.
    pub(crate) fn attach(&self, tcp: Option<Arc<OwnedWriteHalf>>, max_packet: usize) {
        let mut o = self.lock();
        o.tcp = tcp;
        o.open = false;
        o.max_packet = max_packet;
    }

    /// The connection is gone: what it had not written goes with it.
    pub(crate) fn detach(&self) {
        let mut o = self.lock();
        o.wbuf.clear();
        o.tcp = None;
        o.open = false;
    }

    /// The task's verdict after each turn: whether QoS 0 deliveries may go
    /// past it now (`open`: connected, everything it took from `queue`
    /// encoded). Settles or unsettles `queue` under the lane's lock.
    pub(crate) fn settle(&self, queue: &DeliveryQueue, open: bool) {
        let mut o = self.lock();
        o.open = open && o.tcp.is_some();
        if o.open {
            queue.settle();
        } else {
            queue.unsettle();
        }
    }
}

impl Out {
    /// Appends a QoS 0 PUBLISH without properties (3.1.1, or MQTT 5 with
    /// an empty property list); whether it fits the broker's limits and was
    /// written. The task's and the express lane's one encoder for it.
    pub(crate) fn write_plain(&mut self, topic: &str, payload: &[u8], retain: bool) -> bool {
        let p = wire::PlainPublish {
            topic,
            payload,
            qos: 0,
            retain,
            dup: false,
            pkid: 0,
        };
        wire::plain_size(&p, self.v5).is_some_and(|n| n <= self.max_packet)
            && wire::write_plain(&mut self.wbuf, &p, self.v5).is_some()
    }
}

impl Express for Lane {
    fn send(&self, d: Delivery, queue: &DeliveryQueue) -> Result<(), Delivery> {
        let mut g = self.lock();
        let o = &mut *g;
        // Re-checked under the lock the task settles under: nothing it took
        // is still unencoded, and nothing waits in the queue.
        if o.tcp.is_none() || !o.open || o.wbuf.len() >= WRITE_HIGH || !queue.is_settled() {
            return Err(d);
        }
        let m = &d.message;
        // The task's own path counts what it cannot send.
        if m.payload.len() > self.max_payload || (o.v5 && !meta_of(m).is_empty()) {
            return Err(d);
        }
        let behind = !o.wbuf.is_empty();
        if !o.write_plain(m.topic.as_str(), &m.payload, m.retain) {
            return Err(d);
        }
        // A write error is the task's to find on its next write; a socket
        // that takes nothing now leaves the bytes to the task.
        if !behind
            && let Some(tcp) = &o.tcp
            && let Ok(n) = tcp.try_write(&o.wbuf)
        {
            o.wbuf.advance(n);
        }
        let left = !o.wbuf.is_empty();
        drop(g);
        if left {
            self.wake.notify_one();
        }
        self.sent.inc();
        self.metrics.inc_sent();
        d.ack.done();
        Ok(())
    }
}
