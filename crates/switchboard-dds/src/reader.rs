//! One bridged reader: turns what a raw DDS reader reads into bridge
//! [`Message`]s, applies the loop guard, and publishes them into the router.
//!
//! Loop guard: samples from our own participant are never bridged (our
//! writers' samples would otherwise come straight back); samples from another
//! switchboard bridge's participant were bridged once already and are dropped
//! unless `forward_bridged` is set, in which case they travel with hop count 1.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use rustdds::InstanceState;
use switchboard_model::{Counter, Format, Ingress, Message, Qos, Topic};
use tokio_util::sync::CancellationToken;

use crate::discovery::{GuidPrefix, prefix_of};
use crate::endpoints::{ReadItem, ReadStream};
use crate::mapping::hex;
use crate::typed::Typed;

/// A reader logs a dropped sample at most this often.
const LOG_EVERY: Duration = Duration::from_secs(60);

/// Message property carrying the instance key: hex of the serialized key
/// with its encapsulation header (as the writer sent it in a dispose).
pub const PROP_KEY: &str = switchboard_model::INSTANCE_KEY;
/// Message property carrying the instance state of a not-alive instance:
/// `disposed` or `unregistered`.
pub const PROP_INSTANCE_STATE: &str = switchboard_model::INSTANCE_STATE;
/// Message property carrying the DDS type name.
pub const PROP_TYPE: &str = "dds.type";

/// State shared by the adapter and its readers.
#[derive(Debug)]
pub struct Shared {
    /// The adapter instance name.
    pub name: Arc<str>,
    /// Our participant's GUID prefix.
    pub own: GuidPrefix,
    /// Other bridges' participants.
    pub bridges: RwLock<HashSet<GuidPrefix>>,
    /// Bridge other bridges' samples too.
    pub forward_bridged: bool,
    /// Largest payload accepted.
    pub max_payload: usize,
    /// Samples dropped by the loop guard.
    pub loop_drops: Counter,
    /// Samples over `max_payload`.
    pub too_large: Counter,
    /// Samples rustdds could not hand over.
    pub read_errors: Counter,
    /// Samples of typed topics that did not decode with their type.
    pub decode_failures: Counter,
    /// Figures per DDS topic, for `/healthz` and `/metrics`.
    pub topic_stats: TopicStatsMap,
}

/// Most DDS topics with their own figures (readers and writers are bounded
/// below this); further topics are counted only in the adapter's totals.
const MAX_TOPIC_STATS: usize = 10_000;

/// Figures of one DDS topic.
#[derive(Debug, Default)]
pub struct TopicStats {
    /// Samples read and published into the router.
    pub samples_in: AtomicU64,
    /// Samples (and disposes) written.
    pub samples_out: AtomicU64,
    /// Samples or deliveries that did not fit the topic's IDL type.
    pub decode_failures: AtomicU64,
    /// Writers of other participants on the topic (what our reader matches).
    pub remote_writers: AtomicU64,
    /// Readers of other participants on the topic (what our writers match).
    pub remote_readers: AtomicU64,
    /// Whether the adapter reads the topic (0 or 1).
    pub reading: AtomicU64,
    /// Writers the adapter holds on the topic.
    pub writers: AtomicU64,
}

impl TopicStats {
    /// Adds one to a figure.
    pub fn inc(c: &AtomicU64) {
        c.fetch_add(1, Ordering::Relaxed);
    }
}

/// [`TopicStats`] by DDS topic name.
#[derive(Debug, Default)]
pub struct TopicStatsMap(Mutex<HashMap<Arc<str>, Arc<TopicStats>>>);

impl TopicStatsMap {
    /// The figures of `dds_name` (registered on first use).
    pub fn get(&self, dds_name: &str) -> Arc<TopicStats> {
        let mut m = self.0.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(s) = m.get(dds_name) {
            return s.clone();
        }
        let s = Arc::new(TopicStats::default());
        if m.len() < MAX_TOPIC_STATS {
            m.insert(Arc::from(dds_name), s.clone());
        }
        s
    }

    /// Every topic's figures, named as metrics (without `switchboard_`).
    pub fn detail(&self) -> BTreeMap<String, BTreeMap<&'static str, u64>> {
        let m = self.0.lock().unwrap_or_else(|e| e.into_inner());
        m.iter()
            .map(|(t, s)| {
                let g = |c: &AtomicU64| c.load(Ordering::Relaxed);
                let figs = BTreeMap::from([
                    ("dds_topic_samples_in_total", g(&s.samples_in)),
                    ("dds_topic_samples_out_total", g(&s.samples_out)),
                    ("dds_topic_decode_failures_total", g(&s.decode_failures)),
                    ("dds_topic_matched_writers", g(&s.remote_writers)),
                    ("dds_topic_matched_readers", g(&s.remote_readers)),
                    ("dds_topic_reading", g(&s.reading)),
                    ("dds_topic_writers", g(&s.writers)),
                ]);
                (t.to_string(), figs)
            })
            .collect()
    }

    /// Runs `f` on every topic's figures.
    pub fn for_each(&self, mut f: impl FnMut(&str, &TopicStats)) {
        let m = self.0.lock().unwrap_or_else(|e| e.into_inner());
        for (t, s) in m.iter() {
            f(t, s);
        }
    }
}

