//! Client mode's sans-IO parts: the bounded, ordered outbox of messages
//! routed to the broker (kept until the broker acknowledged them, so a
//! broker that lost our session gets them again), the 3.1.1 echo window, and
//! the reconnect backoff.

use std::collections::VecDeque;
use std::hash::{Hash, Hasher};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use switchboard_model::{Ack, DropReason};

use crate::mapping::MqttMeta;

/// A publication for the broker.
#[derive(Clone, Debug)]
pub struct OutMsg {
    /// Topic.
    pub topic: Arc<str>,
    /// Payload.
    pub payload: Bytes,
    /// QoS 0..=2.
    pub qos: u8,
    /// Retain.
    pub retain: bool,
    /// MQTT 5 metadata.
    pub meta: MqttMeta,
}

struct Unacked {
    pkid: Option<u16>,
    msg: OutMsg,
    ack: Ack,
}

/// Counters of the outbox.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct OutboxStats {
    /// QoS 0 messages dropped while disconnected.
    pub dropped_qos0: u64,
    /// Messages republished because the broker had lost our session.
    pub republished: u64,
}

/// The bounded, ordered outbox.
pub struct Outbox {
    queue: VecDeque<(OutMsg, Ack)>,
    unacked: VecDeque<Unacked>,
    bytes: usize,
    max_msgs: usize,
    max_bytes: usize,
    /// Counters.
    pub stats: OutboxStats,
}

impl std::fmt::Debug for Outbox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Outbox")
            .field("queued", &self.queue.len())
            .field("unacked", &self.unacked.len())
            .field("bytes", &self.bytes)
            .finish()
    }
}

impl Outbox {
    /// An outbox holding at most `max_msgs` messages and `max_bytes` bytes of
    /// payload (queued plus unacknowledged).
    pub fn new(max_msgs: usize, max_bytes: usize) -> Self {
        Outbox {
            queue: VecDeque::new(),
            unacked: VecDeque::new(),
            bytes: 0,
            max_msgs: max_msgs.max(1),
            max_bytes: max_bytes.max(1),
            stats: OutboxStats::default(),
        }
    }

    /// Messages held (queued + unacknowledged).
    pub fn len(&self) -> usize {
        self.queue.len() + self.unacked.len()
    }

    /// Whether nothing is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether every message taken was handed to the connection (none waits
    /// to be sent; some may wait for their acknowledgement).
    pub fn is_drained(&self) -> bool {
        self.queue.is_empty()
    }

    /// Whether another message may be taken from the router (else the
    /// router's queue, and so the source, is back-pressured).
    pub fn has_room(&self) -> bool {
        self.len() < self.max_msgs && self.bytes < self.max_bytes
    }

    /// Takes a message routed to the broker. While disconnected, QoS 0 is
    /// dropped and counted; QoS >= 1 is kept in order.
    pub fn push(&mut self, msg: OutMsg, ack: Ack, connected: bool) {
        if !connected && msg.qos == 0 {
            self.stats.dropped_qos0 += 1;
            ack.dropped(DropReason::Overflow);
            return;
        }
        self.bytes += msg.payload.len();
        self.queue.push_back((msg, ack));
    }

    /// The connection dropped: queued QoS 0 messages are dropped (counted).
    pub fn on_disconnect(&mut self) {
        let before = self.queue.len();
        let mut kept = VecDeque::with_capacity(before);
        for (m, a) in self.queue.drain(..) {
            if m.qos == 0 {
                self.bytes -= m.payload.len();
                self.stats.dropped_qos0 += 1;
                a.dropped(DropReason::Overflow);
            } else {
                kept.push_back((m, a));
            }
        }
        self.queue = kept;
    }

    /// Hands queued messages to `send` in order until it refuses one
    /// (`false`: the client's request channel is full). QoS 0 messages are
    /// done once handed over; others wait for the broker's acknowledgement.
    pub fn flush(&mut self, mut send: impl FnMut(&OutMsg) -> bool) -> usize {
        let mut n = 0;
        while let Some((m, _)) = self.queue.front() {
            if !send(m) {
                break;
            }
            n += 1;
            let Some((m, ack)) = self.queue.pop_front() else {
                break;
            };
            if m.qos == 0 {
                self.bytes -= m.payload.len();
                ack.done();
            } else {
                self.unacked.push_back(Unacked {
                    pkid: None,
                    msg: m,
                    ack,
                });
            }
        }
        n
    }

