//! The DDS adapter: one rustdds participant, readers for the topics the routes
//! read (configured and, with `discover`, discovered), writers created on the
//! first delivery to a topic, and the loop that ties them to the router.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::Ordering;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use rustdds::{
    DomainParticipant, DomainParticipantBuilder, Publisher, QosPolicyBuilder, RTPSEntity,
    Subscriber, TopicKind, no_key,
};
use switchboard_model::{
    Adapter, AdapterContext, AdapterError, BoxFuture, Delivery, Detail, DropReason, Format,
    Interest, Message, Running, Topic,
};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::config::{Config, TopicConfig};
use crate::discovery::{self, BRIDGE_MARKER_TOPIC, BRIDGE_MARKER_TYPE, Snapshot, prefix_of};
use crate::endpoints::{RawWriter, TopicSpec, create_reader, rtps_time};
use crate::mapping::{
    dds_topic_name, dds_type_name, discovered_bridge_topic, durability_of, idl_type_name, qos_of,
    reliability_of, retain_of, unhex,
};
use crate::raw::{RawKey, RawSample, RawSer};
use crate::reader::{
    self, PROP_INSTANCE_STATE, PROP_KEY, ReaderInfo, Shared, TopicStats, TopicStatsMap,
};
use crate::typed::Typed;
use switchboard_codec::idl::TypeRegistry;

/// How often discovery is polled.
const DISCOVERY_PERIOD: Duration = Duration::from_millis(200);
/// Most DDS topics the adapter writes (each costs a rustdds writer); past
/// it, deliveries to new topics fail (a delivery names its own topic, so
/// this bounds what remote peers can make the adapter create).
const MAX_WRITTEN_TOPICS: usize = 4096;
/// Deliveries handled in a row before discovery and interest are looked at.
const BATCH: usize = 256;
/// A per-topic warning is logged at most this often.
const LOG_EVERY: Duration = Duration::from_secs(60);

/// The `dds` adapter.
#[derive(Debug)]
pub struct DdsAdapter {
    config: Config,
}

impl DdsAdapter {
    /// An adapter for `config` (validated by [`Config::validate`]).
    pub fn new(config: Config) -> Self {
        DdsAdapter { config }
    }
}

impl Adapter for DdsAdapter {
    fn kind(&self) -> &str {
        "dds"
    }

    fn start(
        self: Box<Self>,
        ctx: AdapterContext,
    ) -> BoxFuture<'static, Result<Running, AdapterError>> {
        Box::pin(async move {
            let bridge = Bridge::new(self.config, &ctx)?;
            ctx.health.up();
            Ok(Running {
                endpoints: Vec::new(),
                task: Box::pin(bridge.run(ctx)),
            })
        })
    }
}

struct ActiveReader {
    topic: Topic,
    cancel: CancellationToken,
    task: JoinHandle<()>,
}

/// The running adapter's state, owned by its task.
struct Bridge {
    config: Config,
    participant: DomainParticipant,
    publisher: Publisher,
    subscriber: Subscriber,
    shared: Arc<Shared>,
    topics: HashMap<String, rustdds::Topic>,
    readers: HashMap<String, ActiveReader>,
    /// Writers by DDS topic name, one per representation written.
    writers: HashMap<String, Vec<(u16, RawWriter)>>,
    /// Where deliveries to a bridge topic go (cleared when discovery changes).
    routes: HashMap<Topic, (Arc<TopicSpec>, Arc<TopicStats>)>,
    snapshot: Snapshot,
    interest: Arc<[Interest]>,
    last_log: HashMap<String, Instant>,
    registry: Option<Arc<TypeRegistry>>,
    typed: HashMap<String, Option<Arc<Typed>>>,
    _marker: Option<no_key::DataWriter<RawSample, RawSer<1>>>,
}

fn config_err(e: impl std::fmt::Display) -> AdapterError {
    AdapterError::Config(e.to_string())
}

