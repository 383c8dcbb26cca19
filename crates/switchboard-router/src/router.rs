//! The routing step: match a message against the route table, expand
//! templates, apply the loop guard, convert formats, record last values, and
//! produce deliveries for per-destination queues. Pure logic: no protocol, no
//! I/O; the async driver is in `run.rs`.

use std::cell::Cell;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use arc_swap::ArcSwap;
use switchboard_model::{
    Ack, AdapterMetrics, Address, AddressBook, Delivery, DeliveryQueue, Dispatch, DropReason,
    Endpoint, Health, Interest, Message, Pushed, Stopped, Topic, Waiting,
};
use tokio::sync::watch;

use crate::table::{Dest, RouteError, RouteSpec, RouteTable};
use crate::template::{Captures, Expansion, TopicBuf};

/// The default hop limit of the loop guard.
pub const DEFAULT_MAX_HOPS: u8 = 8;

/// One adapter instance as the router knows it.
#[derive(Debug)]
pub struct Slot {
    /// Instance name.
    pub name: Arc<str>,
    /// Kind.
    pub kind: String,
    /// Its delivery queue.
    pub queue: Arc<DeliveryQueue>,
    /// Its counters.
    pub metrics: Arc<AdapterMetrics>,
    /// Its health.
    pub health: Health,
    /// Endpoints it bound.
    pub endpoints: Mutex<Vec<Endpoint>>,
    pub(crate) interest: watch::Sender<Arc<[Interest]>>,
}

impl Slot {
    /// The interest receiver to hand to the adapter.
    pub fn interest_rx(&self) -> watch::Receiver<Arc<[Interest]>> {
        self.interest.subscribe()
    }
}

/// Describes an adapter instance to register with [`Router::new`].
#[derive(Debug, Clone)]
pub struct SlotSpec {
    /// Instance name.
    pub name: Arc<str>,
    /// Kind.
    pub kind: String,
    /// Delivery queue capacity.
    pub queue_capacity: usize,
}

/// The router: adapters, the swappable route table, the address book.
#[derive(Debug)]
pub struct Router {
    slots: Vec<Slot>,
    by_name: HashMap<Arc<str>, usize>,
    table: ArcSwap<RouteTable>,
    book: Arc<AddressBook>,
    max_hops: u8,
    /// Set when the router stops: no more direct dispatch.
    stopped: AtomicBool,
}

/// The route table as one routing loop sees it, refreshed when swapped.
pub struct Tables<'r>(arc_swap::Cache<&'r ArcSwap<RouteTable>, Arc<RouteTable>>);

impl std::fmt::Debug for Tables<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Tables")
    }
}

impl Tables<'_> {
    /// The current table (the newest one stored by
    /// [`Router::swap_routes`]).
    pub fn current(&mut self) -> &RouteTable {
        self.0.load()
    }
}

/// A delivery for the adapter in slot `.0`.
pub type Planned = (usize, Delivery);

impl Router {
    /// Registers the adapters and compiles the routes.
    pub fn new(
        adapters: Vec<SlotSpec>,
        routes: &[RouteSpec],
        book: Arc<AddressBook>,
        max_hops: u8,
    ) -> Result<Router, Vec<RouteError>> {
        let names: Vec<Arc<str>> = adapters.iter().map(|a| a.name.clone()).collect();
        let table = RouteTable::compile(routes, &names)?;
        let slots: Vec<Slot> = adapters
            .into_iter()
            .map(|a| Slot {
                interest: watch::channel(table.interest_of(&a.name)).0,
                name: a.name,
                kind: a.kind,
                queue: Arc::new(DeliveryQueue::new(a.queue_capacity)),
                metrics: Arc::new(AdapterMetrics::default()),
                health: Health::default(),
                endpoints: Mutex::new(Vec::new()),
            })
            .collect();
        let by_name = slots
            .iter()
            .enumerate()
            .map(|(i, s)| (s.name.clone(), i))
            .collect();
        Ok(Router {
            slots,
            by_name,
            table: ArcSwap::from_pointee(table),
            book,
            max_hops,
            stopped: AtomicBool::new(false),
        })
    }

