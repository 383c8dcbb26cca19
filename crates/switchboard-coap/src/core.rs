//! The sans-IO CoAP endpoint: fed datagrams, a peer address and the time,
//! it queues datagrams to send and events for the adapter, and says when it
//! next wants [`Core::handle_timeout`]. One core serves the resources and
//! drives the mount clients over the same socket.

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::Bytes;
use coap_lite::{MessageClass, MessageType, Packet};
use switchboard_model::{Format, Message, Qos, Topic};

use crate::client::{Client, ReqId};
use crate::config::Config;
use crate::dedup::{Dedup, Seen};
use crate::observe::{ObsKey, Observers};
use crate::upload::Uploads;
use crate::wire::{self, Transmit};

/// What the resources look like to the core: the last value of each topic.
pub trait Store {
    /// The last value at `topic`.
    fn latest(&self, topic: &Topic) -> Option<Message>;
    /// Every topic with a value, for `/.well-known/core`.
    fn topics(&self) -> Vec<(Topic, Format)>;
}

/// Something the adapter must do.
#[derive(Clone, Debug, PartialEq)]
pub enum Event {
    /// Publish a value at `coap:topic` (a PUT/POST from a client, or a value
    /// observed on a mounted device).
    Publish {
        /// The topic.
        topic: Topic,
        /// The body.
        payload: Bytes,
        /// Its format.
        format: Format,
        /// CON -> at least once, NON -> at most once.
        qos: Qos,
        /// The peer it came from.
        peer: SocketAddr,
        /// Whether it is the resource's state (PUT, observed values) rather
        /// than an event (POST).
        retain: bool,
    },
    /// Forget the value at `coap:topic` (DELETE).
    Forget {
        /// The topic.
        topic: Topic,
    },
    /// A PUT to a mounted device finished.
    Delivered {
        /// The id given to [`Core::send_to_mount`].
        id: u64,
        /// Whether the device accepted it.
        ok: bool,
    },
}

/// Counters the core keeps.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    /// Datagrams that did not parse.
    pub malformed: u64,
    /// Duplicates answered from the cache or ignored.
    pub duplicates: u64,
    /// Error responses sent (4.xx/5.xx).
    pub error_responses: u64,
    /// Retransmissions of our CON messages.
    pub retransmissions: u64,
    /// Observers removed (RST, timeout, limits).
    pub observers_removed: u64,
    /// Registrations refused by the observer limits.
    pub observers_refused: u64,
    /// Requests acknowledged with an empty ACK because the adapter was behind.
    pub deferred: u64,
    /// Separate responses sent (requests first acknowledged with an empty ACK).
    pub separate_responses: u64,
    /// Separate responses never acknowledged by the client.
    pub separate_responses_lost: u64,
}

/// Who owns one of our outstanding CON messages.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Owner {
    Observer(ObsKey),
    Client(ReqId),
    /// A separate response (RFC 7252 5.2.2) to a request we acknowledged
    /// with an empty ACK.
    Response,
}

#[derive(Debug)]
pub(crate) struct Outgoing {
    pub(crate) peer: SocketAddr,
    pub(crate) bytes: Vec<u8>,
    pub(crate) attempts: u32,
    pub(crate) timeout: Duration,
    pub(crate) due: Instant,
    pub(crate) owner: Owner,
}

/// Transmission and limit parameters, from [`Config`].
#[derive(Clone, Debug)]
pub(crate) struct Params {
    pub(crate) szx: u8,
    pub(crate) max_payload: usize,
    pub(crate) max_age: u32,
    pub(crate) ack_timeout: Duration,
    pub(crate) max_retransmit: u32,
    pub(crate) max_observers: usize,
    pub(crate) max_observers_per_resource: usize,
    pub(crate) max_uploads: usize,
}

/// The sans-IO endpoint.
#[derive(Debug)]
pub struct Core {
    pub(crate) p: Params,
    rng: u64,
    next_mid: u16,
    pub(crate) dedup: Dedup,
    pub(crate) observers: Observers,
    pub(crate) uploads: Uploads,
    pub(crate) outgoing: HashMap<u16, Outgoing>,
    pub(crate) client: Client,
    pub(crate) out: Vec<Transmit>,
    pub(crate) events: VecDeque<Event>,
    pub(crate) stats: Stats,
    /// Publishes accepted while the adapter was behind: their requests got an
    /// empty ACK; each sends its response as a separate CON once its event
    /// fits in `events`.
    pub(crate) deferred: VecDeque<Deferred>,
    /// The latest time the core was given (for work done in `poll_event`).
    pub(crate) last_now: Instant,
}

