//! The broker core, sans-IO: sessions (persistent or not), the subscription
//! index, per-client bounded queues, the outbound QoS 1/2 window with packet
//! identifiers, and inbound QoS 2 state. Connection tasks call it under one
//! lock; it never blocks and never does I/O. Connections are woken through a
//! `Notify` when their queue gains messages or they are taken over.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};
use std::time::{Duration, Instant};

use switchboard_model::{AdapterMetrics, Counter};
use tokio::sync::Notify;

use super::codec::{ConnectReq, Outbound, Publish, SubReq};
use super::subs::{SubOpts, SubTree, split_share};

/// Bounds of the broker.
#[derive(Clone, Debug)]
pub struct Limits {
    /// Connected clients at once.
    pub max_clients: usize,
    /// Sessions held (connected or persistent offline).
    pub max_sessions: usize,
    /// Outbound QoS 1/2 messages awaiting acknowledgement per client; also
    /// our receive maximum for inbound QoS 2.
    pub max_inflight: u16,
    /// Messages queued per client beyond the inflight window.
    pub max_queued: usize,
}

/// The link between a session and the connection task serving it.
#[derive(Clone, Debug)]
pub struct ConnLink {
    /// Unique per connection.
    pub id: u64,
    /// Woken when there is something to send or the connection must close.
    pub wake: Arc<Notify>,
    /// Non-zero: close with this MQTT 5 reason (e.g. 0x8E session taken over).
    pub kick: Arc<AtomicU8>,
    receive_max: u16,
    max_packet: Option<u32>,
}

#[derive(Debug)]
enum Flight {
    /// Sent, awaiting PUBACK (QoS 1) or PUBREC (QoS 2).
    Sent(Publish),
    /// PUBREL sent, awaiting PUBCOMP.
    Released,
}

#[derive(Debug)]
struct Session {
    conn: Option<ConnLink>,
    expiry: u32,
    offline_since: Option<Instant>,
    subs: HashMap<String, SubOpts>,
    queue: VecDeque<Publish>,
    inflight: VecDeque<(u16, Flight)>,
    incoming_qos2: HashSet<u16>,
    next_pkid: u16,
}

impl Session {
    fn new(expiry: u32) -> Self {
        Session {
            conn: None,
            expiry,
            offline_since: None,
            subs: HashMap::new(),
            queue: VecDeque::new(),
            inflight: VecDeque::new(),
            incoming_qos2: HashSet::new(),
            next_pkid: 1,
        }
    }

    fn alloc_pkid(&mut self) -> u16 {
        loop {
            let id = self.next_pkid;
            self.next_pkid = self.next_pkid.checked_add(1).unwrap_or(1);
            if !self.inflight.iter().any(|(p, _)| *p == id) {
                return id;
            }
        }
    }

    fn expired(&self, now: Instant) -> bool {
        match (self.offline_since, self.expiry) {
            (_, u32::MAX) | (None, _) => false,
            (Some(t), e) => now.saturating_duration_since(t) >= Duration::from_secs(u64::from(e)),
        }
    }
}

/// Counters the core keeps (shared with the adapter's metrics).
#[derive(Debug, Clone)]
pub struct CoreStats {
    /// Messages dropped because a client's queue was full.
    pub queue_full: Counter,
    /// Messages dropped because they exceed a client's maximum packet size.
    pub too_large_for_client: Counter,
    /// Offline sessions evicted to make room.
    pub sessions_evicted: Counter,
    /// Messages whose MQTT 5 expiry passed while queued.
    pub expired: Counter,
}