    /// Replaces the route table while running; messages being routed finish
    /// on the old table. Adapters see their new interest.
    pub fn swap_routes(&self, routes: &[RouteSpec]) -> Result<(), Vec<RouteError>> {
        let table = RouteTable::compile(routes, &self.names())?;
        for s in &self.slots {
            s.interest.send_replace(table.interest_of(&s.name));
        }
        self.table.store(Arc::new(table));
        Ok(())
    }

    /// Stops direct dispatch ([`Dispatch`]): from now on it reports
    /// [`Stopped`]. The driver calls this before it closes the queues.
    pub fn stop(&self) {
        self.stopped.store(true, Ordering::Release);
    }

    /// Adapter names in slot order.
    pub fn names(&self) -> Vec<Arc<str>> {
        self.slots.iter().map(|s| s.name.clone()).collect()
    }

    /// The adapter slots.
    pub fn slots(&self) -> &[Slot] {
        &self.slots
    }

    /// The slot index of an adapter.
    pub fn slot_of(&self, name: &str) -> Option<usize> {
        self.by_name.get(name).copied()
    }

    /// The slot of a message's origin adapter: a scan comparing pointers
    /// first (origins are usually the slot's own name), the map beyond a
    /// handful of adapters.
    fn slot_of_origin(&self, name: &Arc<str>) -> Option<usize> {
        if self.slots.len() > 16 {
            return self.by_name.get(name).copied();
        }
        if let Some(i) = self.slots.iter().position(|s| Arc::ptr_eq(&s.name, name)) {
            return Some(i);
        }
        self.slots.iter().position(|s| *s.name == **name)
    }

    /// The current route table.
    pub fn table(&self) -> Arc<RouteTable> {
        self.table.load_full()
    }

    /// The address book.
    pub fn book(&self) -> &Arc<AddressBook> {
        &self.book
    }

    /// Routes one message that entered the bridge at
    /// `msg.origin.adapter:msg.topic`, appending the deliveries to `out`.
    ///
    /// A message is delivered at most once per destination address, never to
    /// its own source address or an address on its trace (loop guard), and not
    /// at all once its hop count reached the limit. Each destination's last
    /// value is recorded before the delivery is queued.
    pub fn route(&self, msg: &Message, out: &mut Vec<Planned>) {
        self.route_in(&self.table.load(), msg, out);
    }