/// What a reader knows about its topic.
#[derive(Clone, Debug)]
pub struct ReaderInfo {
    /// The bridge topic.
    pub topic: Topic,
    /// The DDS type name.
    pub dds_type: Arc<str>,
    /// The type name carried in the message format (IDL name).
    pub idl_type: Arc<str>,
    /// QoS of produced messages.
    pub qos: Qos,
    /// Retain flag of produced messages.
    pub retain: bool,
    /// The type from the IDL files, when declared: samples become JSON.
    pub typed: Option<Arc<Typed>>,
    /// The DDS topic's figures.
    pub stats: Arc<TopicStats>,
}

/// Why a read item produced no message (each is counted).
#[derive(Debug, PartialEq, Eq)]
pub enum Dropped {
    /// The loop guard.
    Loop,
    /// Over `max_payload`.
    TooLarge,
    /// rustdds could not hand the sample over.
    Read(String),
    /// The sample does not fit its type (the reason names the member).
    Decode(String),
}

/// What the loop guard decides about a sample from `writer`.
#[derive(Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Bridge it with this hop count.
    Bridge(u8),
    /// Ours: drop.
    Own,
    /// Another bridge's and not forwarded: drop.
    Bridged,
}

impl Shared {
    /// The loop guard.
    pub fn verdict(&self, writer: &GuidPrefix) -> Verdict {
        if *writer == self.own {
            return Verdict::Own;
        }
        let from_bridge = self
            .bridges
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .contains(writer);
        match (from_bridge, self.forward_bridged) {
            (false, _) => Verdict::Bridge(0),
            (true, true) => Verdict::Bridge(1),
            (true, false) => Verdict::Bridged,
        }
    }
}

/// Converts one read item into a message, or says why not (counted here).
pub fn to_message(item: ReadItem, info: &ReaderInfo, shared: &Shared) -> Result<Message, Dropped> {
    let (writer, source_time) = match &item {
        ReadItem::Sample {
            writer,
            source_time,
            ..
        }
        | ReadItem::Instance {
            writer,
            source_time,
            ..
        } => (prefix_of(writer), *source_time),
        ReadItem::Error(e) => {
            shared.read_errors.inc();
            return Err(Dropped::Read(e.clone()));
        }
    };
    let hops = match shared.verdict(&writer) {
        Verdict::Bridge(h) => h,
        Verdict::Own | Verdict::Bridged => {
            shared.loop_drops.inc();
            return Err(Dropped::Loop);
        }
    };
    let mut msg = match item {
        ReadItem::Sample { sample, .. } => {
            if sample.body.len() + 4 > shared.max_payload {
                shared.too_large.inc();
                return Err(Dropped::TooLarge);
            }
            if let Some(t) = &info.typed {
                let d = t.decode(&sample).map_err(|e| {
                    shared.decode_failures.inc();
                    TopicStats::inc(&info.stats.decode_failures);
                    Dropped::Decode(e.to_string())
                })?;
                let mut m = Message::new(shared.name.clone(), info.topic.clone(), d.json);
                m.format = Format::Json;
                if let Some(k) = d.key {
                    m.properties.push(PROP_KEY, k);
                }
                return Ok(finish(m, info, source_time, &writer, hops));
            }
            let mut m = Message::new(
                shared.name.clone(),
                info.topic.clone(),
                sample.to_encapsulated(),
            );
            if !sample.key.bytes.is_empty() {
                m.properties
                    .push(PROP_KEY, hex(&sample.key.to_encapsulated()));
            }
            m
        }
        ReadItem::Instance { key, state, .. } => {
            let mut m = Message::new(shared.name.clone(), info.topic.clone(), Vec::new());
            match info.typed.as_ref().and_then(|t| t.dispose_key(&key)) {
                Some(k) => {
                    m.properties.push(PROP_KEY, k);
                    m.format = Format::Json;
                }
                None => m.properties.push(PROP_KEY, hex(&key.to_encapsulated())),
            }
            let state = match state {
                InstanceState::NotAliveDisposed => "disposed",
                _ => "unregistered",
            };
            m.properties.push(PROP_INSTANCE_STATE, state);
            return Ok(finish(m, info, source_time, &writer, hops));
        }
        ReadItem::Error(e) => return Err(Dropped::Read(e)),
    };
    msg.format = Format::Cdr(Some(info.idl_type.clone()));
    Ok(finish(msg, info, source_time, &writer, hops))
}