impl Bridge {
    fn new(config: Config, ctx: &AdapterContext) -> Result<Bridge, AdapterError> {
        let registry = if config.idl.is_empty() {
            None
        } else {
            let reg = TypeRegistry::from_idl_files(&config.idl).map_err(config_err)?;
            Some(Arc::new(reg))
        };
        let mut builder = DomainParticipantBuilder::new(config.domain);
        if config.localhost_only {
            builder = builder.with_only_networks([std::net::Ipv4Addr::LOCALHOST]);
        }
        let participant = builder
            .build()
            .map_err(|e| config_err(format!("cannot create DDS participant: {e}")))?;
        let qos = QosPolicyBuilder::new().build();
        let publisher = participant.create_publisher(&qos).map_err(config_err)?;
        let subscriber = participant.create_subscriber(&qos).map_err(config_err)?;
        // The marker writer lets other bridges recognise this participant.
        let marker = participant
            .create_topic(
                BRIDGE_MARKER_TOPIC.to_string(),
                BRIDGE_MARKER_TYPE.to_string(),
                &qos,
                TopicKind::NoKey,
            )
            .ok()
            .and_then(|t| {
                publisher
                    .create_datawriter_no_key::<RawSample, RawSer<1>>(&t, None)
                    .ok()
            });
        let m = &ctx.metrics;
        let shared = Arc::new(Shared {
            name: ctx.name.clone(),
            own: prefix_of(&participant.guid()),
            bridges: RwLock::default(),
            forward_bridged: config.forward_bridged,
            max_payload: config.max_payload.as_usize(),
            loop_drops: m.counter(
                "dds_loop_drops",
                "DDS samples not bridged because they came from this or another bridge",
            ),
            too_large: m.counter(
                "dds_too_large",
                "DDS samples or deliveries over max_payload",
            ),
            read_errors: m.counter("dds_read_errors", "DDS samples that could not be taken"),
            decode_failures: m.counter(
                "dds_decode_failures",
                "DDS samples or deliveries that did not fit their IDL type",
            ),
            topic_stats: TopicStatsMap::default(),
        });
        {
            let shared = shared.clone();
            let facts = BTreeMap::from([
                ("participant".to_owned(), crate::mapping::hex(&shared.own)),
                ("domain".to_owned(), config.domain.to_string()),
            ]);
            ctx.metrics.set_detail(move || Detail {
                facts: facts.clone(),
                topics: shared.topic_stats.detail(),
            });
        }
        tracing::info!(
            adapter = %ctx.name,
            domain = config.domain,
            guid = %crate::mapping::hex(&shared.own),
            "DDS participant up."
        );
        Ok(Bridge {
            config,
            participant,
            publisher,
            subscriber,
            shared,
            topics: HashMap::new(),
            readers: HashMap::new(),
            writers: HashMap::new(),
            routes: HashMap::new(),
            snapshot: Snapshot::default(),
            interest: Arc::from(Vec::new()),
            last_log: HashMap::new(),
            registry,
            typed: HashMap::new(),
            _marker: marker,
        })
    }

    async fn run(mut self, mut ctx: AdapterContext) -> Result<(), AdapterError> {
        let mut tick = tokio::time::interval(DISCOVERY_PERIOD);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        self.interest = ctx.interest.borrow_and_update().clone();
        self.reconcile(&ctx);
        loop {
            tokio::select! {
                () = ctx.shutdown.cancelled() => break,
                d = ctx.deliveries.recv() => match d {
                    Some(d) => {
                        self.deliver(d, &ctx).await;
                        // Take what else is queued before polling the rest.
                        for _ in 0..BATCH {
                            let Some(d) = ctx.deliveries.try_recv() else { break };
                            self.deliver(d, &ctx).await;
                        }
                    }
                    None => break,
                },
                changed = ctx.interest.changed() => {
                    if changed.is_err() {
                        break;
                    }
                    self.interest = ctx.interest.borrow_and_update().clone();
                    self.reconcile(&ctx);
                }
                _ = tick.tick() => self.poll_discovery(&ctx),
            }
        }
        // Drain what the router already queued for us.
        while let Some(d) = ctx.deliveries.try_recv() {
            self.deliver(d, &ctx).await;
        }
        for (_, r) in self.readers.drain() {
            r.cancel.cancel();
            let _ = r.task.await;
        }
        ctx.health.down("stopped");
        Ok(())
    }

