//! Client mode: the adapter is a client of an external broker.
//!
//! One task owns the connection (`link`: our transport and framing with
//! rumqttc's codec and session state) and everything around it, so nothing
//! between a routed message and its write waits on a channel:
//! - it subscribes to exactly the filters of `ctx.interest` at their QoS
//!   (as `$share/GROUP/FILTER` with `share_group`), again whenever the broker
//!   has no session for us, and follows interest changes;
//! - a QoS 0 message routed to the adapter while its queue is empty and
//!   everything the task took is encoded takes the express lane (`lane`):
//!   it is written to the broker (plain TCP) from the routing thread, behind
//!   what the task encoded, with no task switch; otherwise it is queued;
//! - messages routed to the adapter go through a bounded, ordered [`Outbox`]
//!   (`max_buffered` messages and bytes; when full the router's queue is not
//!   read, which back-pressures the source). QoS >= 1 messages stay there
//!   until the broker acknowledged them and are published again if the broker
//!   lost our session; QoS 0 messages are dropped (and counted) while
//!   disconnected;
//! - incoming publications are acknowledged to the broker (manual acks) only
//!   once the router took them (routed in this task, `dispatch_now`), and
//!   after the destinations they woke had their turn (a [`Handoff`]);
//! - our own publications coming back are not re-ingested: MQTT 5 no-local,
//!   or (3.1.1, and shared subscriptions where no-local is not allowed) a
//!   window of topic + payload hashes;
//! - reconnection uses capped exponential backoff with jitter.

mod lane;
mod link;
pub mod outbox;

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use switchboard_model::{
    AdapterContext, AdapterError, Counter, DropReason, Handoff, Interest, Message, Pushed, Running,
    Waiting,
};

use self::lane::Lane;
use self::link::{Conn, Ev, InPub, RawPub};
use self::outbox::{Backoff, EchoWindow, OutMsg, Outbox};
use crate::config::{BrokerUrl, Config};
use crate::mapping::{MqttMeta, meta_of, to_message};

pub(crate) use self::link::fuzz_inbound;

/// How long an echo of our own publication is recognised (3.1.1).
const ECHO_WINDOW: Duration = Duration::from_secs(10);

struct Counters {
    echoes: Counter,
    qos0_dropped: Counter,
    reconnects: Counter,
    republished: Counter,
    too_large: Counter,
    held_dropped: Counter,
    waited: Counter,
}

/// How long the broker may take none of our output before the connection
/// counts as lost.
const WRITE_STALL: Duration = Duration::from_secs(5);

/// Publications read while one waits for room in a destination queue, at
/// most (beyond, they are dropped and counted; the broker's in-flight window
/// keeps QoS >= 1 well below this).
const HELD_MAX: usize = 4096;

/// Builds the client and returns the running adapter (it connects in the
/// background; the health turns up on the first CONNACK).
pub(crate) async fn start(cfg: Config, ctx: AdapterContext) -> Result<Running, AdapterError> {
    let raw = cfg.url.clone().unwrap_or_default();
    let url = BrokerUrl::parse(&raw).map_err(|e| AdapterError::Config(format!("url: {e}")))?;
    let tls = if url.tls {
        let auth = match (&cfg.client_cert, &cfg.client_key) {
            (Some(c), Some(k)) => Some((c.as_path(), k.as_path())),
            _ => None,
        };
        let cc = crate::tls::client_config(cfg.ca_file.as_deref(), auth)
            .map_err(|e| AdapterError::Config(e.to_string()))?;
        Some(Arc::new(cc))
    } else {
        None
    };
    let client_id = cfg
        .client_id
        .clone()
        .unwrap_or_else(|| format!("switchboard-{}-{}", ctx.name, std::process::id()));
    let lane = Arc::new(Lane::new(
        cfg.version == 5,
        cfg.max_payload.as_usize(),
        ctx.metrics.clone(),
    ));
    ctx.deliveries.set_express(lane.clone());
    let conn = link::build(&cfg, &url, tls, client_id.clone(), lane.clone());
    tracing::info!(adapter = %ctx.name, host = %url.host, port = url.port, tls = url.tls,
        version = cfg.version, client_id = %client_id, "MQTT client starting.");
    ctx.health.down("connecting");
    let task = run(
        cfg,
        ctx,
        conn,
        lane,
        Arc::from(format!("{}:{}", url.host, url.port)),
    );
    Ok(Running {
        endpoints: Vec::new(),
        task: Box::pin(task),
    })
}