impl CoreStats {
    /// Registers the counters in `m`.
    pub fn new(m: &AdapterMetrics) -> Self {
        CoreStats {
            queue_full: m.counter(
                "mqtt_client_queue_full",
                "Messages dropped because a client's queue (max_queued) was full.",
            ),
            too_large_for_client: m.counter(
                "mqtt_too_large_for_client",
                "Messages over a client's maximum packet size, not sent to it.",
            ),
            sessions_evicted: m.counter(
                "mqtt_sessions_evicted",
                "Offline sessions evicted to make room (max_sessions).",
            ),
            expired: m.counter(
                "mqtt_messages_expired",
                "Messages whose MQTT 5 expiry passed while queued.",
            ),
        }
    }
}

/// What an inbound QoS 2 PUBLISH is to the session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Qos2In {
    /// First time: deliver it.
    New,
    /// Seen before (awaiting PUBREL): answer PUBREC only.
    Duplicate,
    /// Beyond the receive maximum.
    TooMany,
}

/// Why a connection was refused (an MQTT 5 CONNACK reason code).
pub type Refusal = u8;

/// The broker state.
#[derive(Debug)]
pub struct Core {
    limits: Limits,
    sessions: HashMap<Arc<str>, Session>,
    tree: SubTree,
    online: usize,
    next_conn: u64,
    /// Counters.
    pub stats: CoreStats,
}

/// Sets the subscription identifiers a PUBLISH carries to one client (the
/// shared properties are copied only when there are some).
pub fn with_sub_ids(p: &mut Publish, ids: Vec<u32>) {
    if ids.is_empty() {
        return;
    }
    let props = p.props.get_or_insert_with(Default::default);
    Arc::make_mut(props).sub_ids = ids;
}

/// Approximate encoded size of a PUBLISH (for the client's maximum packet size).
fn approx_size(p: &Publish) -> usize {
    let props = p.props.as_ref().map_or(0, |pp| {
        pp.user
            .iter()
            .map(|(k, v)| k.len() + v.len() + 5)
            .sum::<usize>()
            + pp.content_type.as_ref().map_or(0, |c| c.len() + 3)
            + pp.response_topic.as_ref().map_or(0, |c| c.len() + 3)
            + pp.correlation.as_ref().map_or(0, |c| c.len() + 3)
            + pp.sub_ids.len() * 5
            + 16
    });
    5 + 2 + p.topic.len() + 2 + 4 + props + p.payload.len()
}

impl Core {
    /// An empty broker counting into `stats`.
    pub fn new(limits: Limits, stats: CoreStats) -> Self {
        Core {
            limits,
            sessions: HashMap::new(),
            tree: SubTree::default(),
            online: 0,
            next_conn: 1,
            stats,
        }
    }

    /// The limits.
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// Connected clients.
    pub fn online(&self) -> usize {
        self.online
    }

    /// Subscriptions held.
    pub fn subscriptions(&self) -> usize {
        self.tree.len()
    }

    /// Sessions held.
    pub fn sessions(&self) -> usize {
        self.sessions.len()
    }

    fn remove_session(&mut self, client: &str) {
        if let Some(s) = self.sessions.remove(client) {
            for f in s.subs.keys() {
                self.tree.remove(f, client);
            }
        }
    }