    fn poll_discovery(&mut self, ctx: &AdapterContext) {
        let endpoints = discovery::poll(&self.participant, self.shared.own);
        let snap = discovery::aggregate(&endpoints);
        if snap != self.snapshot {
            *self
                .shared
                .bridges
                .write()
                .unwrap_or_else(|e| e.into_inner()) = snap.bridges.clone();
            self.snapshot = snap;
            self.routes.clear();
            self.reconcile(ctx);
        }
    }

    /// Gauges for `/metrics` (stored into the adapter's named counters).
    fn report(&self, ctx: &AdapterContext) {
        let m = &ctx.metrics;
        let set = |name: &'static str, help: &'static str, v: usize| {
            m.counter(name, help)
                .value
                .store(v as u64, std::sync::atomic::Ordering::Relaxed);
        };
        let s = &self.snapshot;
        set(
            "dds_discovered_topics",
            "DDS topics other participants use (gauge)",
            s.topics.len(),
        );
        set(
            "dds_remote_writers",
            "Writers of other participants, all topics (gauge)",
            s.topics
                .values()
                .map(|t| t.writers + t.bridge_writers)
                .sum(),
        );
        set(
            "dds_remote_readers",
            "Readers of other participants, all topics (gauge)",
            s.topics.values().map(|t| t.readers).sum(),
        );
        set(
            "dds_peer_bridges",
            "Other switchboard bridges on the domain (gauge)",
            s.bridges.len(),
        );
        set(
            "dds_active_readers",
            "DDS topics the adapter reads (gauge)",
            self.readers.len(),
        );
        set(
            "dds_active_writers",
            "DDS writers the adapter holds (gauge)",
            self.writers.values().map(Vec::len).sum(),
        );
        // Per topic: what discovery shows and what the adapter holds.
        s.topics
            .keys()
            .chain(self.readers.keys())
            .chain(self.writers.keys())
            .for_each(|t| {
                self.shared.topic_stats.get(t);
            });
        self.shared.topic_stats.for_each(|t, st| {
            let rt = s.topics.get(t);
            let store =
                |c: &std::sync::atomic::AtomicU64, v: usize| c.store(v as u64, Ordering::Relaxed);
            store(
                &st.remote_writers,
                rt.map_or(0, |r| r.writers + r.bridge_writers),
            );
            store(&st.remote_readers, rt.map_or(0, |r| r.readers));
            store(&st.reading, usize::from(self.readers.contains_key(t)));
            store(&st.writers, self.writers.get(t).map_or(0, Vec::len));
        });
    }

    fn wanted(&self, topic: &Topic) -> bool {
        self.interest.iter().any(|i| i.filter.matches(topic))
    }

    /// The IDL type behind a DDS type name, if the IDL files declare it.
    fn typed(&mut self, dds_type: &str) -> Option<Arc<Typed>> {
        let reg = self.registry.as_ref()?;
        if let Some(t) = self.typed.get(dds_type) {
            return t.clone();
        }
        let t = Typed::lookup(reg, dds_type).map(Arc::new);
        if self.typed.len() >= 10_000 {
            self.typed.clear();
        }
        self.typed.insert(dds_type.to_string(), t.clone());
        t
    }

    fn configured_spec(&mut self, t: &TopicConfig) -> TopicSpec {
        let ros2 = self.config.ros2;
        let dds_type = dds_type_name(&t.type_name, ros2);
        let type_keyed = self.typed(&dds_type).is_some_and(|ty| ty.keyed);
        TopicSpec {
            dds_name: dds_topic_name(&t.name, ros2),
            dds_type,
            keyed: t.keyed.unwrap_or(type_keyed),
            reliability: t.reliability,
            durability: t.durability,
            history: t.history.unwrap_or(if ros2 { 10 } else { 1 }),
            deadline: t.deadline.map(|d| d.0),
            lifespan: t.lifespan.map(|d| d.0),
        }
    }

