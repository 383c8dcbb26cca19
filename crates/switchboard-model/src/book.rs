//! The address book: the last value of every address (the one last-value cache
//! behind MQTT retained messages, HTTP and CoAP GET, WebSocket snapshots and
//! DDS late joiners), per-address counts, and taps for library subscribers.

use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::task::{Context, Poll};
use std::time::SystemTime;

use serde::Serialize;
use tokio::sync::mpsc;

use crate::address::{Address, AddressPattern};
use crate::message::Message;
use crate::topic::{Pattern, Topic};

thread_local! {
    /// Values the book replaced on this thread while a [`DeferDrops`] is
    /// alive, and how many are nested.
    static DEFERRED: std::cell::RefCell<(usize, Vec<Arc<Message>>)> =
        const { std::cell::RefCell::new((0, Vec::new())) };
}

/// While alive, the values the book replaces on this thread are kept and
/// freed when it drops, not under the book's lock in the middle of routing:
/// a source that routes a message and writes it on (the MQTT client's
/// express lane) frees the previous message of each address after that
/// write instead of before it. Nests. Not `Send`: keep it within one
/// synchronous stretch of code (never across an `.await`).
#[must_use = "the deferred values are freed when this drops"]
pub struct DeferDrops(std::marker::PhantomData<*const ()>);

impl DeferDrops {
    /// Starts deferring on this thread.
    #[inline]
    pub fn begin() -> DeferDrops {
        DEFERRED.with(|d| d.borrow_mut().0 += 1);
        // Not `Send`: the deferral belongs to this thread.
        DeferDrops(std::marker::PhantomData)
    }
}

impl Drop for DeferDrops {
    fn drop(&mut self) {
        DEFERRED.with(|d| {
            let mut d = d.borrow_mut();
            d.0 = d.0.saturating_sub(1);
            if d.0 == 0 {
                // Freeing a message touches nothing of the book's.
                d.1.clear();
            }
        });
    }
}

/// Frees a replaced value now, or when the thread's [`DeferDrops`] ends.
#[inline]
fn bury(old: Arc<Message>) {
    let old = DEFERRED.with(|d| {
        let mut d = d.borrow_mut();
        if d.0 > 0 {
            d.1.push(old);
            None
        } else {
            Some(old)
        }
    });
    drop(old);
}

/// Maps keyed by peer-chosen strings: foldhash is fast and seeded per process.
type HashMap<K, V> = std::collections::HashMap<K, V, foldhash::fast::RandomState>;

/// The message property naming the instance of a keyed topic (DDS keyed
/// topics; any adapter may set it). Messages carrying it are also kept per
/// instance at their address, so late readers get the last value of every
/// instance, not only of the last one written.
pub const INSTANCE_KEY: &str = "dds.key";
/// The message property marking an instance as gone (`disposed` or
/// `unregistered`): such a message removes its instance from the book.
pub const INSTANCE_STATE: &str = "dds.instance_state";
/// The most instances kept per address (the whole book also keeps at most
/// its `max_entries` instances); messages for further new instances only
/// update the address's `latest` and are counted in [`AddressBook::refused`].
pub const MAX_INSTANCES: usize = 4096;

/// The last values of one instance of a keyed address.
#[derive(Clone, Debug)]
pub struct Instance {
    /// The instance's last message.
    pub latest: Arc<Message>,
    /// Its last retained message.
    pub retained: Option<Arc<Message>>,
}

type Instances = HashMap<Arc<str>, Instance>;

/// What recording a message did to an address's instances.
#[derive(Default)]
struct Change {
    /// Instances added (negative: removed).
    added: i64,
    /// A new instance was not kept.
    refused: bool,
}

/// What the book holds for one address.
#[derive(Clone, Debug)]
pub struct Entry {
    /// The last message at the address, retained or not (what GET returns).
    pub latest: Message,
    /// The last retained message (what late MQTT subscribers and DDS late
    /// joiners receive); cleared by a retained message with an empty payload.
    pub retained: Option<Message>,
    /// Messages seen at the address.
    pub count: u64,
    /// When the last one arrived.
    pub updated: SystemTime,
    /// Per-instance values while the address's messages carry
    /// [`INSTANCE_KEY`].
    instances: Option<Arc<Instances>>,
}