    /// Accepts a CONNECT for `client`: takes over a connected session (its
    /// connection is kicked with 0x8E), resumes or discards a stored one.
    /// Returns the link for the new connection and whether a session was present.
    pub fn connect(
        &mut self,
        client: &Arc<str>,
        req: &ConnectReq,
        now: Instant,
    ) -> Result<(ConnLink, bool), Refusal> {
        let existing = self.sessions.get(client);
        let takeover = existing.is_some_and(|s| s.conn.is_some());
        if !takeover && self.online >= self.limits.max_clients {
            return Err(0x97);
        }
        if existing.is_some_and(|s| s.expired(now)) || req.clean_start {
            if let Some(old) = self.sessions.get(client).and_then(|s| s.conn.clone()) {
                old.kick.store(0x8E, Ordering::Relaxed);
                old.wake.notify_one();
            }
            self.remove_session(client);
        }
        if !self.sessions.contains_key(client) && self.sessions.len() >= self.limits.max_sessions {
            // Make room by evicting the oldest offline session.
            let oldest = self
                .sessions
                .iter()
                .filter_map(|(c, s)| s.offline_since.map(|t| (t, c.clone())))
                .min();
            match oldest {
                Some((_, c)) => {
                    self.remove_session(&c);
                    self.stats.sessions_evicted.inc();
                }
                None => return Err(0x97),
            }
        }
        let present = self.sessions.contains_key(client);
        let session = self
            .sessions
            .entry(client.clone())
            .or_insert_with(|| Session::new(req.session_expiry));
        if let Some(old) = session.conn.take() {
            old.kick.store(0x8E, Ordering::Relaxed);
            old.wake.notify_one();
        }
        let link = ConnLink {
            id: self.next_conn,
            wake: Arc::new(Notify::new()),
            kick: Arc::new(AtomicU8::new(0)),
            receive_max: req.receive_max.max(1),
            max_packet: req.max_packet_size,
        };
        self.next_conn += 1;
        session.conn = Some(link.clone());
        session.expiry = req.session_expiry;
        session.offline_since = None;
        // Inbound QoS 2 state is kept across a resumed session only.
        self.online += 1;
        Ok((link, present))
    }

    /// The connection `conn_id` of `client` ended. A session with expiry 0
    /// ends with it; others stay, collecting QoS >= 1 messages.
    pub fn disconnected(&mut self, client: &str, conn_id: u64, now: Instant) {
        self.online = self.online.saturating_sub(1);
        let Some(s) = self.sessions.get_mut(client) else {
            return;
        };
        if s.conn.as_ref().is_none_or(|c| c.id != conn_id) {
            return;
        }
        s.conn = None;
        if s.expiry == 0 {
            self.remove_session(client);
        } else {
            s.offline_since = Some(now);
        }
    }

    /// Whether `client` has a connection other than `conn_id` now.
    pub fn reconnected(&self, client: &str, conn_id: u64) -> bool {
        self.sessions
            .get(client)
            .and_then(|s| s.conn.as_ref())
            .is_some_and(|c| c.id != conn_id)
    }

    /// Changes the session expiry (MQTT 5 DISCONNECT property).
    pub fn set_expiry(&mut self, client: &str, secs: u32) {
        if let Some(s) = self.sessions.get_mut(client) {
            s.expiry = secs;
        }
    }

    /// Drops sessions whose expiry has passed.
    pub fn sweep(&mut self, now: Instant) {
        let dead: Vec<Arc<str>> = self
            .sessions
            .iter()
            .filter(|(_, s)| s.conn.is_none() && s.expired(now))
            .map(|(c, _)| c.clone())
            .collect();
        for c in dead {
            self.remove_session(&c);
        }
    }

    /// Adds or replaces a subscription (with its MQTT 5 subscription
    /// identifier); returns whether it is new.
    pub fn subscribe(&mut self, client: &Arc<str>, req: &SubReq, qos: u8, id: Option<u32>) -> bool {
        let opts = SubOpts {
            qos,
            no_local: req.no_local,
            retain_as_published: req.retain_as_published,
            id,
        };
        let Some(s) = self.sessions.get_mut(client) else {
            return false;
        };
        s.subs.insert(req.filter.clone(), opts);
        self.tree.insert(&req.filter, client, opts)
    }

    /// Removes a subscription; whether it existed.
    pub fn unsubscribe(&mut self, client: &str, filter: &str) -> bool {
        if let Some(s) = self.sessions.get_mut(client) {
            s.subs.remove(filter);
        }
        self.tree.remove(filter, client)
    }