/// A publish waiting for room in the event queue, with its separate response.
#[derive(Debug)]
pub(crate) struct Deferred {
    pub(crate) peer: SocketAddr,
    pub(crate) event: Event,
    pub(crate) response: Packet,
    pub(crate) notify: (switchboard_model::Message, switchboard_model::Qos),
}

/// Bound on queued events between two drains (a flood of publishes).
pub(crate) const MAX_EVENTS: usize = 4096;

/// Bound on publishes waiting with a separate response; beyond it a request
/// gets 5.03 with Max-Age 1.
pub(crate) const MAX_DEFERRED: usize = 1024;

impl Core {
    /// A core for `config`, seeded with `seed` (message ids, tokens, jitter).
    pub fn new(config: &Config, seed: u64, now: Instant) -> Self {
        let p = Params {
            szx: config.szx(),
            max_payload: config.max_payload.as_usize(),
            max_age: u32::try_from(config.max_age.0.as_secs()).unwrap_or(u32::MAX),
            ack_timeout: config.ack_timeout.0,
            max_retransmit: config.max_retransmit,
            max_observers: config.max_observers,
            max_observers_per_resource: config.max_observers_per_resource,
            max_uploads: config.max_uploads,
        };
        let mut rng = seed | 1;
        let next_mid = (xorshift(&mut rng) & 0xffff) as u16;
        let client = Client::new(config, now);
        Core {
            p,
            rng,
            next_mid,
            dedup: Dedup::new(config.dedup_capacity),
            observers: Observers::default(),
            uploads: Uploads::default(),
            outgoing: HashMap::new(),
            client,
            out: Vec::new(),
            events: VecDeque::new(),
            stats: Stats::default(),
            deferred: VecDeque::new(),
            last_now: now,
        }
    }

