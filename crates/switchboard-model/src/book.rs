//! The address book: the last value of every address (the one last-value cache
//! behind MQTT retained messages, HTTP and CoAP GET, WebSocket snapshots and
//! DDS late joiners), per-address counts, and taps for library subscribers.

use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::task::{Context, Poll};
use std::time::SystemTime;

use serde::Serialize;
use tokio::sync::mpsc;

use crate::address::{Address, AddressPattern};
use crate::message::Message;
use crate::topic::{Pattern, Topic};

/// Maps keyed by peer-chosen strings: foldhash is fast and seeded per process.
type HashMap<K, V> = std::collections::HashMap<K, V, foldhash::fast::RandomState>;

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
}

impl Held {
    fn entry(&self) -> Entry {
        Entry {
            latest: (*self.latest).clone(),
            retained: self.retained.as_deref().cloned(),
            count: self.count,
            updated: self.updated,
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
    max_entries: usize,
    refused: AtomicU64,
    taps: RwLock<Vec<Tap>>,
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
            max_entries,
            refused: AtomicU64::new(0),
            taps: RwLock::new(Vec::new()),
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
            let per = match all.position(adapter) {
                Some(i) => Some(&mut all.0[i].1),
                None if full => None,
                None => Some(all.insert(adapter)),
            };
            match per {
                Some(per) => match per.get_mut(&msg.topic) {
                    Some(e) => {
                        if msg.retain {
                            e.retained = (!msg.payload.is_empty()).then(|| msg.clone());
                        }
                        e.latest = msg.clone();
                        e.count += 1;
                        e.updated = msg.timestamp;
                    }
                    None if full => {
                        self.refused.fetch_add(1, Ordering::Relaxed);
                    }
                    None => {
                        per.insert(
                            msg.topic.clone(),
                            Held {
                                latest: msg.clone(),
                                retained: (msg.retain && !msg.payload.is_empty())
                                    .then(|| msg.clone()),
                                count: 1,
                                updated: msg.timestamp,
                            },
                        );
                        self.len.fetch_add(1, Ordering::Relaxed);
                    }
                },
                None => {
                    self.refused.fetch_add(1, Ordering::Relaxed);
                }
            }
        }
        self.feed_taps(adapter, msg);
    }

    fn feed_taps(&self, adapter: &Arc<str>, msg: &Message) {
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
            self.taps
                .write()
                .unwrap_or_else(|e| e.into_inner())
                .retain(|t| !t.tx.is_closed());
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

    /// Retained messages of `adapter` whose topic matches `filter`.
    pub fn retained_matching(&self, adapter: &str, filter: &Pattern) -> Vec<Message> {
        self.collect(adapter, filter, |e| e.retained.as_deref().cloned())
    }

    /// Latest messages of `adapter` whose topic matches `filter`.
    pub fn latest_matching(&self, adapter: &str, filter: &Pattern) -> Vec<Message> {
        self.collect(adapter, filter, |e| Some((*e.latest).clone()))
    }

    fn collect(
        &self,
        adapter: &str,
        filter: &Pattern,
        f: impl Fn(&Held) -> Option<Message>,
    ) -> Vec<Message> {
        let all = self.entries.read().unwrap_or_else(|e| e.into_inner());
        let Some(per) = all.get(adapter) else {
            return Vec::new();
        };
        if filter.is_exact() {
            return Topic::new(filter.as_str())
                .ok()
                .and_then(|t| per.get(&t))
                .and_then(&f)
                .into_iter()
                .collect();
        }
        per.iter()
            .filter(|(t, _)| filter.matches(t))
            .filter_map(|(_, e)| f(e))
            .collect()
    }

    /// Forgets an address (CoAP DELETE); whether it was held.
    pub fn forget(&self, adapter: &str, topic: &Topic) -> bool {
        let mut all = self.entries.write().unwrap_or_else(|e| e.into_inner());
        let removed = all.get_mut(adapter).and_then(|p| p.remove(topic)).is_some();
        if removed {
            self.len.fetch_sub(1, Ordering::Relaxed);
        }
        removed
    }

    /// Clears the retained value at an address (MQTT empty retained publish).
    pub fn clear_retained(&self, adapter: &str, topic: &Topic) {
        let mut all = self.entries.write().unwrap_or_else(|e| e.into_inner());
        if let Some(e) = all.get_mut(adapter).and_then(|p| p.get_mut(topic)) {
            e.retained = None;
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
        self.taps
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .push(Tap { pattern, tx });
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
}