fn filters_of(interest: &[Interest], group: Option<&str>) -> HashMap<String, u8> {
    let mut out: HashMap<String, u8> = HashMap::new();
    for i in interest {
        let f = match group {
            Some(g) => format!("$share/{g}/{}", i.filter.as_str()),
            None => i.filter.as_str().to_owned(),
        };
        let q = out.entry(f).or_insert(0);
        *q = (*q).max(i.qos.as_u8());
    }
    out
}

struct Client {
    ctx: AdapterContext,
    is_v5: bool,
    outbox: Outbox,
    echo: Option<EchoWindow>,
    pending_acks: VecDeque<RawPub>,
    /// The receivers woken by routing what `pending_acks` acknowledges.
    handoff: Handoff,
    /// Deliveries of the last routed publication that wait for room in their
    /// (full) queues, in order; its acknowledgement waits with them.
    blocked: VecDeque<Waiting>,
    blocked_ack: Option<RawPub>,
    /// Publications read meanwhile, in order (`None`: nothing to route, only
    /// the acknowledgement, which must keep its place).
    held: VecDeque<(Option<Message>, Option<RawPub>)>,
    /// Publications went to the router since this task last stepped aside.
    routed: bool,
    /// Publications routed in a row (see `crate::BURST`).
    burst: usize,
    /// Filters we want, at their QoS.
    wanted: HashMap<String, u8>,
    /// Whether `subscribed` may differ from `wanted`.
    subs_dirty: bool,
    /// Filters subscribed in the current session.
    subscribed: HashMap<String, u8>,
    no_local: bool,
    connected: bool,
    max_payload: usize,
    peer: Arc<str>,
    counters: Counters,
    backoff: Backoff,
    /// The last connection error (logged once while it repeats).
    last_err: String,
}

impl Client {
    /// Brings subscriptions in line with `wanted`.
    fn sync_subscriptions(&mut self, conn: &mut Conn) -> Result<(), String> {
        if !self.connected || !self.subs_dirty {
            return Ok(());
        }
        self.subs_dirty = false;
        let stale: Vec<String> = self
            .subscribed
            .keys()
            .filter(|f| !self.wanted.contains_key(*f))
            .cloned()
            .collect();
        for f in stale {
            conn.unsubscribe(&f)?;
            self.subscribed.remove(&f);
        }
        for (f, q) in &self.wanted {
            if self.subscribed.get(f) == Some(q) {
                continue;
            }
            conn.subscribe(f, *q, self.no_local)?;
            tracing::debug!(adapter = %self.ctx.name, filter = %f, qos = q, "MQTT subscribe.");
            self.subscribed.insert(f.clone(), *q);
        }
        Ok(())
    }