    /// Drops the next queued message (the broker could never take it) and
    /// reports it dropped for `reason`; whether there was one.
    pub fn drop_front(&mut self, reason: DropReason) -> bool {
        match self.queue.pop_front() {
            Some((m, ack)) => {
                self.bytes -= m.payload.len();
                ack.dropped(reason);
                true
            }
            None => false,
        }
    }

    /// The client sent a PUBLISH with `pkid` (in order of hand-over; a
    /// retransmission of a known identifier is ignored).
    pub fn on_sent(&mut self, pkid: u16) {
        if pkid == 0 || self.unacked.iter().any(|u| u.pkid == Some(pkid)) {
            return;
        }
        if let Some(u) = self.unacked.iter_mut().find(|u| u.pkid.is_none()) {
            u.pkid = Some(pkid);
        }
    }

    /// The broker acknowledged `pkid` (PUBACK, or PUBCOMP for QoS 2).
    pub fn on_acked(&mut self, pkid: u16) {
        let i = self.unacked.iter().position(|u| u.pkid == Some(pkid));
        if let Some(u) = i.and_then(|i| self.unacked.remove(i)) {
            self.bytes -= u.msg.payload.len();
            u.ack.done();
        }
    }

    /// Connected with no session on the broker: the client library dropped
    /// what it had not finished, so every unacknowledged message goes back
    /// to the front of the queue, in order.
    pub fn on_session_lost(&mut self) {
        self.stats.republished += self.unacked.len() as u64;
        while let Some(u) = self.unacked.pop_back() {
            self.queue.push_front((u.msg, u.ack));
        }
    }

    /// Shutdown: whatever is left is reported failed.
    pub fn fail_all(&mut self) -> usize {
        let n = self.len();
        for (_, a) in self.queue.drain(..) {
            a.failed();
        }
        for u in self.unacked.drain(..) {
            u.ack.failed();
        }
        self.bytes = 0;
        n
    }
}

/// Recent (topic, payload) hashes this client published, to recognise the
/// broker echoing them back (MQTT 3.1.1 has no no-local).
#[derive(Debug)]
pub struct EchoWindow {
    entries: VecDeque<(u64, Instant)>,
    window: Duration,
    max: usize,
}

fn echo_hash(topic: &str, payload: &[u8]) -> u64 {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    topic.hash(&mut h);
    payload.hash(&mut h);
    h.finish()
}

impl EchoWindow {
    /// A window of `window`, holding at most `max` entries.
    pub fn new(window: Duration, max: usize) -> Self {
        EchoWindow {
            entries: VecDeque::new(),
            window,
            max: max.max(1),
        }
    }

    fn expire(&mut self, now: Instant) {
        while let Some((_, t)) = self.entries.front() {
            if now.saturating_duration_since(*t) > self.window {
                self.entries.pop_front();
            } else {
                break;
            }
        }
    }

    /// Whether no publication of ours is remembered.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Notes a publication of ours.
    pub fn note(&mut self, topic: &str, payload: &[u8], now: Instant) {
        self.expire(now);
        if self.entries.len() >= self.max {
            self.entries.pop_front();
        }
        self.entries.push_back((echo_hash(topic, payload), now));
    }

    /// Whether an incoming publication is our own echo (each noted
    /// publication excuses one echo).
    pub fn is_echo(&mut self, topic: &str, payload: &[u8], now: Instant) -> bool {
        self.expire(now);
        let h = echo_hash(topic, payload);
        match self.entries.iter().position(|(x, _)| *x == h) {
            Some(i) => {
                self.entries.remove(i);
                true
            }
            None => false,
        }
    }
}

/// Capped exponential backoff with jitter ("equal jitter": half fixed, half
/// random).
#[derive(Debug)]
pub struct Backoff {
    attempt: u32,
    base: Duration,
    cap: Duration,
    seed: u64,
}