    /// A handle on the current route table for one routing loop: checking
    /// it for a swap costs one atomic load, where [`route`](Self::route)
    /// takes a guard per message. Use with [`route_in`](Self::route_in).
    pub fn tables(&self) -> Tables<'_> {
        Tables(arc_swap::Cache::new(&self.table))
    }

    /// [`route`](Self::route) with the table given (from [`Tables::current`]).
    pub fn route_in(&self, table: &RouteTable, msg: &Message, out: &mut Vec<Planned>) {
        let origin_slot = self.slot_of_origin(&msg.origin.adapter);
        let mut matched: smallvec_lite::Small = smallvec_lite::Small::new();
        if let Some(s) = origin_slot {
            table.by_adapter[s].for_each_match(&msg.topic, |&r| matched.push(r));
        }
        if !table.any.is_empty() {
            table.any.for_each_match(&msg.topic, |&r| matched.push(r));
        }
        if matched.is_empty() {
            return;
        }
        matched.sort_dedup();
        // Index in `out` of the first delivery made for this message: the
        // derived messages after it share its trace.
        let mut first: Option<usize> = None;
        let first_out = out.len();
        let mut buf: Option<TopicBuf> = None;
        for &rid in matched.as_slice() {
            let Some(route) = table.routes.get(rid as usize) else {
                continue;
            };
            let counters = &route.counters;
            counters
                .matched
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            if msg.trace.hops >= self.max_hops {
                counters.count_drop(DropReason::HopLimit);
                continue;
            }
            // Convert once per route.
            let payload = match &route.spec.format {
                Some(f) if *f != msg.format => {
                    match switchboard_codec::transcode(msg.payload.clone(), &msg.format, f) {
                        Ok(p) => Some((p, f.clone())),
                        Err(e) => {
                            tracing::debug!(route = rid, error = %e, "Payload conversion failed.");
                            counters.count_drop(DropReason::Transcode);
                            continue;
                        }
                    }
                }
                _ => None,
            };
            // Captures once per route, shared by its destinations.
            let caps = if route.needs_captures {
                match Captures::of_matched(&route.from.filter, &msg.topic) {
                    Some(c) => c,
                    None => {
                        counters.count_drop(DropReason::BadTopic);
                        continue;
                    }
                }
            } else {
                Captures::default()
            };
            // Index in `out` of this route's delivery for the previous
            // destination: the next one shares its message when its topic
            // template is the same.
            let mut prev: Option<usize> = None;
            for (i, (tpl, dest)) in route.to.iter().enumerate() {
                let mut shared = if route.same_topic_as_prev[i] {
                    prev
                } else {
                    None
                };
                let mut expanded = match shared {
                    Some(_) => None,
                    None => match tpl.expand_into(&caps, &msg.topic, &mut buf) {
                        Some(t) => Some(t),
                        None => {
                            counters.count_drop(DropReason::BadTopic);
                            prev = None;
                            continue;
                        }
                    },
                };
                let (slots, all_but_origin) = match dest {
                    Dest::Slot(s) => (*s..*s + 1, false),
                    Dest::AllButOrigin => (0..self.slots.len(), true),
                };
                for slot in slots {
                    if all_but_origin && Some(slot) == origin_slot {
                        continue;
                    }
                    let s = &self.slots[slot];
                    {
                        let topic = match (shared, &expanded) {
                            (Some(j), _) => out[j].1.message.topic.as_str(),
                            (None, Some(t)) => t.as_str(),
                            (None, None) => break,
                        };
                        if (Some(slot) == origin_slot && topic == msg.topic.as_str())
                            || msg.trace.passed_at(&s.name, topic)
                        {
                            counters.count_drop(DropReason::Loop);
                            continue;
                        }
                        if out[first_out..]
                            .iter()
                            .any(|(o, d)| *o == slot && d.message.topic.as_str() == topic)
                        {
                            continue;
                        }
                    }
                    let make = |topic: Topic| {
                        let trace = match first {
                            Some(j) => out[j].1.message.trace.clone(),
                            None => msg.trace.extended_at(&msg.origin.adapter, &msg.topic),
                        };
                        Arc::new(derive(
                            msg,
                            topic,
                            trace,
                            route.spec.qos,
                            route.spec.retain,
                            payload.as_ref(),
                        ))
                    };
                    let m = match (shared, expanded.take()) {
                        (Some(j), _) => {
                            let m = out[j].1.message.clone();
                            self.book.record_shared(&s.name, &m);
                            m
                        }
                        (None, Some(Expansion::Topic(topic))) => {
                            let m = make(topic);
                            self.book.record_shared(&s.name, &m);
                            m
                        }
                        // The book lends its topic when it holds the address.
                        (None, Some(Expansion::Text(text))) => {
                            match self.book.record_at(&s.name, text, make) {
                                Some(m) => m,
                                None => {
                                    counters.count_drop(DropReason::BadTopic);
                                    break;
                                }
                            }
                        }
                        (None, None) => break,
                    };
                    out.push((
                        slot,
                        Delivery {
                            message: m,
                            ack: Ack::new(counters.clone()),
                        },
                    ));
                    let at = out.len() - 1;
                    shared.get_or_insert(at);
                    first.get_or_insert(at);
                }
                prev = shared;
            }
        }
    }

    /// Publishes `msg` at its address as if a local client of that adapter
    /// had: records it, asks the adapter to deliver it to its own clients, and
    /// returns it for routing. `None` when no adapter has that name.
    pub fn inject_local(&self, msg: &Message) -> Option<Delivery> {
        let slot = self.slot_of(&msg.origin.adapter)?;
        self.book.record(&self.slots[slot].name, msg);
        Some(Delivery {
            message: Arc::new(msg.clone()),
            ack: Ack::none(),
        })
    }

    /// The queue of the adapter in `slot`.
    pub fn queue(&self, slot: usize) -> Option<&Arc<DeliveryQueue>> {
        self.slots.get(slot).map(|s| &s.queue)
    }

    /// The address book's view of one address.
    pub fn latest(&self, adapter: &str, topic: &Topic) -> Option<Message> {
        self.book.latest(&Address::new(adapter, topic.clone()))
    }
}