    /// Delivers `p` to every matching subscription (one copy per client at
    /// the highest matching QoS). `publisher` is the client that sent it, for
    /// no-local. Returns the connections to wake.
    pub fn route(&mut self, p: &Publish, publisher: Option<&str>) -> Vec<Arc<Notify>> {
        let mut hits = Vec::new();
        let sessions = &self.sessions;
        let connected = |c: &str| sessions.get(c).is_some_and(|s| s.conn.is_some());
        self.tree.matches(&p.topic, &connected, &mut hits);
        // Merge per client: highest QoS, retain-as-published if any says so,
        // every subscription identifier.
        hits.sort_by(|a, b| a.0.cmp(&b.0));
        let mut merged: Vec<(Arc<str>, u8, bool, Vec<u32>)> = Vec::with_capacity(hits.len());
        for (client, o) in hits {
            if o.no_local && publisher == Some(&*client) {
                continue;
            }
            match merged.last_mut() {
                Some(last) if last.0 == client => {
                    last.1 = last.1.max(o.qos);
                    last.2 |= o.retain_as_published;
                    last.3.extend(o.id);
                }
                _ => merged.push((
                    client,
                    o.qos,
                    o.retain_as_published,
                    o.id.into_iter().collect(),
                )),
            }
        }
        let mut wakes = Vec::new();
        for (client, qos, rap, ids) in merged {
            let mut out = Publish {
                qos: p.qos.min(qos),
                retain: rap && p.retain,
                dup: false,
                pkid: 0,
                ..p.clone()
            };
            with_sub_ids(&mut out, ids);
            if let Some(w) = self.enqueue(&client, out) {
                wakes.push(w);
            }
        }
        wakes
    }

    /// Queues one message for `client` (bounded: a full queue drops the new
    /// message and counts it; offline sessions keep QoS >= 1 only).
    pub fn enqueue(&mut self, client: &str, p: Publish) -> Option<Arc<Notify>> {
        let s = self.sessions.get_mut(client)?;
        if s.conn.is_none() && p.qos == 0 {
            return None;
        }
        if s.queue.len() >= self.limits.max_queued {
            self.stats.queue_full.inc();
            return None;
        }
        s.queue.push_back(p);
        s.conn.as_ref().map(|c| c.wake.clone())
    }

    fn session_of(&mut self, client: &str, conn_id: u64) -> Option<&mut Session> {
        self.sessions
            .get_mut(client)
            .filter(|s| s.conn.as_ref().is_some_and(|c| c.id == conn_id))
    }

    /// After a CONNACK with session present: what was unacknowledged is sent
    /// again, PUBLISH with DUP set and PUBREL as is ([MQTT-4.4.0-1]).
    pub fn resume(&mut self, client: &str, conn_id: u64, out: &mut Vec<Outbound>) {
        let Some(s) = self.session_of(client, conn_id) else {
            return;
        };
        for (id, f) in s.inflight.iter_mut() {
            match f {
                Flight::Sent(p) => {
                    p.dup = true;
                    out.push(Outbound::Publish(p.clone()));
                }
                Flight::Released => out.push(Outbound::PubRel(*id)),
            }
        }
    }

    /// [`Core::pull_at`] now.
    pub fn pull(&mut self, client: &str, conn_id: u64, out: &mut Vec<Outbound>) {
        self.pull_at(client, conn_id, out, Instant::now());
    }

