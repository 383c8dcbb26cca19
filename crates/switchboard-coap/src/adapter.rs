//! The thin tokio driver: one UDP socket, the [`Core`], the router's
//! deliveries and the clock. Everything protocol-related happens in the core.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use switchboard_model::{
    Ack, Adapter, AdapterContext, AdapterError, AddressBook, BoxFuture, Counter, Endpoint, Format,
    Message, Pattern, Running, Topic,
};
use tokio::net::UdpSocket;

use crate::config::Config;
use crate::core::{Core, Event, Stats, Store};

/// The CoAP adapter: server for every bridge topic plus mount clients.
#[derive(Debug)]
pub struct CoapAdapter {
    config: Config,
}

impl CoapAdapter {
    /// An adapter for `config` (checked by [`Config::validate`] when started).
    pub fn new(config: Config) -> Self {
        CoapAdapter { config }
    }
}

impl Adapter for CoapAdapter {
    fn kind(&self) -> &str {
        "coap"
    }

    fn start(
        self: Box<Self>,
        ctx: AdapterContext,
    ) -> BoxFuture<'static, Result<Running, AdapterError>> {
        Box::pin(async move {
            AdapterError::from_issues(self.config.validate())?;
            let addr: SocketAddr = self.config.listen.parse().map_err(|_| {
                AdapterError::Config(format!("bad listen address `{}`", self.config.listen))
            })?;
            let sock = UdpSocket::bind(addr)
                .await
                .map_err(|source| AdapterError::Bind {
                    addr: addr.to_string(),
                    source,
                })?;
            let local = sock.local_addr()?;
            tracing::info!(adapter = %ctx.name, addr = %local, "CoAP listening.");
            let endpoints = vec![Endpoint {
                service: "coap".into(),
                addr: local,
            }];
            let task = Box::pin(run(sock, ctx, self.config));
            Ok(Running { endpoints, task })
        })
    }
}

struct BookStore<'a> {
    book: &'a AddressBook,
    name: &'a str,
}

impl Store for BookStore<'_> {
    fn latest(&self, topic: &Topic) -> Option<Message> {
        self.book.get(self.name, topic).map(|e| e.latest)
    }
    fn topics(&self) -> Vec<(Topic, Format)> {
        let Ok(all) = Pattern::new("#") else {
            return Vec::new();
        };
        self.book
            .latest_matching(self.name, &all)
            .into_iter()
            .map(|m| (m.topic, m.format))
            .collect()
    }
}

struct Counters {
    malformed: Counter,
    duplicates: Counter,
    retransmissions: Counter,
    observers_removed: Counter,
    deferred: Counter,
    separate: Counter,
    last: Stats,
}

impl Counters {
    fn new(ctx: &AdapterContext) -> Self {
        let m = &ctx.metrics;
        Counters {
            malformed: m.counter("coap_malformed_total", "CoAP datagrams that did not parse"),
            duplicates: m.counter(
                "coap_duplicates_total",
                "CoAP duplicate messages (answered from the cache)",
            ),
            retransmissions: m.counter(
                "coap_retransmissions_total",
                "CoAP CON retransmissions sent",
            ),
            observers_removed: m.counter(
                "coap_observers_removed_total",
                "CoAP observers removed (RST or no ACK)",
            ),
            deferred: m.counter(
                "coap_deferred_total",
                "CoAP requests acknowledged with an empty ACK while the router was busy",
            ),
            separate: m.counter(
                "coap_separate_responses_total",
                "CoAP separate responses sent for deferred requests",
            ),
            last: Stats::default(),
        }
    }

    fn sync(&mut self, ctx: &AdapterContext, s: &Stats) {
        let d = |a: u64, b: u64| a.saturating_sub(b);
        let bad =
            d(s.malformed, self.last.malformed) + d(s.error_responses, self.last.error_responses);
        ctx.metrics
            .errors
            .fetch_add(bad, std::sync::atomic::Ordering::Relaxed);
        self.malformed.add(d(s.malformed, self.last.malformed));
        self.duplicates.add(d(s.duplicates, self.last.duplicates));
        self.retransmissions
            .add(d(s.retransmissions, self.last.retransmissions));
        self.observers_removed
            .add(d(s.observers_removed, self.last.observers_removed));
        self.deferred.add(d(s.deferred, self.last.deferred));
        self.separate
            .add(d(s.separate_responses, self.last.separate_responses));
        self.last = s.clone();
    }
}

/// Datagrams read in one go before answering (keeps syscalls and wakeups low
/// under load).
const RECV_BATCH: usize = 64;