    /// Queues pending acks, subscription changes, then the outbox's
    /// messages while the in-flight window has room, for the connection to
    /// write; `Err` when the session state refused (the connection is lost).
    fn pump(&mut self, conn: &mut Conn) -> Result<(), String> {
        if !self.connected {
            return Ok(());
        }
        while let Some(raw) = self.pending_acks.pop_front() {
            conn.ack(&raw)?;
        }
        self.sync_subscriptions(conn)?;
        let mut failed = None;
        loop {
            // Echoes come back only for filters we subscribe to.
            let mut echo = if self.wanted.is_empty() {
                None
            } else {
                self.echo.as_mut()
            };
            let metrics = &self.ctx.metrics;
            let mut too_large = false;
            self.outbox.flush(|m| {
                if failed.is_some() || !conn.may_publish(m.qos) {
                    return false;
                }
                if conn.too_large(m) {
                    too_large = true;
                    return false;
                }
                if let Err(e) = conn.publish(m) {
                    failed = Some(e);
                    return false;
                }
                if let Some(w) = echo.as_deref_mut() {
                    w.note(&m.topic, &m.payload, Instant::now());
                }
                metrics.inc_sent();
                true
            });
            // Over the broker's maximum packet size: dropped and counted
            // (sending it would only fail the connection, again and again).
            if !too_large || !self.outbox.drop_front(DropReason::TooLarge) {
                break;
            }
            self.counters.too_large.inc();
            self.ctx.metrics.inc_dropped();
        }
        failed.map_or(Ok(()), Err)
    }

    /// A message routed to the broker goes into the outbox (or is dropped
    /// when over `max_payload`: the broker link would fail on it again and again).
    fn take(&mut self, d: switchboard_model::Delivery) {
        let m = &d.message;
        if m.payload.len() > self.max_payload {
            self.counters.too_large.inc();
            self.ctx.metrics.inc_dropped();
            d.ack.dropped(switchboard_model::DropReason::TooLarge);
            return;
        }
        let out = OutMsg {
            topic: m.topic.as_arc().clone(),
            payload: m.payload.clone(),
            qos: m.qos.as_u8(),
            retain: m.retain,
            // MQTT 3.1.1 has no properties: nothing to carry.
            meta: if self.is_v5 {
                meta_of(m)
            } else {
                MqttMeta::default()
            },
        };
        self.outbox.push(out, d.ack, self.connected);
    }

    async fn on_publish(&mut self, p: InPub) {
        let echoed = self
            .echo
            .as_mut()
            .is_some_and(|w| !w.is_empty() && w.is_echo(&p.topic, &p.payload, Instant::now()));
        if echoed {
            self.counters.echoes.inc();
            self.ctx.metrics.inc_dropped();
        } else if p.payload.len() > self.max_payload {
            self.counters.too_large.inc();
            self.ctx.metrics.inc_dropped();
        } else {
            let name = self.ctx.name.clone();
            match to_message(
                &name,
                &p.topic,
                p.payload.clone(),
                p.qos,
                p.retain,
                p.meta.as_ref(),
                Some(self.peer.clone()),
            ) {
                Ok(m) if self.ctx.ingress.has_dispatch() => {
                    // Routed in this task; what waits for room waits in
                    // the select loop, which keeps draining our own queue.
                    self.routed = true;
                    self.burst += 1;
                    self.route_or_hold(Some(m), (p.qos > 0).then_some(p.raw));
                    return;
                }
                Ok(m) => {
                    // Acknowledge only once the router took it.
                    if self.ctx.ingress.publish(m).await.is_err() {
                        return;
                    }
                }
                Err(e) => {
                    self.ctx.metrics.inc_errors();
                    tracing::debug!(error = %e, topic = %p.topic, "Unusable MQTT topic.");
                }
            }
        }
        if p.qos > 0 && !self.is_clear() {
            // Acknowledgements keep the order of the publications.
            self.route_or_hold(None, Some(p.raw));
            return;
        }
        // Sent by `pump` once the router and the destination adapters had
        // their turn (see `run`): forwarding comes before acknowledging.
        self.routed = true;
        if p.qos > 0 {
            self.pending_acks.push_back(p.raw);
        }
    }

    /// Whether nothing waits for room and nothing is held back.
    fn is_clear(&self) -> bool {
        self.blocked.is_empty() && self.held.is_empty()
    }

    /// Routes a publication now, or holds it back behind one waiting for
    /// room (routing it now could overtake that one).
    fn route_or_hold(&mut self, m: Option<Message>, ack: Option<RawPub>) {
        if self.is_clear() {
            self.route_now(m, ack);
        } else if self.held.len() < HELD_MAX {
            self.held.push_back((m, ack));
        } else {
            self.counters.held_dropped.inc();
            self.ctx.metrics.inc_dropped();
        }
    }