impl Entry {
    /// The instances held, when the address's messages carry
    /// [`INSTANCE_KEY`]: key and values, in no particular order.
    pub fn instances(&self) -> impl Iterator<Item = (&str, &Instance)> {
        self.instances
            .iter()
            .flat_map(|m| m.iter().map(|(k, i)| (&**k, i)))
    }
}

/// One row of [`AddressBook::topics`].
#[derive(Clone, Debug, Serialize)]
pub struct TopicInfo {
    /// `ADAPTER:TOPIC`.
    pub address: String,
    /// The adapter instance.
    pub adapter: String,
    /// The topic.
    pub topic: String,
    /// Messages seen.
    pub count: u64,
    /// Last update, milliseconds since the Unix epoch.
    pub updated_ms: u64,
    /// The last message's format.
    pub format: String,
    /// The last payload's size in bytes.
    pub size: usize,
    /// Whether a retained value is held.
    pub retained: bool,
    /// The start of the last payload, for display: up to 200 characters of
    /// JSON or text payloads (and of octets that are printable UTF-8), else
    /// `null`.
    pub preview: Option<String>,
}

fn preview(m: &Message) -> Option<String> {
    let octets = matches!(m.format, crate::Format::Octets);
    if !m.format.is_textual() && !octets {
        return None;
    }
    let s = std::str::from_utf8(&m.payload).ok()?;
    if octets && s.chars().any(|c| c.is_control() && !c.is_whitespace()) {
        return None;
    }
    Some(s.chars().take(200).collect())
}

/// What the book stores for one address: the messages are shared with the
/// deliveries that carried them, so recording one costs a reference count.
#[derive(Clone, Debug)]
struct Held {
    latest: Arc<Message>,
    retained: Option<Arc<Message>>,
    count: u64,
    updated: SystemTime,
    /// Per-instance values while the messages carry [`INSTANCE_KEY`]; `None`
    /// for plain addresses (a message without a key drops them).
    instances: Option<Arc<Instances>>,
}

impl Held {
    fn entry(&self) -> Entry {
        Entry {
            latest: (*self.latest).clone(),
            retained: self.retained.as_deref().cloned(),
            count: self.count,
            updated: self.updated,
            instances: self.instances.clone(),
        }
    }

    fn new(msg: &Arc<Message>, room: bool) -> (Self, Change) {
        let mut h = Held {
            latest: msg.clone(),
            retained: (msg.retain && !msg.payload.is_empty()).then(|| msg.clone()),
            count: 1,
            updated: msg.timestamp,
            instances: None,
        };
        let mut c = Change::default();
        if let Some(key) = msg.properties.get(INSTANCE_KEY) {
            h.retained = None;
            c = h.update_instance(key, msg, room);
        }
        (h, c)
    }

    /// Records one more message; `room`: whether the book has room for a new
    /// instance.
    #[inline]
    fn update(&mut self, msg: &Arc<Message>, room: bool) -> Change {
        self.count += 1;
        self.updated = msg.timestamp;
        bury(std::mem::replace(&mut self.latest, msg.clone()));
        match msg.properties.get(INSTANCE_KEY) {
            None => {
                let dropped = self.instances.take().map_or(0, |m| m.len() as i64);
                if msg.retain {
                    let new = (!msg.payload.is_empty()).then(|| msg.clone());
                    if let Some(old) = std::mem::replace(&mut self.retained, new) {
                        bury(old);
                    }
                }
                Change {
                    added: -dropped,
                    refused: false,
                }
            }
            Some(key) => self.update_instance(key, msg, room),
        }
    }

    fn update_instance(&mut self, key: &str, msg: &Arc<Message>, room: bool) -> Change {
        let mut change = Change::default();
        let map = Arc::make_mut(self.instances.get_or_insert_with(Default::default));
        let newest_retained = |map: &Instances| {
            map.values()
                .filter_map(|i| i.retained.as_ref())
                .max_by_key(|m| m.timestamp)
                .cloned()
        };
        if msg.properties.get(INSTANCE_STATE).is_some() {
            // Disposed or unregistered: the instance has no last value any
            // more; the address's values become the newest remaining ones.
            if map.remove(key).is_some() {
                change.added = -1;
            }
            self.latest = map
                .values()
                .map(|i| &i.latest)
                .max_by_key(|m| m.timestamp)
                .unwrap_or(msg)
                .clone();
            self.retained = newest_retained(map);
            return change;
        }
        let retained = (msg.retain && !msg.payload.is_empty()).then(|| msg.clone());
        let full = !room || map.len() >= MAX_INSTANCES;
        match map.get_mut(key) {
            Some(i) => {
                i.latest = msg.clone();
                if msg.retain {
                    i.retained = retained;
                }
            }
            None if full => {
                change.refused = true;
                return change;
            }
            None => {
                change.added = 1;
                map.insert(
                    Arc::from(key),
                    Instance {
                        latest: msg.clone(),
                        retained,
                    },
                );
            }
        }
        if msg.retain {
            self.retained = map
                .get(key)
                .and_then(|i| i.retained.clone())
                .or_else(|| newest_retained(map));
        }
        change
    }