fn derive(
    msg: &Message,
    topic: Topic,
    trace: switchboard_model::Trace,
    qos: Option<switchboard_model::Qos>,
    retain: Option<bool>,
    payload: Option<&(bytes::Bytes, switchboard_model::Format)>,
) -> Message {
    // Field by field: cloning the whole message and then replacing the topic
    // and trace would touch their reference counts twice.
    let (payload, format) = match payload {
        Some((p, f)) => (p.clone(), f.clone()),
        None => (msg.payload.clone(), msg.format.clone()),
    };
    Message {
        topic,
        payload,
        format,
        qos: qos.unwrap_or(msg.qos),
        retain: retain.unwrap_or(msg.retain),
        origin: msg.origin.clone(),
        timestamp: msg.timestamp,
        source_timestamp: msg.source_timestamp,
        properties: msg.properties.clone(),
        trace,
    }
}

/// A tiny inline vector of route ids (most messages match a few routes).
mod smallvec_lite {
    pub(super) struct Small {
        inline: [u32; 8],
        len: usize,
        spill: Vec<u32>,
    }

    impl Small {
        pub(super) fn new() -> Self {
            Small {
                inline: [0; 8],
                len: 0,
                spill: Vec::new(),
            }
        }
        pub(super) fn push(&mut self, v: u32) {
            if self.spill.is_empty() && self.len < 8 {
                self.inline[self.len] = v;
                self.len += 1;
            } else {
                if self.spill.is_empty() {
                    self.spill.extend_from_slice(&self.inline[..self.len]);
                }
                self.spill.push(v);
            }
        }
        pub(super) fn is_empty(&self) -> bool {
            self.len == 0 && self.spill.is_empty()
        }
        pub(super) fn as_slice(&self) -> &[u32] {
            if self.spill.is_empty() {
                &self.inline[..self.len]
            } else {
                &self.spill
            }
        }
        pub(super) fn sort_dedup(&mut self) {
            if self.spill.is_empty() {
                let s = &mut self.inline[..self.len];
                s.sort_unstable();
                let mut w = 0;
                for r in 0..s.len() {
                    if w == 0 || s[r] != s[w - 1] {
                        s[w] = s[r];
                        w += 1;
                    }
                }
                self.len = w;
            } else {
                self.spill.sort_unstable();
                self.spill.dedup();
            }
        }
    }
}

thread_local! {
    /// The deliveries buffer of direct dispatch, reused per thread.
    static PLANNED: Cell<Vec<Planned>> = const { Cell::new(Vec::new()) };
}