    /// Routes in this task: deliveries that fit are queued; the ones that
    /// find their queue full wait in `blocked`, with the acknowledgement.
    fn route_now(&mut self, m: Option<Message>, ack: Option<RawPub>) {
        if let Some(m) = m {
            let mut wait = Vec::new();
            let ingress = &self.ctx.ingress;
            let routed = match &ack {
                // What will be acknowledged records the receivers it woke:
                // they go before the acknowledgement is written.
                Some(_) => self.handoff.record(|| ingress.dispatch_now(m, &mut wait)),
                None => ingress.dispatch_now(m, &mut wait),
            };
            if routed.is_err() {
                // The router stopped: not acknowledged.
                return;
            }
            if !wait.is_empty() {
                self.counters.waited.inc();
                self.blocked.extend(wait);
                self.blocked_ack = ack;
                return;
            }
        }
        if let Some(a) = ack {
            self.pending_acks.push_back(a);
        }
    }

    /// A queue some delivery waits on has room: push what fits, in order;
    /// once all are in, acknowledge and route what was held back.
    fn on_room(&mut self) {
        while let Some((q, d)) = self.blocked.pop_front() {
            match q.try_push(d) {
                Ok(Pushed::Closed) => {
                    // The router is stopping: not acknowledged.
                    self.blocked.clear();
                    self.blocked_ack = None;
                    return;
                }
                Ok(_) => {}
                Err(d) => {
                    self.blocked.push_front((q, *d));
                    return;
                }
            }
        }
        if let Some(a) = self.blocked_ack.take() {
            self.pending_acks.push_back(a);
        }
        while self.blocked.is_empty() {
            let Some((m, ack)) = self.held.pop_front() else {
                break;
            };
            self.route_now(m, ack);
        }
    }

    /// Handles the connection's events: publications from the broker, our
    /// publications' packet identifiers, the broker's acknowledgements.
    async fn drain_events(&mut self, conn: &mut Conn) {
        while let Some(ev) = conn.next_event() {
            match ev {
                Ev::Publish(p) => self.on_publish(*p).await,
                Ev::Sent(id) => self.outbox.on_sent(id),
                Ev::Acked(id) => self.outbox.on_acked(id),
                Ev::Other => {}
            }
        }
    }

    /// The connection failed or was refused: drops it (keeping what its
    /// session needs), keeps QoS >= 1 messages, and returns the backoff
    /// before the next attempt.
    fn lost(&mut self, conn: Option<&mut Conn>, e: String) -> Duration {
        if let Some(conn) = conn {
            conn.lost();
        }
        if self.connected || e != self.last_err {
            tracing::warn!(adapter = %self.ctx.name, error = %e, "MQTT connection lost or refused; retrying.");
        }
        if self.connected {
            self.outbox.on_disconnect();
        }
        // Acknowledgements are not carried over to the next connection (the
        // broker sends the publication again).
        self.pending_acks.clear();
        self.blocked_ack = None;
        for h in &mut self.held {
            h.1 = None;
        }
        self.connected = false;
        self.ctx.health.down(format!("broker unreachable: {e}"));
        self.last_err = e;
        self.backoff.next_delay()
    }

    /// Takes the deliveries that are ready, as long as the outbox has room.
    fn take_ready(&mut self, budget: usize) {
        for _ in 0..budget {
            if !self.outbox.has_room() {
                break;
            }
            match self.ctx.deliveries.try_recv() {
                Some(d) => self.take(d),
                None => break,
            }
        }
    }
}

/// Connects, owning the connection for as long (the connect is not
/// cancel-safe); hands it back with the outcome.
async fn connect(conn: Option<Conn>) -> (Option<Conn>, Result<bool, String>) {
    let Some(mut conn) = conn else {
        return (None, Err("no connection".into()));
    };
    let r = conn.connect().await;
    (Some(conn), r)
}