    /// The last retained message of every instance (of the address itself
    /// when it is not keyed): what a late subscriber receives.
    fn retained_values(&self) -> Vec<Message> {
        match &self.instances {
            Some(m) => m
                .values()
                .filter_map(|i| i.retained.as_deref().cloned())
                .collect(),
            None => self.retained.as_deref().cloned().into_iter().collect(),
        }
    }

    /// The last message of every instance (of the address itself when it is
    /// not keyed): what a snapshot shows.
    fn latest_values(&self) -> Vec<Message> {
        match &self.instances {
            Some(m) if !m.is_empty() => m.values().map(|i| (*i.latest).clone()).collect(),
            _ => vec![(*self.latest).clone()],
        }
    }
}

/// The addresses of one adapter.
type PerAdapter = HashMap<Topic, Held>;

/// Adapters are few: a list searched by pointer first (the router records
/// under the adapter's own name), then by name.
#[derive(Default)]
struct Adapters(Vec<(Arc<str>, PerAdapter)>);

impl Adapters {
    #[inline]
    fn position(&self, name: &str) -> Option<usize> {
        let p = name.as_ptr();
        self.0
            .iter()
            .position(|(a, _)| a.as_ptr() == p && a.len() == name.len())
            .or_else(|| self.0.iter().position(|(a, _)| **a == *name))
    }

    fn get(&self, name: &str) -> Option<&PerAdapter> {
        self.position(name).map(|i| &self.0[i].1)
    }

    fn get_mut(&mut self, name: &str) -> Option<&mut PerAdapter> {
        self.position(name).map(|i| &mut self.0[i].1)
    }

    /// The addresses of `name`, made when missing unless the book is `full`.
    fn per_mut(&mut self, name: &Arc<str>, full: bool) -> Option<&mut PerAdapter> {
        match self.position(name) {
            Some(i) => Some(&mut self.0[i].1),
            None if full => None,
            None => Some(self.insert(name)),
        }
    }

    fn insert(&mut self, name: &Arc<str>) -> &mut PerAdapter {
        self.0.push((name.clone(), PerAdapter::default()));
        let last = self.0.len() - 1;
        &mut self.0[last].1
    }

    fn iter(&self) -> impl Iterator<Item = (&Arc<str>, &PerAdapter)> {
        self.0.iter().map(|(a, p)| (a, p))
    }
}

struct Tap {
    pattern: AddressPattern,
    tx: mpsc::Sender<Message>,
}

/// Last values per address, bounded in the number of addresses.
pub struct AddressBook {
    entries: RwLock<Adapters>,
    len: AtomicU64,
    instances: AtomicU64,
    max_entries: usize,
    refused: AtomicU64,
    taps: RwLock<Vec<Tap>>,
    /// Whether `taps` is non-empty, read without taking its lock.
    tapped: AtomicBool,
    tap_drops: AtomicU64,
}

impl std::fmt::Debug for AddressBook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AddressBook")
            .field("len", &self.len())
            .field("max_entries", &self.max_entries)
            .finish()
    }
}

/// The default bound on addresses held.
pub const DEFAULT_MAX_ENTRIES: usize = 100_000;

impl Default for AddressBook {
    fn default() -> Self {
        AddressBook::new(DEFAULT_MAX_ENTRIES)
    }
}

impl AddressBook {
    /// A book holding at most `max_entries` addresses; new addresses beyond that
    /// are not recorded (and counted), existing ones keep updating.
    pub fn new(max_entries: usize) -> Self {
        AddressBook {
            entries: RwLock::new(Adapters::default()),
            len: AtomicU64::new(0),
            instances: AtomicU64::new(0),
            max_entries,
            refused: AtomicU64::new(0),
            taps: RwLock::new(Vec::new()),
            tapped: AtomicBool::new(false),
            tap_drops: AtomicU64::new(0),
        }
    }