fn finish(
    mut msg: Message,
    info: &ReaderInfo,
    source_time: Option<std::time::SystemTime>,
    writer: &GuidPrefix,
    hops: u8,
) -> Message {
    msg.properties.push(PROP_TYPE, info.dds_type.clone());
    msg.qos = info.qos;
    msg.retain = info.retain;
    msg.source_timestamp = source_time;
    msg.origin.peer = Some(Arc::from(hex(writer)));
    msg.trace.hops = hops;
    msg
}

/// Reads until `cancel` fires or the router stops.
pub async fn run(
    mut stream: ReadStream,
    info: ReaderInfo,
    shared: Arc<Shared>,
    ingress: Ingress,
    cancel: CancellationToken,
) {
    let mut last_log: Option<Instant> = None;
    loop {
        let item = tokio::select! {
            () = cancel.cancelled() => return,
            item = stream.next() => match item {
                Some(i) => i,
                None => return,
            },
        };
        match to_message(item, &info, &shared) {
            Ok(msg) => {
                if ingress.publish(msg).await.is_err() {
                    return;
                }
                TopicStats::inc(&info.stats.samples_in);
            }
            Err(Dropped::Decode(reason) | Dropped::Read(reason)) => {
                let now = Instant::now();
                if last_log.is_none_or(|t| now.duration_since(t) >= LOG_EVERY) {
                    last_log = Some(now);
                    tracing::warn!(
                        adapter = %shared.name,
                        topic = %info.topic,
                        dds_type = %info.dds_type,
                        reason,
                        "DDS sample dropped (logged once a minute per topic)."
                    );
                }
            }
            Err(Dropped::Loop | Dropped::TooLarge) => {}
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::raw::{RawKey, RawSample};
    use bytes::Bytes;
    use rustdds::GUID;
    use switchboard_model::AdapterMetrics;

    fn shared(forward: bool) -> Shared {
        let m = AdapterMetrics::default();
        Shared {
            name: "dds".into(),
            own: [1; 12],
            bridges: RwLock::new([[2; 12]].into_iter().collect()),
            forward_bridged: forward,
            max_payload: 16,
            loop_drops: m.counter("l", "l"),
            too_large: m.counter("t", "t"),
            read_errors: m.counter("e", "e"),
            decode_failures: m.counter("d", "d"),
            topic_stats: TopicStatsMap::default(),
        }
    }

    fn guid(p: u8) -> GUID {
        let mut b = [p; 16];
        b[15] = 0x03;
        GUID::from_bytes(b)
    }

    fn info() -> ReaderInfo {
        ReaderInfo {
            topic: Topic::new("chatter").unwrap(),
            dds_type: "std_msgs::msg::dds_::String_".into(),
            idl_type: "std_msgs::msg::String".into(),
            qos: Qos::AtLeastOnce,
            retain: true,
            typed: None,
            stats: Arc::default(),
        }
    }

    fn sample(p: u8, body: &'static [u8]) -> ReadItem {
        ReadItem::Sample {
            sample: RawSample {
                rep: 1,
                body: Bytes::from_static(body),
                key: RawKey::default(),
            },
            writer: guid(p),
            source_time: None,
        }
    }

    #[test]
    fn loop_guard() {
        let s = shared(false);
        assert!(matches!(
            to_message(sample(1, b"x"), &info(), &s),
            Err(Dropped::Loop)
        ));
        assert!(matches!(
            to_message(sample(2, b"x"), &info(), &s),
            Err(Dropped::Loop)
        ));
        assert_eq!(s.loop_drops.get(), 2);
        let m = to_message(sample(3, b"abc"), &info(), &s).unwrap();
        assert_eq!(&m.payload[..], &[0, 1, 0, 0, b'a', b'b', b'c']);
        assert_eq!(m.format, Format::Cdr(Some("std_msgs::msg::String".into())));
        assert_eq!(
            m.properties.get(PROP_TYPE),
            Some("std_msgs::msg::dds_::String_")
        );
        assert!(m.retain && m.qos == Qos::AtLeastOnce && m.trace.hops == 0);
        let f = shared(true);
        assert_eq!(
            to_message(sample(2, b"x"), &info(), &f).unwrap().trace.hops,
            1
        );
    }

    #[test]
    fn too_large_and_instances() {
        let s = shared(false);
        assert!(matches!(
            to_message(sample(3, &[0u8; 13]), &info(), &s),
            Err(Dropped::TooLarge)
        ));
        assert_eq!(s.too_large.get(), 1);
        let m = to_message(
            ReadItem::Instance {
                key: RawKey::from_bytes(1, vec![7, 0, 0, 0]),
                state: InstanceState::NotAliveDisposed,
                writer: guid(3),
                source_time: None,
            },
            &info(),
            &s,
        )
        .unwrap();
        assert!(m.payload.is_empty());
        assert_eq!(m.properties.get(PROP_KEY), Some("0001000007000000"));
        assert_eq!(m.properties.get(PROP_INSTANCE_STATE), Some("disposed"));
    }
}