    fn remote_spec(&self, dds_name: &str) -> Option<TopicSpec> {
        let rt = self.snapshot.topics.get(dds_name)?;
        Some(TopicSpec {
            dds_name: dds_name.to_string(),
            dds_type: rt.type_name.clone(),
            keyed: rt.keyed,
            reliability: rt.reliability,
            durability: rt.durability,
            history: if self.config.ros2 { 10 } else { 1 },
            deadline: None,
            lifespan: None,
        })
    }

    /// Creates the readers the interest asks for and drops those it no longer does.
    fn reconcile(&mut self, ctx: &AdapterContext) {
        let mut desired: Vec<(Topic, TopicSpec)> = Vec::new();
        for t in self.config.topic.clone() {
            if let Ok(topic) = Topic::new(&t.name)
                && self.wanted(&topic)
            {
                desired.push((topic, self.configured_spec(&t)));
            }
        }
        if self.config.discover {
            for (dds_name, rt) in &self.snapshot.topics {
                let writers = rt.writers
                    + if self.config.forward_bridged {
                        rt.bridge_writers
                    } else {
                        0
                    };
                if writers == 0 || desired.iter().any(|(_, s)| &s.dds_name == dds_name) {
                    continue;
                }
                let Some(topic) = discovered_bridge_topic(dds_name, self.config.ros2) else {
                    continue;
                };
                if self.config.topic(topic.as_str()).is_some() || !self.wanted(&topic) {
                    continue;
                }
                if let Some(spec) = self.remote_spec(dds_name) {
                    desired.push((topic, spec));
                }
            }
        }
        self.readers.retain(|_, r| {
            let keep = self.interest.iter().any(|i| i.filter.matches(&r.topic));
            if !keep {
                r.cancel.cancel();
            }
            keep
        });
        for (topic, spec) in desired {
            if self.readers.contains_key(&spec.dds_name) {
                continue;
            }
            if let Err(e) = self.start_reader(topic, &spec, ctx) {
                ctx.metrics.inc_errors();
                tracing::warn!(adapter = %ctx.name, error = %e, "Cannot read DDS topic.");
            }
        }
        self.report(ctx);
    }

    fn dds_topic(&mut self, spec: &TopicSpec) -> Result<rustdds::Topic, AdapterError> {
        if let Some(t) = self.topics.get(&spec.dds_name) {
            return Ok(t.clone());
        }
        let kind = if spec.keyed {
            TopicKind::WithKey
        } else {
            TopicKind::NoKey
        };
        let t = self
            .participant
            .create_topic(
                spec.dds_name.clone(),
                spec.dds_type.clone(),
                &spec.reader_qos(),
                kind,
            )
            .map_err(config_err)?;
        self.topics.insert(spec.dds_name.clone(), t.clone());
        Ok(t)
    }

    fn start_reader(
        &mut self,
        topic: Topic,
        spec: &TopicSpec,
        ctx: &AdapterContext,
    ) -> Result<(), AdapterError> {
        let dds_topic = self.dds_topic(spec)?;
        let stream = create_reader(&self.subscriber, &dds_topic, spec).map_err(config_err)?;
        let info = ReaderInfo {
            topic: topic.clone(),
            dds_type: Arc::from(spec.dds_type.as_str()),
            idl_type: Arc::from(idl_type_name(&spec.dds_type)),
            qos: qos_of(spec.reliability),
            retain: retain_of(spec.durability),
            typed: self.typed(&spec.dds_type),
            stats: self.shared.topic_stats.get(&spec.dds_name),
        };
        let cancel = ctx.shutdown.child_token();
        let task = tokio::spawn(reader::run(
            stream,
            info,
            self.shared.clone(),
            ctx.ingress.clone(),
            cancel.clone(),
        ));
        tracing::info!(
            adapter = %ctx.name,
            dds_topic = %spec.dds_name,
            dds_type = %spec.dds_type,
            topic = %topic,
            reliability = ?spec.reliability,
            durability = ?spec.durability,
            "Reading DDS topic."
        );
        ctx.metrics
            .counter("dds_readers_created", "DDS readers the adapter created")
            .inc();
        self.readers.insert(
            spec.dds_name.clone(),
            ActiveReader {
                topic,
                cancel,
                task,
            },
        );
        Ok(())
    }