    /// Records `msg` as the latest at `adapter:msg.topic` and feeds the taps.
    pub fn record(&self, adapter: &Arc<str>, msg: &Message) {
        self.record_shared(adapter, &Arc::new(msg.clone()));
    }

    /// [`record`](Self::record) for a message already shared (the router's
    /// deliveries): the book keeps a reference, not a copy.
    pub fn record_shared(&self, adapter: &Arc<str>, msg: &Arc<Message>) {
        {
            let mut all = self.entries.write().unwrap_or_else(|e| e.into_inner());
            let full = self.len.load(Ordering::Relaxed) as usize >= self.max_entries;
            let per = all.per_mut(adapter, full);
            match per {
                Some(per) => match per.get_mut(&msg.topic) {
                    Some(e) => {
                        let c = e.update(msg, self.instance_room());
                        self.count_instances(c);
                    }
                    None if full => {
                        self.refused.fetch_add(1, Ordering::Relaxed);
                    }
                    None => self.insert_new(per, msg),
                },
                None => {
                    self.refused.fetch_add(1, Ordering::Relaxed);
                }
            }
        }
        self.feed_taps(adapter, msg);
    }

    /// Records the message `make` builds at `adapter:topic`, for a topic known
    /// only as text (a destination template just expanded): when the book
    /// holds the address, its topic is lent to `make` (no allocation, no
    /// validation); otherwise the text is validated into a new one. `None`
    /// when the text is not a valid topic name. The taps are fed as by
    /// [`record`](Self::record).
    pub fn record_at(
        &self,
        adapter: &Arc<str>,
        topic: &str,
        make: impl FnOnce(Topic) -> Arc<Message>,
    ) -> Option<Arc<Message>> {
        let msg = {
            let mut all = self.entries.write().unwrap_or_else(|e| e.into_inner());
            let full = self.len.load(Ordering::Relaxed) as usize >= self.max_entries;
            let per = all.per_mut(adapter, full);
            match per {
                Some(per) => match per.get_mut(topic) {
                    Some(e) => {
                        let m = make(e.latest.topic.clone());
                        let c = e.update(&m, self.instance_room());
                        self.count_instances(c);
                        m
                    }
                    None => {
                        let m = make(Topic::new(topic).ok()?);
                        if full {
                            self.refused.fetch_add(1, Ordering::Relaxed);
                        } else {
                            self.insert_new(per, &m);
                        }
                        m
                    }
                },
                None => {
                    let m = make(Topic::new(topic).ok()?);
                    self.refused.fetch_add(1, Ordering::Relaxed);
                    m
                }
            }
        };
        self.feed_taps(adapter, &msg);
        Some(msg)
    }

    /// A new address, with room checked by the caller.
    fn insert_new(&self, per: &mut PerAdapter, msg: &Arc<Message>) {
        let (e, c) = Held::new(msg, self.instance_room());
        per.insert(msg.topic.clone(), e);
        self.len.fetch_add(1, Ordering::Relaxed);
        self.count_instances(c);
    }

    #[inline]
    fn instance_room(&self) -> bool {
        (self.instances.load(Ordering::Relaxed) as usize) < self.max_entries
    }

    #[inline]
    fn count_instances(&self, c: Change) {
        if c.added > 0 {
            self.instances.fetch_add(c.added as u64, Ordering::Relaxed);
        } else if c.added < 0 {
            self.instances
                .fetch_sub(c.added.unsigned_abs(), Ordering::Relaxed);
        }
        if c.refused {
            self.refused.fetch_add(1, Ordering::Relaxed);
        }
    }

    #[inline]
    fn feed_taps(&self, adapter: &Arc<str>, msg: &Message) {
        if !self.tapped.load(Ordering::Acquire) {
            return;
        }
        let taps = self.taps.read().unwrap_or_else(|e| e.into_inner());
        if taps.is_empty() {
            return;
        }
        let mut closed = false;
        for tap in taps.iter() {
            if tap.pattern.adapter.admits(adapter) && tap.pattern.filter.matches(&msg.topic) {
                let mut m = msg.clone();
                m.origin.adapter = adapter.clone();
                match tap.tx.try_send(m) {
                    Ok(()) => {}
                    Err(mpsc::error::TrySendError::Full(_)) => {
                        self.tap_drops.fetch_add(1, Ordering::Relaxed);
                    }
                    Err(mpsc::error::TrySendError::Closed(_)) => closed = true,
                }
            }
        }
        drop(taps);
        if closed {
            let mut taps = self.taps.write().unwrap_or_else(|e| e.into_inner());
            taps.retain(|t| !t.tx.is_closed());
            self.tapped.store(!taps.is_empty(), Ordering::Release);
        }
    }