async fn run(sock: UdpSocket, ctx: AdapterContext, config: Config) -> Result<(), AdapterError> {
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0x5eed, |d| d.as_nanos() as u64);
    let mut core = Core::new(&config, seed, Instant::now());
    let mut buf = vec![0u8; 65_536];
    let mut acks: HashMap<u64, Ack> = HashMap::new();
    let mut next_id = 0u64;
    let mut counters = Counters::new(&ctx);
    let mut deliveries_open = true;
    ctx.health.up();
    loop {
        flush(&sock, &mut core, &ctx).await;
        // Publishes wait in the core (and CON requests get separate
        // responses) while the router has no room: the loop keeps serving.
        let stalled = !events(&mut core, &ctx, &mut acks).await;
        flush(&sock, &mut core, &ctx).await;
        counters.sync(&ctx, core.stats());
        let timeout = core.poll_timeout();
        let sleep = async {
            match timeout {
                Some(t) => tokio::time::sleep_until(t.into()).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            _ = ctx.shutdown.cancelled() => break,
            r = sock.recv_from(&mut buf) => {
                let store = BookStore { book: &ctx.book, name: &ctx.name };
                match r {
                    Ok((n, peer)) => {
                        let now = Instant::now();
                        core.handle_datagram(peer, &buf[..n], &store, now);
                        for _ in 0..RECV_BATCH {
                            match sock.try_recv_from(&mut buf) {
                                Ok((n, peer)) => core.handle_datagram(peer, &buf[..n], &store, now),
                                Err(_) => break,
                            }
                        }
                    }
                    Err(e) => {
                        // ICMP errors surface here on some systems; not fatal.
                        tracing::debug!(error = %e, "CoAP receive error.");
                    }
                }
            }
            d = ctx.deliveries.recv(), if deliveries_open => match d {
                Some(d) => deliver(&mut core, d, &mut acks, &mut next_id, &ctx),
                None => deliveries_open = false,
            },
            _ = sleep => core.handle_timeout(Instant::now()),
            () = ctx.ingress.ready(), if stalled => {}
        }
    }
    // Drain: deliveries already queued still reach local observers.
    while let Some(d) = ctx.deliveries.try_recv() {
        deliver(&mut core, d, &mut acks, &mut next_id, &ctx);
    }
    flush(&sock, &mut core, &ctx).await;
    // At shutdown the router drains what is queued; wait for room briefly.
    for _ in 0..3 {
        if events(&mut core, &ctx, &mut acks).await {
            break;
        }
        let _ = tokio::time::timeout(std::time::Duration::from_secs(1), ctx.ingress.ready()).await;
    }
    flush(&sock, &mut core, &ctx).await;
    for (_, ack) in acks.drain() {
        ack.failed();
    }
    ctx.health.down("stopped");
    Ok(())
}

fn deliver(
    core: &mut Core,
    d: switchboard_model::Delivery,
    acks: &mut HashMap<u64, Ack>,
    next_id: &mut u64,
    ctx: &AdapterContext,
) {
    let now = Instant::now();
    let msg = d.message;
    if core.is_mounted(&msg.topic) {
        *next_id += 1;
        acks.insert(*next_id, d.ack);
        core.send_to_mount(*next_id, &msg.topic, msg.payload.clone(), &msg.format, now);
    } else {
        core.notify(&msg, msg.qos, now);
        ctx.metrics.inc_sent();
        d.ack.done();
    }
}

async fn flush(sock: &UdpSocket, core: &mut Core, ctx: &AdapterContext) {
    let out: Vec<_> = core.drain_transmits().collect();
    for t in out {
        let r = match sock.try_send_to(&t.bytes, t.to) {
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                sock.send_to(&t.bytes, t.to).await
            }
            r => r,
        };
        if let Err(e) = r {
            ctx.metrics.inc_errors();
            tracing::debug!(to = %t.to, error = %e, "CoAP send failed.");
        }
    }
}

/// Hands the core's events to the router; `false` when it stopped because the
/// router has no room (the rest stay queued in the core).
async fn events(core: &mut Core, ctx: &AdapterContext, acks: &mut HashMap<u64, Ack>) -> bool {
    loop {
        if core.has_publish_first() && !ctx.ingress.has_capacity() {
            return false;
        }
        let Some(e) = core.poll_event() else {
            return true;
        };
        match e {
            Event::Publish {
                topic,
                payload,
                format,
                qos,
                peer,
                retain,
            } => {
                let mut m = Message::new(ctx.name.clone(), topic, payload)
                    .with_format(format)
                    .with_qos(qos)
                    .with_retain(retain);
                m.origin.peer = Some(Arc::from(peer.to_string()));
                if ctx.ingress.publish(m).await.is_err() {
                    ctx.metrics.inc_dropped();
                }
            }
            Event::Forget { topic } => {
                ctx.book.forget(&ctx.name, &topic);
            }
            Event::Delivered { id, ok } => {
                if let Some(ack) = acks.remove(&id) {
                    if ok {
                        ctx.metrics.inc_sent();
                        ack.done();
                    } else {
                        ctx.metrics.inc_errors();
                        ack.failed();
                    }
                }
            }
        }
    }
}