async fn run(
    cfg: Config,
    ctx: AdapterContext,
    conn: Conn,
    lane: Arc<Lane>,
    peer: Arc<str>,
) -> Result<(), AdapterError> {
    let m = &ctx.metrics;
    let counters = Counters {
        echoes: m.counter(
            "mqtt_client_echoes_dropped",
            "Own publications echoed by the broker, dropped.",
        ),
        qos0_dropped: m.counter(
            "mqtt_client_qos0_dropped",
            "QoS 0 messages dropped while disconnected.",
        ),
        reconnects: m.counter(
            "mqtt_client_connects",
            "Successful connections to the broker.",
        ),
        republished: m.counter(
            "mqtt_client_republished",
            "Messages published again after the broker lost the session.",
        ),
        too_large: m.counter(
            "mqtt_client_too_large",
            "Publications dropped as too large: over max_payload, or over the broker's maximum packet size.",
        ),
        held_dropped: m.counter(
            "mqtt_client_held_dropped",
            "Incoming publications dropped while too many waited for room in full queues.",
        ),
        waited: m.counter(
            "mqtt_client_waited_for_room",
            "Incoming publications whose routing waited for room in a full destination queue.",
        ),
    };
    let share = cfg.share_group.clone();
    let mut interest = ctx.interest.clone();
    let wanted = filters_of(&interest.borrow_and_update(), share.as_deref());
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(1, |d| d.as_nanos() as u64)
        ^ u64::from(std::process::id());
    let use_echo = cfg.version == 4 || share.is_some();
    let mut c = Client {
        ctx: ctx.clone(),
        is_v5: conn.is_v5(),
        outbox: Outbox::new(cfg.max_buffered, cfg.max_buffered_bytes.as_usize()),
        echo: use_echo.then(|| EchoWindow::new(ECHO_WINDOW, 100_000)),
        pending_acks: VecDeque::new(),
        handoff: Handoff::new(),
        blocked: VecDeque::new(),
        blocked_ack: None,
        held: VecDeque::new(),
        routed: false,
        burst: 0,
        wanted,
        subscribed: HashMap::new(),
        subs_dirty: true,
        no_local: cfg.version == 5 && share.is_none(),
        connected: false,
        max_payload: cfg.max_payload.as_usize(),
        peer,
        counters,
        backoff: Backoff::new(Duration::from_millis(100), Duration::from_secs(10), seed),
        last_err: String::new(),
    };
    let mut retry_at: Option<tokio::time::Instant> = None;
    let mut interest_open = true;
    // Connecting is not cancel-safe (`Conn::connect`), so one connect at a
    // time owns the connection and lives across turns of the select until
    // it completes; `idle` holds the connection otherwise. Once connected,
    // the select waits on the connection's reader and writer
    // (`Conn::sides`, both cancel-safe).
    let connecting = connect(None);
    tokio::pin!(connecting);
    let mut armed = false;
    let mut idle = Some(conn);
    // A PINGREQ every keep-alive interval, whatever the traffic (as rumqttc).
    let keep_alive = tokio::time::sleep(Duration::from_secs(3600));
    tokio::pin!(keep_alive);
    // A broker that takes none of what we have to write for WRITE_STALL
    // counts as lost (as rumqttc's flush timeout did), whatever the
    // keep-alive.
    let write_stall = tokio::time::sleep(WRITE_STALL);
    tokio::pin!(write_stall);
    let mut stall_armed = false;
    // Whether the last turn took a delivery (see the select).
    let mut took = false;
    // One shutdown future for all turns (a fresh one per turn registers
    // with the token under its lock each time).
    let token = ctx.shutdown.clone();
    let shutdown = token.cancelled();
    tokio::pin!(shutdown);
    loop {
        if !armed
            && !c.connected
            && retry_at.is_none()
            && let Some(l) = idle.take()
        {
            connecting.set(connect(Some(l)));
            armed = true;
        }
        if c.routed {
            c.routed = false;
            if c.burst >= crate::BURST {
                // After a long run of publications the adapters they went
                // to, waiting on this worker, must get to drain their
                // queues before these overflow and drop QoS 0.
                c.burst = 0;
                tokio::task::yield_now().await;
            } else if !c.pending_acks.is_empty() {
                // The adapters the routing woke forward the publications
                // before this task writes their acknowledgements (the ack
                // write is then off the forwarding path). Not without acks:
                // there is nothing to put after.
                tokio::select! {
                    biased;
                    () = c.handoff.step_aside() => {}
                    () = &mut shutdown => break,
                }
            }
        } else {
            c.burst = 0;
        }
        // Queue what is ready (acknowledgements, subscriptions,
        // publications) and write it, straight from this task.
        if c.connected
            && let Some(conn) = idle.as_mut()
        {
            let mut r = c.pump(conn);
            c.drain_events(conn).await;
            if r.is_ok() {
                // What the socket does not take now waits for the writer
                // branch of the select (reading goes on meanwhile).
                r = conn.try_flush();
            }
            if let Err(e) = r {
                retry_at = Some(tokio::time::Instant::now() + c.lost(Some(conn), e));
            }
        }
        // Everything taken from the queue is encoded (or waits in the
        // outbox): QoS 0 deliveries may go past this task while the queue
        // stays empty, unless echoes of them must be noted (3.1.1 with
        // subscriptions of our own).
        lane.settle(
            &ctx.deliveries,
            c.connected && c.outbox.is_drained() && (c.echo.is_none() || c.wanted.is_empty()),
        );
        let dropped_before = c.outbox.stats.dropped_qos0;
        // Deliveries before the connection, so that a delivery that woke
        // this task is taken (and written at the top of the next turn)
        // without a read first; but not twice in a row, so a steady stream
        // of deliveries cannot keep the connection from its turn.
        let deliveries_first = !took;
        took = false;
        let room_of = c.blocked.front().map(|(q, _)| q.clone());
        let up = c.connected;
        let wants_write = up && idle.as_ref().is_some_and(Conn::wants_write);
        if !wants_write {
            stall_armed = false;
        } else if !stall_armed {
            stall_armed = true;
            write_stall
                .as_mut()
                .reset(tokio::time::Instant::now() + WRITE_STALL);
        }
        let mut stalled = false;
        let (reader, writer) = match idle.as_mut().filter(|_| up).and_then(Conn::sides) {
            Some((r, w)) => (Some(r), Some(w)),
            None => (None, None),
        };
        let mut read = None;
        let mut wrote = None;
        let mut connected = None;
        let mut ping = false;
        tokio::select! {
            biased;
            () = &mut shutdown => break,
            () = async {
                match &room_of {
                    Some(q) => q.room().await,
                    None => std::future::pending().await,
                }
            }, if room_of.is_some() => c.on_room(),
            () = async {
                match retry_at {
                    Some(t) => tokio::time::sleep_until(t).await,
                    None => std::future::pending().await,
                }
            } => retry_at = None,
            d = ctx.deliveries.recv(), if deliveries_first && c.outbox.has_room() => match d {
                Some(d) => {
                    took = true;
                    c.take(d);
                }
                None => break,
            },
            (l, r) = &mut connecting, if armed => {
                armed = false;
                connected = Some((l, r));
            }
            r = async {
                match reader {
                    Some(rd) => rd.fill().await,
                    None => std::future::pending().await,
                }
            } => read = Some(r),
            r = async {
                match writer {
                    Some(w) => w.step().await,
                    None => std::future::pending().await,
                }
            }, if wants_write => {
                if r.is_ok() {
                    // Progress: the broker takes what we write.
                    write_stall
                        .as_mut()
                        .reset(tokio::time::Instant::now() + WRITE_STALL);
                }
                wrote = Some(r);
            }
            // The express lane left bytes the socket did not take.
            () = lane.wake.notified(), if up => {}
            () = &mut write_stall, if stall_armed => stalled = true,
            () = &mut keep_alive, if up => ping = true,
            d = ctx.deliveries.recv(), if !deliveries_first && c.outbox.has_room() => match d {
                Some(d) => c.take(d),
                None => break,
            },
            r = interest.changed(), if interest_open => {
                if r.is_err() {
                    // The bridge dropped the interest sender; keep what we have.
                    interest_open = false;
                } else {
                    c.wanted = filters_of(&interest.borrow_and_update(), share.as_deref());
                    c.subs_dirty = true;
                    // No publication past this task until it knows whether
                    // echoes of it must be noted.
                    lane.settle(&ctx.deliveries, false);
                }
            }
        }
        if let Some((l, r)) = connected {
            idle = l;
            match (r, idle.as_mut()) {
                (Ok(session_present), Some(conn)) => {
                    c.connected = true;
                    c.backoff.reset();
                    c.counters.reconnects.inc();
                    ctx.health.up();
                    tracing::info!(adapter = %ctx.name, session_present, "MQTT client connected.");
                    keep_alive
                        .as_mut()
                        .reset(tokio::time::Instant::now() + conn.keep_alive());
                    if !session_present {
                        c.subscribed.clear();
                        c.subs_dirty = true;
                        let before = c.outbox.stats.republished;
                        c.outbox.on_session_lost();
                        c.counters
                            .republished
                            .add(c.outbox.stats.republished - before);
                    }
                }
                (r, conn) => {
                    let e = r.err().unwrap_or_else(|| "no connection".into());
                    retry_at = Some(tokio::time::Instant::now() + c.lost(conn, e));
                }
            }
        }
        if let Some(conn) = idle.as_mut()
            && c.connected
        {
            let mut r = match read {
                Some(Ok(())) => conn.on_read(),
                Some(Err(e)) => Err(e),
                None => Ok(()),
            };
            if stalled && r.is_ok() {
                r = Err(format!(
                    "the broker took nothing we wrote for {} s",
                    WRITE_STALL.as_secs()
                ));
            }
            if let Some(Err(e)) = wrote
                && r.is_ok()
            {
                r = Err(e);
            }
            if ping {
                keep_alive
                    .as_mut()
                    .reset(tokio::time::Instant::now() + conn.keep_alive());
                if r.is_ok() {
                    r = conn.ping();
                }
            }
            // What was read before a failure still counts (the broker
            // sends unacknowledged publications again anyway).
            c.drain_events(conn).await;
            if let Err(e) = r {
                retry_at = Some(tokio::time::Instant::now() + c.lost(Some(conn), e));
            }
        }
        // Take what else is ready in one go (fewer turns of the loop), also
        // while the connection keeps the select busy: the router's queue for
        // this adapter must not fill up (and drop QoS 0) while the outbox
        // has room.
        c.take_ready(256);
        let dropped = c.outbox.stats.dropped_qos0 - dropped_before;
        if dropped > 0 {
            c.counters.qos0_dropped.add(dropped);
            for _ in 0..dropped {
                ctx.metrics.inc_dropped();
            }
        }
    }
    // Shutdown: nothing past this task any more, a clean DISCONNECT, best
    // effort, then report what is left.
    lane.settle(&ctx.deliveries, false);
    if c.connected
        && let Some(conn) = idle.as_mut()
    {
        let _ = tokio::time::timeout(Duration::from_secs(1), async {
            c.pump(conn)?;
            conn.disconnect()?;
            conn.flush().await
        })
        .await;
    }
    for (_, d) in c.blocked.drain(..) {
        d.ack.failed();
    }
    let left = c.outbox.fail_all();
    if left > 0 {
        tracing::warn!(adapter = %ctx.name, left, "MQTT client stopped with undelivered messages.");
    }
    ctx.health.down("stopped");
    Ok(())
}