    /// The entry at an address.
    pub fn get(&self, adapter: &str, topic: &Topic) -> Option<Entry> {
        let all = self.entries.read().unwrap_or_else(|e| e.into_inner());
        all.get(adapter)?.get(topic).map(Held::entry)
    }

    /// The latest message at an address.
    pub fn latest(&self, addr: &Address) -> Option<Message> {
        self.get(&addr.adapter, &addr.topic).map(|e| e.latest)
    }

    /// Retained messages of `adapter` whose topic matches `filter`: one per
    /// instance at keyed addresses.
    pub fn retained_matching(&self, adapter: &str, filter: &Pattern) -> Vec<Message> {
        self.collect(adapter, filter, Held::retained_values)
    }

    /// Latest messages of `adapter` whose topic matches `filter`: one per
    /// instance at keyed addresses.
    pub fn latest_matching(&self, adapter: &str, filter: &Pattern) -> Vec<Message> {
        self.collect(adapter, filter, Held::latest_values)
    }

    fn collect(
        &self,
        adapter: &str,
        filter: &Pattern,
        f: impl Fn(&Held) -> Vec<Message>,
    ) -> Vec<Message> {
        let all = self.entries.read().unwrap_or_else(|e| e.into_inner());
        let Some(per) = all.get(adapter) else {
            return Vec::new();
        };
        if filter.is_exact() {
            return Topic::new(filter.as_str())
                .ok()
                .and_then(|t| per.get(&t))
                .map(&f)
                .unwrap_or_default();
        }
        per.iter()
            .filter(|(t, _)| filter.matches(t))
            .flat_map(|(_, e)| f(e))
            .collect()
    }

    /// Forgets an address (CoAP DELETE); whether it was held.
    pub fn forget(&self, adapter: &str, topic: &Topic) -> bool {
        let mut all = self.entries.write().unwrap_or_else(|e| e.into_inner());
        let Some(e) = all.get_mut(adapter).and_then(|p| p.remove(topic)) else {
            return false;
        };
        self.len.fetch_sub(1, Ordering::Relaxed);
        self.count_instances(Change {
            added: -(e.instances.map_or(0, |m| m.len() as i64)),
            refused: false,
        });
        true
    }

    /// Clears the retained value at an address (MQTT empty retained publish).
    pub fn clear_retained(&self, adapter: &str, topic: &Topic) {
        let mut all = self.entries.write().unwrap_or_else(|e| e.into_inner());
        if let Some(e) = all.get_mut(adapter).and_then(|p| p.get_mut(topic)) {
            e.retained = None;
            if let Some(m) = &mut e.instances {
                for i in Arc::make_mut(m).values_mut() {
                    i.retained = None;
                }
            }
        }
    }

    /// Every address held, for `/api/topics`.
    pub fn topics(&self) -> Vec<TopicInfo> {
        let all = self.entries.read().unwrap_or_else(|e| e.into_inner());
        let mut out: Vec<TopicInfo> = all
            .iter()
            .flat_map(|(a, per)| {
                per.iter().map(move |(t, e)| TopicInfo {
                    address: format!("{a}:{t}"),
                    adapter: a.to_string(),
                    topic: t.to_string(),
                    count: e.count,
                    updated_ms: e
                        .updated
                        .duration_since(SystemTime::UNIX_EPOCH)
                        .map_or(0, |d| d.as_millis() as u64),
                    format: e.latest.format.name().to_owned(),
                    size: e.latest.payload.len(),
                    retained: e.retained.is_some(),
                    preview: preview(&e.latest),
                })
            })
            .collect();
        out.sort_by(|a, b| a.address.cmp(&b.address));
        out
    }

    /// Addresses held.
    pub fn len(&self) -> usize {
        self.len.load(Ordering::Relaxed) as usize
    }