    /// The spec of a topic we write `msg` to: configured, else as discovered,
    /// else from the message's own type name and QoS.
    fn writer_spec(&mut self, dds_name: &str, msg: &Message) -> Option<TopicSpec> {
        if let Some(t) = self.config.topic(msg.topic.as_str()).cloned() {
            return Some(self.configured_spec(&t));
        }
        if let Some(s) = self.remote_spec(dds_name) {
            return Some(s);
        }
        let Format::Cdr(Some(ty)) = &msg.format else {
            return None;
        };
        Some(TopicSpec {
            dds_name: dds_name.to_string(),
            dds_type: dds_type_name(ty, self.config.ros2),
            keyed: false,
            reliability: reliability_of(msg.qos),
            durability: durability_of(msg.retain),
            history: if self.config.ros2 { 10 } else { 1 },
            deadline: None,
            lifespan: None,
        })
    }

    fn warn_topic(&mut self, ctx: &AdapterContext, topic: &str, reason: &str) {
        let now = Instant::now();
        let due = self
            .last_log
            .get(topic)
            .is_none_or(|t| now.duration_since(*t) >= LOG_EVERY);
        if due {
            if self.last_log.len() > 10_000 {
                self.last_log.clear();
            }
            self.last_log.insert(topic.to_string(), now);
            tracing::warn!(adapter = %ctx.name, topic, reason, "DDS delivery dropped.");
        }
    }

    async fn deliver(&mut self, d: Delivery, ctx: &AdapterContext) {
        let msg = &d.message;
        if msg.payload.len() > self.shared.max_payload {
            self.shared.too_large.inc();
            ctx.metrics.inc_dropped();
            d.ack.dropped(DropReason::TooLarge);
            return;
        }
        let (spec, stats) = match self.routes.get(&msg.topic) {
            Some(s) => s.clone(),
            None => {
                let dds_name = dds_topic_name(msg.topic.as_str(), self.config.ros2);
                let Some(spec) = self.writer_spec(&dds_name, msg) else {
                    // Not configured, no participant on the domain uses it,
                    // and the message names no type: nobody could read it
                    // (the default config's `*:{0}` route sends every topic
                    // here). Counted, logged at debug level only.
                    ctx.metrics.inc_dropped();
                    ctx.metrics
                        .counter(
                            "dds_no_type_drops",
                            "Deliveries to DDS topics with no known type (not configured, not on the domain)",
                        )
                        .inc();
                    tracing::debug!(adapter = %ctx.name, dds_topic = %dds_name, "DDS topic has no known type; delivery dropped.");
                    d.ack.failed();
                    return;
                };
                let spec = Arc::new(spec);
                let stats = self.shared.topic_stats.get(&spec.dds_name);
                if self.routes.len() >= 10_000 {
                    self.routes.clear();
                }
                self.routes
                    .insert(msg.topic.clone(), (spec.clone(), stats.clone()));
                (spec, stats)
            }
        };
        let dds_name = spec.dds_name.as_str();
        let (sample, disposed) = match self.sample_for(msg, &spec) {
            Ok(x) => x,
            Err(reason) => {
                ctx.metrics.inc_dropped();
                TopicStats::inc(&stats.decode_failures);
                self.warn_topic(ctx, dds_name, &reason);
                d.ack.dropped(DropReason::Transcode);
                return;
            }
        };
        let rep = sample.rep;
        let ts = msg.source_timestamp.and_then(rtps_time);
        let writer = match self.writer(&spec, rep, ctx) {
            Ok(w) => w,
            Err(e) => {
                ctx.metrics.inc_errors();
                let reason = e.to_string();
                self.warn_topic(ctx, dds_name, &reason);
                d.ack.failed();
                return;
            }
        };
        let result = if disposed {
            writer.dispose(&sample.key, ts, dds_name)
        } else {
            writer.write(sample, ts, dds_name).await
        };
        match result {
            Ok(()) => {
                ctx.metrics.inc_sent();
                TopicStats::inc(&stats.samples_out);
                d.ack.done();
            }
            Err(e) => {
                ctx.metrics.inc_errors();
                let reason = e.to_string();
                self.warn_topic(ctx, dds_name, &reason);
                d.ack.failed();
            }
        }
    }