impl Backoff {
    /// Starting at `base`, doubling up to `cap`.
    pub fn new(base: Duration, cap: Duration, seed: u64) -> Self {
        Backoff {
            attempt: 0,
            base,
            cap,
            seed: seed | 1,
        }
    }

    /// The delay before the next attempt.
    pub fn next_delay(&mut self) -> Duration {
        let exp = self.base.saturating_mul(1u32 << self.attempt.min(20));
        let d = exp.min(self.cap);
        self.attempt = self.attempt.saturating_add(1);
        // xorshift64
        self.seed ^= self.seed << 13;
        self.seed ^= self.seed >> 7;
        self.seed ^= self.seed << 17;
        let half = d / 2;
        let nanos = u64::try_from(half.as_nanos()).unwrap_or(u64::MAX).max(1);
        half + Duration::from_nanos(self.seed % nanos)
    }

    /// Connected: start over.
    pub fn reset(&mut self) {
        self.attempt = 0;
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn msg(n: u8, qos: u8) -> OutMsg {
        OutMsg {
            topic: Arc::from("t"),
            payload: Bytes::from(vec![n; 10]),
            qos,
            retain: false,
            meta: MqttMeta::default(),
        }
    }

    #[test]
    fn ordered_bounded_and_republished() {
        let mut o = Outbox::new(3, 1000);
        o.push(msg(1, 1), Ack::none(), false);
        o.push(msg(2, 0), Ack::none(), false);
        assert_eq!(o.stats.dropped_qos0, 1);
        o.push(msg(3, 1), Ack::none(), false);
        o.push(msg(4, 2), Ack::none(), false);
        assert!(!o.has_room());
        // Connected: the client takes two, then its channel is full.
        let mut sent = Vec::new();
        let mut budget = 2;
        o.flush(|m| {
            if budget == 0 {
                return false;
            }
            budget -= 1;
            sent.push(m.payload[0]);
            true
        });
        assert_eq!(sent, [1, 3]);
        o.on_sent(1);
        o.on_sent(2);
        o.on_sent(1); // retransmission
        o.on_acked(1);
        assert_eq!(o.len(), 2);
        // Session lost: message 3 goes back before 4.
        o.on_session_lost();
        let mut again = Vec::new();
        o.flush(|m| {
            again.push(m.payload[0]);
            true
        });
        assert_eq!(again, [3, 4]);
        assert_eq!(o.fail_all(), 2);
        assert!(o.is_empty());
    }

    #[test]
    fn byte_bound() {
        let mut o = Outbox::new(100, 15);
        o.push(msg(1, 1), Ack::none(), true);
        assert!(o.has_room());
        o.push(msg(2, 1), Ack::none(), true);
        assert!(!o.has_room());
        o.on_disconnect();
        assert_eq!(o.len(), 2);
    }

    #[test]
    fn echoes() {
        let mut w = EchoWindow::new(Duration::from_secs(5), 2);
        let t0 = Instant::now();
        w.note("a", b"1", t0);
        assert!(w.is_echo("a", b"1", t0));
        assert!(!w.is_echo("a", b"1", t0));
        w.note("a", b"2", t0);
        assert!(!w.is_echo("a", b"2", t0 + Duration::from_secs(6)));
        for i in 0..3u8 {
            w.note("b", &[i], t0);
        }
        assert!(!w.is_echo("b", &[0], t0));
        assert!(w.is_echo("b", &[2], t0));
    }

    #[test]
    fn backoff_grows_capped_with_jitter() {
        let mut b = Backoff::new(Duration::from_millis(100), Duration::from_secs(2), 42);
        let d: Vec<Duration> = (0..8).map(|_| b.next_delay()).collect();
        assert!(d[0] >= Duration::from_millis(50) && d[0] <= Duration::from_millis(100));
        assert!(d.iter().all(|x| *x <= Duration::from_secs(2)));
        assert!(d[7] >= Duration::from_secs(1));
        b.reset();
        assert!(b.next_delay() <= Duration::from_millis(100));
    }
}