    /// Whether none are held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// New addresses refused because the book was full.
    pub fn refused(&self) -> u64 {
        self.refused.load(Ordering::Relaxed)
    }

    /// Messages a slow tap missed.
    pub fn tap_drops(&self) -> u64 {
        self.tap_drops.load(Ordering::Relaxed)
    }

    /// Subscribes to every message recorded at an address matching `pattern`;
    /// a subscriber that falls `capacity` messages behind misses messages
    /// (counted in [`AddressBook::tap_drops`]).
    pub fn subscribe(&self, pattern: AddressPattern, capacity: usize) -> Subscription {
        let (tx, rx) = mpsc::channel(capacity.max(1));
        let mut taps = self.taps.write().unwrap_or_else(|e| e.into_inner());
        taps.push(Tap { pattern, tx });
        self.tapped.store(true, Ordering::Release);
        Subscription { rx }
    }
}

/// A stream of messages at addresses matching a pattern. Each message's
/// `origin.adapter` is the adapter of the address it was recorded at.
#[derive(Debug)]
pub struct Subscription {
    rx: mpsc::Receiver<Message>,
}

impl Subscription {
    /// The next message; `None` when the bridge stopped.
    pub async fn recv(&mut self) -> Option<Message> {
        self.rx.recv().await
    }
}