    /// Datagrams to send, in order.
    pub fn drain_transmits(&mut self) -> std::vec::Drain<'_, Transmit> {
        self.out.drain(..)
    }

    /// The next event for the adapter.
    pub fn poll_event(&mut self) -> Option<Event> {
        let e = self.events.pop_front();
        self.release_deferred();
        e
    }

    /// Moves deferred publishes into the event queue while it has room, and
    /// sends their separate responses.
    fn release_deferred(&mut self) {
        while self.events.len() < MAX_EVENTS {
            let Some(d) = self.deferred.pop_front() else {
                break;
            };
            let now = self.last_now;
            self.events.push_back(d.event);
            self.notify(&d.notify.0, d.notify.1, now);
            let mid = self.mid();
            let mut r = d.response;
            r.header.message_id = mid;
            let bytes = crate::wire::bytes(&r);
            self.stats.separate_responses += 1;
            self.send_con(d.peer, mid, bytes, Owner::Response, now);
        }
    }

    /// Whether the next event is a publish (which needs room in the router).
    pub fn has_publish_first(&self) -> bool {
        matches!(self.events.front(), Some(Event::Publish { .. }))
    }

    /// Whether a publish may still wait with a separate response.
    pub(crate) fn can_defer(&self) -> bool {
        self.deferred.len() < MAX_DEFERRED
    }

    /// Counters.
    pub fn stats(&self) -> &Stats {
        &self.stats
    }

    /// Entries held in the core's tables (for bounded-state checks).
    pub fn state_size(&self) -> usize {
        self.dedup.len()
            + self.observers.len()
            + self.uploads.len()
            + self.outgoing.len()
            + self.client.len()
            + self.events.len()
    }

    pub(crate) fn mid(&mut self) -> u16 {
        loop {
            self.next_mid = self.next_mid.wrapping_add(1);
            if !self.outgoing.contains_key(&self.next_mid) {
                return self.next_mid;
            }
        }
    }

    pub(crate) fn random(&mut self) -> u64 {
        xorshift(&mut self.rng)
    }

    /// Whether the adapter has fallen behind on events (a PUT then gets 5.03
    /// instead of a 2.04 for a publish that would be lost).
    pub(crate) fn events_full(&self) -> bool {
        self.events.len() >= MAX_EVENTS
    }

    pub(crate) fn push_event(&mut self, e: Event) {
        if self.events.len() < MAX_EVENTS {
            self.events.push_back(e);
        }
    }

    pub(crate) fn send(&mut self, to: SocketAddr, bytes: Vec<u8>) {
        self.out.push(Transmit { to, bytes });
    }

    /// Sends a CON message and tracks it for retransmission (RFC 7252 4.2:
    /// initial timeout random in [ACK_TIMEOUT, ACK_TIMEOUT * 1.5]).
    pub(crate) fn send_con(
        &mut self,
        to: SocketAddr,
        mid: u16,
        bytes: Vec<u8>,
        owner: Owner,
        now: Instant,
    ) {
        let base = self.p.ack_timeout;
        let jitter = (self.random() % 1000) as u32;
        let timeout = base + base * jitter / 2000;
        self.out.push(Transmit {
            to,
            bytes: bytes.clone(),
        });
        self.outgoing.insert(
            mid,
            Outgoing {
                peer: to,
                bytes,
                attempts: 0,
                timeout,
                due: now + timeout,
                owner,
            },
        );
    }

    /// When [`Core::handle_timeout`] should next be called.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let a = self.outgoing.values().map(|o| o.due).min();
        let b = self.client.next_timer();
        let c = self.uploads.next_expiry();
        [a, b, c].into_iter().flatten().min()
    }

    /// Retransmits, gives up, expires and re-registers what is due at `now`.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.last_now = now;
        let due: Vec<u16> = self
            .outgoing
            .iter()
            .filter(|(_, o)| o.due <= now)
            .map(|(m, _)| *m)
            .collect();
        for mid in due {
            let Some(o) = self.outgoing.get_mut(&mid) else {
                continue;
            };
            if o.attempts < self.p.max_retransmit {
                o.attempts += 1;
                o.timeout *= 2;
                o.due = now + o.timeout;
                let t = Transmit {
                    to: o.peer,
                    bytes: o.bytes.clone(),
                };
                self.out.push(t);
                self.stats.retransmissions += 1;
            } else if let Some(o) = self.outgoing.remove(&mid) {
                match o.owner {
                    Owner::Observer(key) => {
                        self.stats.observers_removed += 1;
                        self.observers.remove(&key);
                    }
                    Owner::Client(id) => self.client_failed(id, now),
                    Owner::Response => self.stats.separate_responses_lost += 1,
                }
            }
        }
        self.uploads.expire(now);
        self.client_timers(now);
    }

    /// Handles one received datagram from `peer`.
    pub fn handle_datagram(
        &mut self,
        peer: SocketAddr,
        data: &[u8],
        store: &dyn Store,
        now: Instant,
    ) {
        self.last_now = now;
        if data.len() < 4 || data[0] >> 6 != 1 {
            self.stats.malformed += 1;
            return;
        }
        let ty = (data[0] >> 4) & 3;
        let mid = u16::from_be_bytes([data[2], data[3]]);
        let pkt = match Packet::from_bytes(data) {
            Ok(p) => p,
            Err(_) => {
                self.stats.malformed += 1;
                if ty == 0 {
                    self.send(peer, wire::empty(MessageType::Reset, mid));
                }
                return;
            }
        };
        // A payload marker followed by no payload is a format error that
        // coap-lite lets through; its re-encoding is then shorter.
        if pkt.payload.is_empty()
            && data.last() == Some(&0xff)
            && wire::bytes(&pkt).len() != data.len()
        {
            self.stats.malformed += 1;
            if ty == 0 {
                self.send(peer, wire::empty(MessageType::Reset, mid));
            }
            return;
        }
        let t = pkt.header.get_type();
        match pkt.header.code {
            MessageClass::Empty => {
                if !pkt.get_token().is_empty() || data.len() > 4 {
                    // Format error: reject CON, ignore others.
                    self.stats.malformed += 1;
                    if t == MessageType::Confirmable {
                        self.send(peer, wire::empty(MessageType::Reset, mid));
                    }
                    return;
                }
                match t {
                    MessageType::Confirmable => {
                        self.send(peer, wire::empty(MessageType::Reset, mid))
                    }
                    MessageType::Acknowledgement => self.on_ack(peer, mid, now),
                    MessageType::Reset => self.on_reset(peer, mid, now),
                    MessageType::NonConfirmable => self.stats.malformed += 1,
                }
            }
            MessageClass::Request(_) | MessageClass::Reserved(0x08..=0x1f) => {
                if matches!(t, MessageType::Acknowledgement | MessageType::Reset) {
                    self.stats.malformed += 1;
                    return;
                }
                let con = t == MessageType::Confirmable;
                match self.dedup.check(peer, mid, now, con) {
                    Seen::Duplicate(resp) => {
                        // A duplicate CON gets the same response again; a
                        // duplicate NON is silently ignored (RFC 7252 4.5).
                        self.stats.duplicates += 1;
                        if let Some(r) = resp.filter(|_| con) {
                            self.send(peer, r);
                        }
                    }
                    Seen::New => {
                        let resp = self.handle_request(peer, &pkt, store, now);
                        if let Some(resp) = resp {
                            if let MessageClass::Response(rt) = resp.header.code
                                && rt.is_error()
                            {
                                self.stats.error_responses += 1;
                            }
                            let b = wire::bytes(&resp);
                            self.dedup.set_response(peer, mid, &b);
                            self.send(peer, b);
                        }
                    }
                }
            }
            MessageClass::Response(_) | MessageClass::Reserved(0x40..=0xbf) => {
                if t == MessageType::Reset {
                    self.stats.malformed += 1;
                    return;
                }
                if t == MessageType::Acknowledgement {
                    // A piggybacked response settles our CON.
                    if self.outgoing.get(&mid).is_some_and(|o| o.peer == peer) {
                        self.outgoing.remove(&mid);
                    }
                } else {
                    let con = t == MessageType::Confirmable;
                    if let Seen::Duplicate(resp) = self.dedup.check(peer, mid, now, con) {
                        self.stats.duplicates += 1;
                        if let Some(r) = resp {
                            self.send(peer, r);
                        }
                        return;
                    }
                }
                let known = self.client_response(peer, &pkt, now);
                if t == MessageType::Acknowledgement {
                    return;
                }
                let reply = if known {
                    (t == MessageType::Confirmable)
                        .then(|| wire::empty(MessageType::Acknowledgement, mid))
                } else {
                    Some(wire::empty(MessageType::Reset, mid))
                };
                if let Some(r) = reply {
                    self.dedup.set_response(peer, mid, &r);
                    self.send(peer, r);
                }
            }
            MessageClass::Reserved(_) => {
                self.stats.malformed += 1;
                if t == MessageType::Confirmable {
                    self.send(peer, wire::empty(MessageType::Reset, mid));
                }
            }
        }
    }

    fn on_ack(&mut self, peer: SocketAddr, mid: u16, now: Instant) {
        let Some(o) = self.outgoing.get(&mid) else {
            return;
        };
        if o.peer != peer {
            return;
        }
        let Some(o) = self.outgoing.remove(&mid) else {
            return;
        };
        match o.owner {
            Owner::Observer(key) => self.observer_acked(&key, now),
            Owner::Client(id) => self.client_acked(id, now),
            Owner::Response => {}
        }
    }

    fn on_reset(&mut self, peer: SocketAddr, mid: u16, now: Instant) {
        if self.outgoing.get(&mid).is_some_and(|o| o.peer == peer) {
            if let Some(o) = self.outgoing.remove(&mid) {
                match o.owner {
                    Owner::Observer(key) => {
                        self.stats.observers_removed += 1;
                        self.observers.remove(&key);
                    }
                    Owner::Client(id) => self.client_failed(id, now),
                    Owner::Response => self.stats.separate_responses_lost += 1,
                }
            }
            return;
        }
        if self.observers.remove_by_non_mid(peer, mid) {
            self.stats.observers_removed += 1;
        }
    }
}

fn xorshift(s: &mut u64) -> u64 {
    let mut x = *s;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    *s = x;
    x
}