impl Dispatch for Router {
    fn dispatch(&self, msg: &Message, wait: &mut Vec<Waiting>) -> Result<(), Stopped> {
        if self.stopped.load(Ordering::Acquire) {
            return Err(Stopped);
        }
        let mut out = PLANNED.with(Cell::take);
        self.route(msg, &mut out);
        let mut closed = false;
        for (slot, d) in out.drain(..) {
            let Some(q) = self.queue(slot) else {
                d.ack.dropped(DropReason::NoAdapter);
                continue;
            };
            match q.try_push(d) {
                Ok(Pushed::Closed) => closed = true,
                Ok(_) => {}
                Err(d) => wait.push((q.clone(), *d)),
            }
        }
        PLANNED.with(|p| p.set(out));
        if closed { Err(Stopped) } else { Ok(()) }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use switchboard_model::{Format, Qos};

    fn router(routes: &[RouteSpec]) -> Router {
        let slots = ["mqtt", "http", "coap"]
            .map(|n| SlotSpec {
                name: n.into(),
                kind: n.into(),
                queue_capacity: 16,
            })
            .to_vec();
        Router::new(slots, routes, Arc::new(AddressBook::default()), 3).unwrap()
    }

    fn dests(r: &Router, m: &Message) -> Vec<String> {
        let mut out = Vec::new();
        r.route(m, &mut out);
        out.into_iter()
            .map(|(s, d)| {
                let name = r.slots()[s].name.to_string();
                d.ack.done();
                format!("{name}:{}", d.message.topic)
            })
            .collect()
    }

    #[test]
    fn fan_out_to_all_but_origin() {
        let r = router(&[RouteSpec::new("*:#", ["*:{0}"])]);
        let m = Message::json("mqtt:a/b", "1").unwrap();
        assert_eq!(dests(&r, &m), vec!["http:a/b", "coap:a/b"]);
        // Last values recorded at the destinations.
        assert!(r.latest("http", &Topic::new("a/b").unwrap()).is_some());
        assert!(r.latest("coap", &Topic::new("a/b").unwrap()).is_some());
    }

    #[test]
    fn destinations_under_one_topic_share_the_message() {
        let r = router(&[RouteSpec::new(
            "mqtt:a/+",
            ["http:x/{1}", "coap:x/{1}", "http:y/{1}"],
        )]);
        let mut out = Vec::new();
        r.route(&Message::json("mqtt:a/b", "1").unwrap(), &mut out);
        let got: Vec<(usize, String)> = out
            .iter()
            .map(|(s, d)| (*s, d.message.topic.to_string()))
            .collect();
        assert_eq!(
            got,
            vec![(1, "x/b".into()), (2, "x/b".into()), (1, "y/b".into())]
        );
        assert!(Arc::ptr_eq(&out[0].1.message, &out[1].1.message));
        assert!(!Arc::ptr_eq(&out[0].1.message, &out[2].1.message));
        // One trace for every derived message: one hop, from mqtt:a/b.
        for (_, d) in &out {
            assert_eq!(d.message.trace.hops, 1);
            let path: Vec<String> = d.message.trace.addresses().map(|a| a.to_string()).collect();
            assert_eq!(path, vec!["mqtt:a/b"]);
        }
        for (_, d) in out {
            d.ack.done();
        }
    }

    #[test]
    fn loop_guard_and_dedupe() {
        let r = router(&[
            RouteSpec::new("mqtt:a/#", ["mqtt:{0}", "http:{0}"]),
            RouteSpec::new("mqtt:a/+", ["http:{0}"]),
        ]);
        let m = Message::json("mqtt:a/b", "1").unwrap();
        assert_eq!(dests(&r, &m), vec!["http:a/b"]);
        let t = r.table();
        assert_eq!(t.routes()[0].counters.dropped(DropReason::Loop), 1);
        // A message whose trace already passed http:a/b does not go back there.
        let mut m2 = m.clone();
        m2.trace = m2.trace.extended(&Address::parse("http:a/b").unwrap());
        assert!(dests(&r, &m2).is_empty());
    }

    #[test]
    fn hop_limit() {
        let r = router(&[RouteSpec::new("mqtt:#", ["http:{0}"])]);
        let mut m = Message::json("mqtt:x", "1").unwrap();
        m.trace.hops = 3;
        assert!(dests(&r, &m).is_empty());
        assert_eq!(
            r.table().routes()[0].counters.dropped(DropReason::HopLimit),
            1
        );
    }

    #[test]
    fn overrides_and_transcode() {
        let mut spec = RouteSpec::new("mqtt:#", ["http:{0}"]);
        spec.format = Some(Format::Cbor);
        spec.qos = Some(Qos::ExactlyOnce);
        spec.retain = Some(true);
        let r = router(&[spec]);
        let mut out = Vec::new();
        r.route(&Message::json("mqtt:x", "[1]").unwrap(), &mut out);
        let d = &out[0].1.message;
        assert_eq!(
            (d.format.clone(), d.qos, d.retain),
            (Format::Cbor, Qos::ExactlyOnce, true)
        );
        assert_eq!(&d.payload[..], &[0x81, 0x01]);
        out.clear();
        r.route(&Message::json("mqtt:x", "{bad").unwrap(), &mut out);
        assert!(out.is_empty());
        assert_eq!(
            r.table().routes()[0]
                .counters
                .dropped(DropReason::Transcode),
            1
        );
    }

    #[test]
    fn a_routing_loop_sees_a_swap_at_its_next_message() {
        let r = router(&[RouteSpec::new("mqtt:a", ["http:{0}"])]);
        let mut tables = r.tables();
        let mut out = Vec::new();
        let m = Message::json("mqtt:a", "1").unwrap();
        r.route_in(tables.current(), &m, &mut out);
        assert_eq!(out.len(), 1);
        r.swap_routes(&[RouteSpec::new("mqtt:b", ["http:{0}"])])
            .unwrap();
        r.route_in(tables.current(), &m, &mut out);
        assert_eq!(out.len(), 1, "the old route is gone");
        for (_, d) in out {
            d.ack.done();
        }
    }

    /// Direct dispatch (routing in the publishing task): deliveries are
    /// queued at once, a full QoS 1 queue makes the publisher wait for room,
    /// and a stopped router refuses.
    #[tokio::test]
    async fn direct_dispatch_queues_waits_and_stops() {
        let slots = [("mqtt", 16), ("http", 1)]
            .map(|(n, c)| SlotSpec {
                name: n.into(),
                kind: n.into(),
                queue_capacity: c,
            })
            .to_vec();
        let mut spec = RouteSpec::new("mqtt:#", ["http:{0}"]);
        spec.qos = Some(Qos::AtLeastOnce);
        let book = Arc::new(AddressBook::default());
        let r = Arc::new(Router::new(slots, &[spec], book.clone(), 3).unwrap());
        let (tx, _rx) = tokio::sync::mpsc::channel(1);
        let ingress =
            switchboard_model::Ingress::new("mqtt".into(), tx, book, r.slots()[0].metrics.clone())
                .with_dispatch(r.clone());
        let http = r.queue(1).unwrap().clone();
        ingress
            .publish_direct(Message::json("x:a", "1").unwrap())
            .await
            .unwrap();
        assert_eq!(http.len(), 1);
        // The queue is full: the second publish waits until one is taken.
        let second = tokio::spawn({
            let ingress = ingress.clone();
            async move {
                ingress
                    .publish_direct(Message::json("x:b", "2").unwrap())
                    .await
            }
        });
        tokio::task::yield_now().await;
        assert!(!second.is_finished());
        let first = http.recv().await.unwrap();
        assert_eq!(first.message.topic.as_str(), "a");
        first.ack.done();
        second.await.unwrap().unwrap();
        let next = http.recv().await.unwrap();
        assert_eq!(next.message.topic.as_str(), "b");
        next.ack.done();
        r.stop();
        assert!(
            ingress
                .publish_direct(Message::json("x:c", "3").unwrap())
                .await
                .is_err()
        );
    }

    #[test]
    fn swap_changes_routes_and_interest() {
        let r = router(&[RouteSpec::new("mqtt:a", ["http:{0}"])]);
        let rx = r.slots()[0].interest_rx();
        r.swap_routes(&[RouteSpec::new("mqtt:b/#", ["http:{0}"])])
            .unwrap();
        assert_eq!(rx.borrow()[0].filter.as_str(), "b/#");
        assert!(dests(&r, &Message::json("mqtt:a", "1").unwrap()).is_empty());
        assert_eq!(
            dests(&r, &Message::json("mqtt:b/c", "1").unwrap()),
            vec!["http:b/c"]
        );
    }
}