impl futures_core::Stream for Subscription {
    type Item = Message;
    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Message>> {
        self.rx.poll_recv(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(topic: &str, payload: &str, retain: bool) -> Message {
        Message::new("x", Topic::new(topic).unwrap(), payload.to_owned()).with_retain(retain)
    }

    #[test]
    fn record_at_lends_the_held_topic_and_refuses_bad_text() {
        let b = AddressBook::default();
        let a: Arc<str> = Arc::from("http");
        let first = b
            .record_at(&a, "t/1", |t| Arc::new(msg(t.as_str(), "1", false)))
            .unwrap();
        let mut lent = None;
        let second = b
            .record_at(&a, "t/1", |t| {
                lent = Some(t.clone());
                Arc::new(msg(t.as_str(), "2", false))
            })
            .unwrap();
        // The second message was built around the book's own topic.
        assert!(Arc::ptr_eq(lent.unwrap().as_arc(), first.topic.as_arc()));
        assert_eq!(&second.payload[..], b"2");
        assert_eq!(
            b.latest(&Address::new(a.clone(), Topic::new("t/1").unwrap()))
                .unwrap()
                .payload,
            "2"
        );
        assert!(
            b.record_at(&a, "bad/+", |t| Arc::new(msg(t.as_str(), "x", false)))
                .is_none()
        );
        assert_eq!(b.len(), 1);
    }

    #[test]
    fn latest_and_retained() {
        let b = AddressBook::new(10);
        let mqtt: Arc<str> = "mqtt".into();
        b.record(&mqtt, &msg("a/b", "1", true));
        b.record(&mqtt, &msg("a/b", "2", false));
        let e = b.get("mqtt", &Topic::new("a/b").unwrap()).unwrap();
        assert_eq!(&e.latest.payload[..], b"2");
        assert_eq!(&e.retained.unwrap().payload[..], b"1");
        assert_eq!(e.count, 2);
        b.record(&mqtt, &msg("a/b", "", true));
        assert!(
            b.retained_matching("mqtt", &Pattern::new("#").unwrap())
                .is_empty()
        );
        assert!(b.get("http", &Topic::new("a/b").unwrap()).is_none());
    }

    #[test]
    fn bounded() {
        let b = AddressBook::new(2);
        let a: Arc<str> = "a".into();
        for t in ["x", "y", "z"] {
            b.record(&a, &msg(t, "v", false));
        }
        assert_eq!(b.len(), 2);
        assert_eq!(b.refused(), 1);
        b.record(&a, &msg("x", "w", false));
        assert_eq!(b.refused(), 1);
        assert!(b.forget("a", &Topic::new("x").unwrap()));
        b.record(&a, &msg("z", "v", false));
        assert_eq!(b.len(), 2);
    }

    fn keyed(topic: &str, key: &str, payload: &str, state: Option<&str>) -> Message {
        let mut m = msg(topic, payload, true);
        m.properties.push(INSTANCE_KEY, key);
        if let Some(s) = state {
            m.properties.push(INSTANCE_STATE, s);
        }
        m
    }

    fn payloads(mut v: Vec<Message>) -> Vec<String> {
        v.sort_by_key(|m| m.timestamp);
        v.iter()
            .map(|m| String::from_utf8_lossy(&m.payload).into_owned())
            .collect()
    }

    #[test]
    fn instances_keep_their_own_last_values() {
        let b = AddressBook::new(10);
        let dds: Arc<str> = "dds".into();
        let all = Pattern::new("#").unwrap();
        b.record(&dds, &keyed("t", "1", "a1", None));
        b.record(&dds, &keyed("t", "2", "b1", None));
        b.record(&dds, &keyed("t", "1", "a2", None));
        assert_eq!(b.len(), 1);
        assert_eq!(payloads(b.retained_matching("dds", &all)), ["b1", "a2"]);
        assert_eq!(payloads(b.latest_matching("dds", &all)), ["b1", "a2"]);
        let t = Topic::new("t").unwrap();
        assert_eq!(&b.get("dds", &t).unwrap().latest.payload[..], b"a2");
        // A disposed instance is gone; the address shows the newest remaining.
        b.record(&dds, &keyed("t", "1", "", Some("disposed")));
        assert_eq!(payloads(b.retained_matching("dds", &all)), ["b1"]);
        assert_eq!(&b.get("dds", &t).unwrap().latest.payload[..], b"b1");
        // A message without a key makes the address plain again.
        b.record(&dds, &msg("t", "plain", true));
        assert_eq!(payloads(b.retained_matching("dds", &all)), ["plain"]);
        assert_eq!(b.get("dds", &t).unwrap().instances().count(), 0);
        assert_eq!(b.instances.load(Ordering::Relaxed), 0);
    }

    #[test]
    fn instances_are_bounded() {
        let b = AddressBook::new(3);
        let dds: Arc<str> = "dds".into();
        for k in 0..5 {
            b.record(&dds, &keyed("t", &k.to_string(), "v", None));
        }
        assert_eq!(b.instances.load(Ordering::Relaxed), 3);
        assert_eq!(b.refused(), 2);
        assert_eq!(
            b.retained_matching("dds", &Pattern::new("t").unwrap())
                .len(),
            3
        );
        assert!(b.forget("dds", &Topic::new("t").unwrap()));
        assert_eq!(b.instances.load(Ordering::Relaxed), 0);
    }

    #[tokio::test]
    async fn taps_receive_matching() {
        let b = AddressBook::new(10);
        let mut sub = b.subscribe(AddressPattern::parse("*:s/#").unwrap(), 4);
        b.record(&"http".into(), &msg("s/1", "a", false));
        b.record(&"http".into(), &msg("t/1", "b", false));
        b.record(&"mqtt".into(), &msg("s/2", "c", false));
        let m = sub.recv().await.unwrap();
        assert_eq!((&*m.origin.adapter, m.topic.as_str()), ("http", "s/1"));
        let m = sub.recv().await.unwrap();
        assert_eq!((&*m.origin.adapter, m.topic.as_str()), ("mqtt", "s/2"));
    }

    /// Inside a `DeferDrops`, the values the book replaces stay alive until
    /// it ends (nested scopes: the outermost); outside, they go at once.
    #[test]
    fn replaced_values_are_freed_when_the_deferral_ends() {
        let b = AddressBook::default();
        let a: Arc<str> = Arc::from("mqtt");
        let first = Arc::new(msg("t/1", "1", true));
        let weak = Arc::downgrade(&first);
        b.record_shared(&a, &first);
        drop(first);
        {
            let _outer = DeferDrops::begin();
            {
                let _inner = DeferDrops::begin();
                b.record_shared(&a, &Arc::new(msg("t/1", "2", true)));
            }
            assert!(weak.upgrade().is_some(), "kept until the outer scope ends");
        }
        assert!(weak.upgrade().is_none(), "freed when it ended");
        let second = b.latest(&Address::new("mqtt", Topic::new("t/1").unwrap()));
        assert_eq!(second.map(|m| m.payload), Some(bytes::Bytes::from("2")));
        // Outside a deferral the replaced value goes at once.
        let weak = {
            let m = Arc::new(msg("t/2", "1", false));
            b.record_shared(&a, &m);
            Arc::downgrade(&m)
        };
        b.record_shared(&a, &Arc::new(msg("t/2", "2", false)));
        assert!(weak.upgrade().is_none());
    }
}