    /// The sample (or the key to dispose) a delivery asks to write: CDR
    /// passes through; JSON or CBOR is encoded with the topic's IDL type.
    fn sample_for(&mut self, msg: &Message, spec: &TopicSpec) -> Result<(RawSample, bool), String> {
        let typed = self.typed(&spec.dds_type);
        if msg.properties.get(PROP_INSTANCE_STATE).is_some() {
            let k = msg
                .properties
                .get(PROP_KEY)
                .ok_or("instance-state message without dds.key")?;
            let key = match unhex(k).and_then(|b| RawKey::from_encapsulated(&b).ok()) {
                Some(raw) => raw,
                None => {
                    let t = typed.ok_or_else(|| {
                        format!(
                            "dds.key is not a serialized key and `{}` is not in the IDL files",
                            spec.dds_type
                        )
                    })?;
                    let v = Typed::parse(k.as_bytes(), &Format::Json).map_err(|e| e.to_string())?;
                    t.encode_key(&v).map_err(|e| e.to_string())?
                }
            };
            let sample = RawSample {
                rep: key.rep,
                body: bytes::Bytes::new(),
                key,
            };
            return Ok((sample, true));
        }
        let p = &msg.payload;
        let looks_cdr =
            p.len() >= 4 && p[0] == 0 && crate::raw::is_supported(u16::from_be_bytes([0, p[1]]));
        let raw = match &msg.format {
            Format::Cdr(_) => true,
            Format::Octets => looks_cdr,
            _ => false,
        };
        if raw {
            let mut s = RawSample::from_encapsulated(p).map_err(|e| e.to_string())?;
            if let Some(t) = typed.filter(|t| t.keyed) {
                // The key is needed for instances and disposes to match.
                let d = t.decode(&s).map_err(|e| e.to_string())?;
                let v = Typed::parse(&d.json, &Format::Json).map_err(|e| e.to_string())?;
                s.key = t.encode_key(&v).map_err(|e| e.to_string())?;
            }
            return Ok((s, false));
        }
        let Some(t) = typed else {
            return Err(format!(
                "{} payloads need a type from the IDL files to be written as `{}`",
                msg.format, spec.dds_type
            ));
        };
        let v = Typed::parse(p, &msg.format).map_err(|e| e.to_string())?;
        let s = t.encode(&v).map_err(|e| {
            self.shared.decode_failures.inc();
            e.to_string()
        })?;
        Ok((s, false))
    }

    fn writer(
        &mut self,
        spec: &TopicSpec,
        rep: u16,
        ctx: &AdapterContext,
    ) -> Result<&RawWriter, AdapterError> {
        let have = self
            .writers
            .get(&spec.dds_name)
            .is_some_and(|ws| ws.iter().any(|(r, _)| *r == rep));
        if !have
            && !self.writers.contains_key(&spec.dds_name)
            && self.writers.len() >= MAX_WRITTEN_TOPICS
        {
            return Err(config_err(format!(
                "the adapter already writes {MAX_WRITTEN_TOPICS} DDS topics"
            )));
        }
        if !have {
            let topic = self.dds_topic(spec)?;
            let w = RawWriter::create(&self.publisher, &topic, spec, rep).map_err(config_err)?;
            tracing::info!(
                adapter = %ctx.name,
                dds_topic = %spec.dds_name,
                dds_type = %spec.dds_type,
                representation = rep,
                "Writing DDS topic."
            );
            ctx.metrics
                .counter("dds_writers_created", "DDS writers the adapter created")
                .inc();
            self.writers
                .entry(spec.dds_name.clone())
                .or_default()
                .push((rep, w));
            self.report(ctx);
        }
        self.writers
            .get(&spec.dds_name)
            .and_then(|ws| ws.iter().find(|(r, _)| *r == rep))
            .map(|(_, w)| w)
            .ok_or_else(|| config_err("writer vanished"))
    }
}