    /// Moves queued messages into the inflight window and onto the wire.
    /// Messages whose expiry passed are dropped; the others carry the
    /// remaining expiry interval ([MQTT-3.3.2-5], [MQTT-3.3.2-6]).
    pub fn pull_at(&mut self, client: &str, conn_id: u64, out: &mut Vec<Outbound>, now: Instant) {
        let max_inflight = self.limits.max_inflight;
        let mut too_large = 0;
        let mut expired = 0;
        let Some(s) = self.session_of(client, conn_id) else {
            return;
        };
        let Some(link) = s.conn.clone() else {
            return;
        };
        let window = usize::from(max_inflight.min(link.receive_max));
        while let Some(front) = s.queue.front() {
            if front.qos > 0 && s.inflight.len() >= window {
                break;
            }
            let Some(mut p) = s.queue.pop_front() else {
                break;
            };
            if link
                .max_packet
                .is_some_and(|m| approx_size(&p) > m as usize)
            {
                too_large += 1;
                continue;
            }
            if let Some(deadline) = p.expires {
                let Some(left) = deadline
                    .checked_duration_since(now)
                    .filter(|d| !d.is_zero())
                else {
                    expired += 1;
                    continue;
                };
                if let Some(props) = p.props.as_mut() {
                    let secs = u32::try_from(left.as_secs().max(1)).unwrap_or(u32::MAX);
                    Arc::make_mut(props).message_expiry = Some(secs);
                }
            }
            if p.qos > 0 {
                p.pkid = s.alloc_pkid();
                s.inflight.push_back((p.pkid, Flight::Sent(p.clone())));
            }
            out.push(Outbound::Publish(p));
        }
        self.stats.too_large_for_client.add(too_large);
        self.stats.expired.add(expired);
    }

    /// PUBACK from the client.
    pub fn puback(&mut self, client: &str, conn_id: u64, pkid: u16) {
        if let Some(s) = self.session_of(client, conn_id)
            && let Some(i) = s
                .inflight
                .iter()
                .position(|(id, f)| *id == pkid && matches!(f, Flight::Sent(p) if p.qos == 1))
        {
            s.inflight.remove(i);
        }
    }

    /// PUBREC from the client: answers PUBREL (or ends the flow on an error
    /// reason, MQTT 5).
    pub fn pubrec(
        &mut self,
        client: &str,
        conn_id: u64,
        pkid: u16,
        reason: u8,
    ) -> Option<Outbound> {
        let s = self.session_of(client, conn_id)?;
        let i = s.inflight.iter().position(|(id, _)| *id == pkid);
        match i {
            Some(i) if reason >= 0x80 => {
                s.inflight.remove(i);
                None
            }
            Some(i) => {
                if let Some(slot) = s.inflight.get_mut(i) {
                    slot.1 = Flight::Released;
                }
                Some(Outbound::PubRel(pkid))
            }
            // Unknown id: still answer, the client may be retrying.
            None => Some(Outbound::PubRel(pkid)),
        }
    }

    /// PUBCOMP from the client.
    pub fn pubcomp(&mut self, client: &str, conn_id: u64, pkid: u16) {
        if let Some(s) = self.session_of(client, conn_id)
            && let Some(i) = s
                .inflight
                .iter()
                .position(|(id, f)| *id == pkid && matches!(f, Flight::Released))
        {
            s.inflight.remove(i);
        }
    }

    /// An inbound QoS 2 PUBLISH: new (deliver it), a duplicate, or one too
    /// many for our receive maximum.
    pub fn qos2_received(&mut self, client: &str, conn_id: u64, pkid: u16) -> Qos2In {
        let max = usize::from(self.limits.max_inflight);
        let Some(s) = self.session_of(client, conn_id) else {
            return Qos2In::Duplicate;
        };
        if s.incoming_qos2.contains(&pkid) {
            return Qos2In::Duplicate;
        }
        if s.incoming_qos2.len() >= max {
            return Qos2In::TooMany;
        }
        s.incoming_qos2.insert(pkid);
        Qos2In::New
    }

    /// PUBREL: whether the packet identifier was known.
    pub fn qos2_released(&mut self, client: &str, conn_id: u64, pkid: u16) -> bool {
        self.session_of(client, conn_id)
            .is_some_and(|s| s.incoming_qos2.remove(&pkid))
    }

    /// Whether `filter` is a shared subscription.
    pub fn is_shared(filter: &str) -> bool {
        split_share(filter).0.is_some()
    }

    /// Messages waiting for `client` (queued + inflight).
    pub fn pending(&self, client: &str) -> usize {
        self.sessions
            .get(client)
            .map_or(0, |s| s.queue.len() + s.inflight.len())
    }
}

#[cfg(test)]
#[path = "core_tests.rs"]
mod tests;
