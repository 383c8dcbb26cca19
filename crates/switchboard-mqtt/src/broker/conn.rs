//! One client connection of the embedded broker, over any byte stream
//! (TCP, TLS, or a WebSocket carrying MQTT): CONNECT handshake, then a loop
//! that reads packets, answers them through the broker core, sends what the
//! core queued for the client, enforces keep-alive and closes on shutdown,
//! takeover or bad input (with an MQTT 5 DISCONNECT reason where possible).

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::time::Instant as TokioInstant;

use super::Shared;
use super::codec::{
    self, ConnAckInfo, ConnectReq, DecodeError, Inbound, Outbound, Publish, SubReq, Version, Will,
};
use super::core::{ConnLink, Qos2In};
use super::encode::encode;
use crate::mapping::{MqttMeta, to_message};
use switchboard_model::Handoff;

/// How long a new connection may take to send CONNECT.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// How a connection ends.
enum End {
    /// DISCONNECT from the client (will discarded unless 0x04).
    Graceful,
    /// Anything else: the will is published. With an MQTT 5 reason to send.
    Abnormal(Option<u8>),
    /// Server shutdown.
    Shutdown,
}

struct Conn<W> {
    shared: Arc<Shared>,
    wr: W,
    version: Version,
    client: Arc<str>,
    link: ConnLink,
    will: Option<Will>,
    username: Option<String>,
    keep_alive: u16,
    session_expiry: u32,
    out: Vec<Outbound>,
    wbuf: BytesMut,
    /// MQTT 5 topic aliases set by the client (at most TOPIC_ALIAS_MAX).
    aliases: std::collections::HashMap<u16, Arc<str>>,
    /// The receivers woken by routing QoS >= 1 publications, which go
    /// before the acknowledgements are written.
    handoff: Handoff,
}

/// Topic aliases a client may set (announced in CONNACK).
pub(crate) const TOPIC_ALIAS_MAX: u16 = 32;

/// Serves one client on `stream` until it disconnects or the broker stops.
pub(crate) async fn serve<S>(shared: Arc<Shared>, stream: S, peer: Arc<str>)
where
    S: AsyncRead + AsyncWrite + Send + Unpin,
{
    let (mut rd, mut wr) = tokio::io::split(stream);
    let mut rbuf = BytesMut::with_capacity(4096);
    let deadline = TokioInstant::now() + CONNECT_TIMEOUT;
    let version = loop {
        match codec::sniff_connect(&rbuf, shared.max_packet) {
            Ok(Some(v)) => break v,
            Ok(None) => {}
            Err(DecodeError::UnsupportedVersion(level)) => {
                // [MQTT-3.1.2-2]: CONNACK 0x01 and close.
                shared.count_refused.inc();
                let mut b = BytesMut::new();
                encode(
                    &Outbound::ConnAck {
                        code: 0x84,
                        session_present: false,
                        props: None,
                    },
                    Version::V4,
                    &mut b,
                );
                let _ = wr.write_all(&b).await;
                tracing::debug!(%peer, level, "MQTT CONNECT with unsupported protocol level.");
                return;
            }
            Err(e) => {
                shared.count_malformed.inc();
                shared.metrics.inc_errors();
                tracing::debug!(%peer, error = %e, "Bad first MQTT packet; closing.");
                return;
            }
        }
        let read = tokio::select! {
            r = tokio::time::timeout_at(deadline, rd.read_buf(&mut rbuf)) => r,
            () = shared.shutdown.cancelled() => return,
        };
        match read {
            Ok(Ok(n)) if n > 0 => {}
            _ => return,
        }
    };
    let req = match codec::decode(&mut rbuf, version, shared.max_packet) {
        Ok(Some(Inbound::Connect(req))) => req,
        Ok(_) => return,
        Err(e) => {
            shared.count_malformed.inc();
            shared.metrics.inc_errors();
            tracing::debug!(%peer, error = %e, "Malformed CONNECT; closing.");
            if version == Version::V5 {
                let mut b = BytesMut::new();
                let ack = Outbound::ConnAck {
                    code: e.reason_code(),
                    session_present: false,
                    props: None,
                };
                encode(&ack, version, &mut b);
                let _ = wr.write_all(&b).await;
            }
            return;
        }
    };
    let Some(mut conn) = accept(&shared, wr, *req, &peer).await else {
        return;
    };
    let end = conn.run(&mut rd, rbuf).await;
    conn.finish(end).await;
}

async fn write_connack<W: AsyncWrite + Unpin>(wr: &mut W, version: Version, code: u8) {
    let mut b = BytesMut::new();
    let ack = Outbound::ConnAck {
        code,
        session_present: false,
        props: None,
    };
    encode(&ack, version, &mut b);
    let _ = wr.write_all(&b).await;
}

/// Authenticates and registers the session; sends CONNACK.
async fn accept<W: AsyncWrite + Unpin + Send>(
    shared: &Arc<Shared>,
    mut wr: W,
    req: ConnectReq,
    peer: &Arc<str>,
) -> Option<Conn<W>> {
    let v = req.version;
    if req.auth_method.is_some() {
        shared.count_refused.inc();
        write_connack(&mut wr, v, 0x8C).await;
        return None;
    }
    if !shared.users.is_empty() {
        let ok = match (&req.username, &req.password) {
            (Some(u), Some(p)) => shared
                .users
                .iter()
                .any(|x| x.username == *u && x.password.ct_eq(p.as_bytes())),
            _ => false,
        };
        if !ok {
            shared.count_refused.inc();
            tracing::debug!(%peer, user = ?req.username, "MQTT login refused.");
            write_connack(&mut wr, v, if req.username.is_some() { 0x86 } else { 0x87 }).await;
            return None;
        }
    }
    let mut assigned = None;
    let client_id: Arc<str> = if req.client_id.is_empty() {
        if v == Version::V4 && !req.clean_start {
            // [MQTT-3.1.3-8]: a zero-byte client id needs a clean session.
            shared.count_refused.inc();
            write_connack(&mut wr, v, 0x85).await;
            return None;
        }
        let id = format!("switchboard-{}", shared.next_anon());
        assigned = Some(id.clone());
        Arc::from(id)
    } else {
        Arc::from(req.client_id.as_str())
    };
    let now = Instant::now();
    let result = shared.lock().connect(&client_id, &req, now);
    let (link, present) = match result {
        Ok(x) => x,
        Err(code) => {
            shared.count_refused.inc();
            tracing::info!(%peer, client = %client_id, code, "MQTT connection refused (limit).");
            write_connack(&mut wr, v, code).await;
            return None;
        }
    };
    let mut conn = Conn {
        shared: shared.clone(),
        wr,
        version: v,
        client: client_id,
        link,
        will: req.will,
        username: req.username,
        keep_alive: req.keep_alive,
        session_expiry: req.session_expiry,
        out: Vec::new(),
        wbuf: BytesMut::new(),
        aliases: std::collections::HashMap::new(),
        handoff: Handoff::new(),
    };
    let props = (v == Version::V5).then(|| {
        Box::new(ConnAckInfo {
            receive_max: shared.core_limits.max_inflight,
            max_packet_size: u32::try_from(shared.max_packet).unwrap_or(u32::MAX),
            assigned_client_id: assigned,
            session_expiry: None,
        })
    });
    conn.out.push(Outbound::ConnAck {
        code: 0,
        session_present: present,
        props,
    });
    {
        let mut core = shared.lock();
        if present {
            core.resume(&conn.client, conn.link.id, &mut conn.out);
        }
        core.pull(&conn.client, conn.link.id, &mut conn.out);
    }
    tracing::debug!(%peer, client = %conn.client, ?v, present, "MQTT client connected.");
    if conn.flush().await.is_err() {
        conn.finish(End::Abnormal(None)).await;
        return None;
    }
    Some(conn)
}

fn end_for(e: &DecodeError) -> End {
    End::Abnormal(Some(e.reason_code()))
}

impl<W: AsyncWrite + Unpin + Send> Conn<W> {
    /// Encodes and writes what is queued in `out`.
    async fn flush(&mut self) -> std::io::Result<()> {
        if self.out.is_empty() {
            return Ok(());
        }
        let mut sent = 0;
        for p in self.out.drain(..) {
            if matches!(p, Outbound::Publish(_)) {
                sent += 1;
            }
            encode(&p, self.version, &mut self.wbuf);
        }
        for _ in 0..sent {
            self.shared.metrics.inc_sent();
        }
        // Biased, the write first: a write that completes at once (the
        // usual case) never polls the shutdown future.
        let r = tokio::select! {
            biased;
            r = self.wr.write_all(&self.wbuf) => r,
            () = self.shared.shutdown.cancelled() => Err(std::io::Error::other("shutdown")),
        };
        self.wbuf.clear();
        if self.wbuf.capacity() > 1024 * 1024 {
            self.wbuf = BytesMut::new();
        }
        r
    }

    async fn run<R: AsyncRead + Unpin>(&mut self, rd: &mut R, mut rbuf: BytesMut) -> End {
        let ka =
            (self.keep_alive > 0).then(|| Duration::from_millis(u64::from(self.keep_alive) * 1500));
        // The futures of the select live across turns: a fresh shutdown
        // future, notification and keep-alive timer per packet each take
        // locks (and a timer-wheel entry) for nothing. The timer is not
        // moved per packet either: when it fires early, it is set again
        // from the last read.
        let token = self.shared.shutdown.clone();
        let shutdown = token.cancelled();
        tokio::pin!(shutdown);
        let wake = self.link.wake.clone();
        let notified = wake.notified();
        tokio::pin!(notified);
        let mut last_read = TokioInstant::now();
        let far = last_read + Duration::from_secs(86_400 * 365);
        let keep_alive = tokio::time::sleep_until(ka.map_or(far, |d| last_read + d));
        tokio::pin!(keep_alive);
        let mut got_bytes = true;
        // Publications routed since this task last let others run.
        let mut burst = 0usize;
        loop {
            let mut routed = false;
            if got_bytes {
                loop {
                    match codec::decode(&mut rbuf, self.version, self.shared.max_packet) {
                        Ok(Some(p)) => {
                            let publish = matches!(p, Inbound::Publish(_));
                            routed |= publish;
                            if let Err(end) = self.handle(p).await {
                                return end;
                            }
                            burst += usize::from(publish);
                            if burst >= crate::BURST {
                                // A client publishing as fast as it can
                                // would otherwise keep the destination
                                // adapters it woke (waiting on this worker)
                                // from draining their queues, which then
                                // overflow and drop QoS 0.
                                burst = 0;
                                tokio::task::yield_now().await;
                            }
                        }
                        Ok(None) => break,
                        Err(e) => {
                            self.shared.count_malformed.inc();
                            tracing::debug!(client = %self.client, error = %e, "Bad MQTT packet; disconnecting.");
                            return end_for(&e);
                        }
                    }
                }
            }
            if !routed {
                burst = 0;
            }
            if routed && !self.out.is_empty() {
                // Let the adapters the routing woke forward what this read
                // brought before the acknowledgements are written: the ack
                // write is then off the forwarding path. Never without acks
                // to write (QoS 0): there is nothing to put after.
                tokio::select! {
                    biased;
                    () = self.handoff.step_aside() => {}
                    () = &mut shutdown => return End::Shutdown,
                }
            }
            if self.flush().await.is_err() {
                return End::Abnormal(None);
            }
            if rbuf.capacity() - rbuf.len() < 1024 {
                rbuf.reserve(8192);
            }
            tokio::select! {
                biased;
                () = &mut shutdown => return End::Shutdown,
                () = &mut notified => {
                    notified.set(wake.notified());
                    let kick = self.link.kick.load(Ordering::Relaxed);
                    if kick != 0 {
                        return End::Abnormal(Some(kick));
                    }
                    self.shared.lock().pull(&self.client, self.link.id, &mut self.out);
                    got_bytes = false;
                }
                r = rd.read_buf(&mut rbuf) => match r {
                    Ok(n) if n > 0 => {
                        if ka.is_some() {
                            last_read = TokioInstant::now();
                        }
                        got_bytes = true;
                    }
                    _ => return End::Abnormal(None),
                },
                () = &mut keep_alive, if ka.is_some() => {
                    let due = last_read + ka.unwrap_or_default();
                    if TokioInstant::now() >= due {
                        tracing::debug!(client = %self.client, "MQTT keep-alive expired.");
                        return End::Abnormal(Some(0x8D));
                    }
                    keep_alive.as_mut().reset(due);
                    got_bytes = false;
                }
            }
        }
    }

    async fn handle(&mut self, p: Inbound) -> Result<(), End> {
        match p {
            // [MQTT-3.1.0-2]: a second CONNECT is a protocol violation.
            Inbound::Connect(_) | Inbound::Auth => return Err(End::Abnormal(Some(0x82))),
            Inbound::Publish(p) => return self.on_publish(p).await,
            Inbound::PubAck(id) => {
                let mut core = self.shared.lock();
                core.puback(&self.client, self.link.id, id);
                core.pull(&self.client, self.link.id, &mut self.out);
            }
            Inbound::PubRec(id, reason) => {
                let mut core = self.shared.lock();
                if let Some(o) = core.pubrec(&self.client, self.link.id, id, reason) {
                    self.out.push(o);
                }
                core.pull(&self.client, self.link.id, &mut self.out);
            }
            Inbound::PubRel(id) => {
                let known = self
                    .shared
                    .lock()
                    .qos2_released(&self.client, self.link.id, id);
                self.out
                    .push(Outbound::PubComp(id, if known { 0 } else { 0x92 }));
            }
            Inbound::PubComp(id) => {
                let mut core = self.shared.lock();
                core.pubcomp(&self.client, self.link.id, id);
                core.pull(&self.client, self.link.id, &mut self.out);
            }
            Inbound::Subscribe {
                pkid,
                filters,
                sub_id,
            } => {
                // A subscription identifier of 0 is a protocol error (3.8.2.1.2).
                let id = match sub_id {
                    Some(0) => return Err(End::Abnormal(Some(0x82))),
                    Some(n) => Some(u32::try_from(n).map_err(|_| End::Abnormal(Some(0x82)))?),
                    None => None,
                };
                self.on_subscribe(pkid, filters, id)?;
            }
            Inbound::Unsubscribe { pkid, filters } => {
                let mut core = self.shared.lock();
                let codes = filters
                    .iter()
                    .map(|f| {
                        if !codec::valid_filter(f) {
                            0x8F
                        } else if core.unsubscribe(&self.client, f) {
                            0x00
                        } else {
                            0x11
                        }
                    })
                    .collect();
                self.out.push(Outbound::UnsubAck(pkid, codes));
            }
            Inbound::PingReq => self.out.push(Outbound::PingResp),
            Inbound::Disconnect(reason, expiry) => {
                if let Some(e) = expiry {
                    // [MQTT-3.14.2-2]: 0 at CONNECT cannot become non-zero.
                    if self.session_expiry == 0 && e != 0 {
                        return Err(End::Abnormal(Some(0x82)));
                    }
                    self.shared.lock().set_expiry(&self.client, e);
                    self.session_expiry = e;
                }
                if reason != 0x04 {
                    self.will = None;
                }
                return Err(End::Graceful);
            }
        }
        Ok(())
    }

    async fn on_publish(&mut self, mut p: Publish) -> Result<(), End> {
        if let Some(secs) = p.props.as_ref().and_then(|pp| pp.message_expiry) {
            p.expires = Some(Instant::now() + Duration::from_secs(u64::from(secs)));
        }
        if p.payload.len() > self.shared.max_payload {
            self.shared.count_too_large.inc();
            return Err(End::Abnormal(Some(0x95)));
        }
        if let Some(alias) = p.topic_alias {
            // MQTT 5 topic aliases (we announce a maximum of TOPIC_ALIAS_MAX).
            if alias == 0 || alias > TOPIC_ALIAS_MAX {
                return Err(End::Abnormal(Some(0x94)));
            }
            if p.topic.is_empty() {
                match self.aliases.get(&alias) {
                    Some(t) => p.topic = t.clone(),
                    // An alias the client never set is a protocol error (3.3.2.3.4).
                    None => return Err(End::Abnormal(Some(0x82))),
                }
            } else {
                self.aliases.insert(alias, p.topic.clone());
            }
            p.topic_alias = None;
        }
        let id = p.pkid;
        if !self.shared.may_write(self.username.as_deref(), &p.topic) {
            self.shared.count_denied.inc();
            match p.qos {
                1 => self.out.push(Outbound::PubAck(id, 0x87)),
                2 => self.out.push(Outbound::PubRec(id, 0x87)),
                _ => {}
            }
            return Ok(());
        }
        match p.qos {
            0 => self.deliver(p).await,
            1 => {
                self.deliver(p).await;
                self.out.push(Outbound::PubAck(id, 0));
            }
            _ => {
                let fresh = self
                    .shared
                    .lock()
                    .qos2_received(&self.client, self.link.id, id);
                match fresh {
                    Qos2In::New => self.deliver(p).await,
                    Qos2In::Duplicate => {}
                    Qos2In::TooMany => return Err(End::Abnormal(Some(0x93))),
                }
                self.out.push(Outbound::PubRec(id, 0));
            }
        }
        Ok(())
    }

    /// Delivers to local subscribers, then hands the message to the router
    /// (which records it as the address's last value) and waits for it.
    async fn deliver(&mut self, p: Publish) {
        // Only what will be acknowledged waits for the handoff.
        let handoff = (p.qos > 0).then_some(&self.handoff);
        deliver(&self.shared, p, Some(&self.client), handoff).await;
    }

    fn on_subscribe(
        &mut self,
        pkid: u16,
        filters: Vec<SubReq>,
        id: Option<u32>,
    ) -> Result<(), End> {
        let v5 = self.version == Version::V5;
        let mut codes = Vec::with_capacity(filters.len());
        let mut retained = Vec::new();
        let mut core = self.shared.lock();
        for f in filters {
            if !codec::valid_filter(&f.filter) {
                codes.push(if v5 { 0x8F } else { 0x80 });
                continue;
            }
            let shared_sub = super::core::Core::is_shared(&f.filter);
            if shared_sub && f.no_local {
                // [MQTT-3.8.3-4]
                return Err(End::Abnormal(Some(0x82)));
            }
            if f.qos > 2 || f.retain_handling > 2 {
                return Err(End::Abnormal(Some(0x81)));
            }
            if !self.shared.may_read(self.username.as_deref(), &f.filter) {
                self.shared.count_denied.inc();
                codes.push(if v5 { 0x87 } else { 0x80 });
                continue;
            }
            let qos = f.qos;
            let new = core.subscribe(&self.client, &f, qos, id);
            codes.push(qos);
            if !shared_sub
                && (f.retain_handling == 0 || (f.retain_handling == 1 && new))
                && let Ok(pat) = switchboard_model::Pattern::new(&f.filter)
            {
                retained.push((pat, qos));
            }
        }
        self.out.push(Outbound::SubAck(pkid, codes));
        for (pat, qos) in retained {
            for m in self.shared.book.retained_matching(&self.shared.name, &pat) {
                let mut p = super::publish_of(&m);
                p.retain = true;
                p.qos = p.qos.min(qos);
                super::core::with_sub_ids(&mut p, id.into_iter().collect());
                core.enqueue(&self.client, p);
            }
        }
        core.pull(&self.client, self.link.id, &mut self.out);
        Ok(())
    }

    /// Says goodbye, publishes the will where due, releases the session.
    async fn finish(mut self, end: End) {
        let reason = match &end {
            End::Abnormal(Some(code)) => Some(*code),
            End::Shutdown => Some(0x8B),
            _ => None,
        };
        if reason.is_some_and(|c| matches!(c, 0x81 | 0x82 | 0x93 | 0x94 | 0x95 | 0xA1)) {
            self.shared.metrics.inc_errors();
        }
        if let (Some(code), Version::V5) = (reason, self.version) {
            self.out.clear();
            self.out.push(Outbound::Disconnect(code));
        }
        let _ = tokio::time::timeout(Duration::from_secs(1), self.flush()).await;
        let _ = tokio::time::timeout(Duration::from_secs(1), self.wr.shutdown()).await;
        self.shared
            .lock()
            .disconnected(&self.client, self.link.id, Instant::now());
        if let (false, Some(w)) = (matches!(end, End::Shutdown), self.will.take()) {
            // MQTT 5 will delay: at the earlier of the delay and the session's end.
            let delay = w.delay.min(self.session_expiry);
            if delay == 0 {
                tracing::debug!(client = %self.client, topic = %w.publish.topic, "Publishing will.");
                deliver(&self.shared, w.publish, Some(&self.client), None).await;
            } else {
                let (shared, client, id) = (self.shared.clone(), self.client.clone(), self.link.id);
                self.shared.tracker.spawn(async move {
                    tokio::select! {
                        () = tokio::time::sleep(Duration::from_secs(u64::from(delay))) => {}
                        () = shared.shutdown.cancelled() => return,
                    }
                    // Not if the client came back meanwhile [MQTT-3.1.3-9].
                    if shared.lock().reconnected(&client, id) {
                        return;
                    }
                    tracing::debug!(client = %client, "Publishing delayed will.");
                    deliver(&shared, w.publish, Some(&client), None).await;
                });
            }
        }
        tracing::debug!(client = %self.client, "MQTT client disconnected.");
    }
}

/// Routes `p` to local subscribers and into the router.
pub(crate) async fn deliver(
    shared: &Arc<Shared>,
    p: Publish,
    publisher: Option<&Arc<str>>,
    handoff: Option<&Handoff>,
) {
    let wakes = shared.lock().route(&p, publisher.map(|c| &**c));
    for w in wakes {
        w.notify_one();
    }
    let meta = p.props.as_ref().map(|pp| MqttMeta {
        content_type: pp.content_type.clone(),
        payload_format: pp.payload_format,
        user: pp.user.clone(),
    });
    match to_message(
        &shared.name,
        &p.topic,
        p.payload,
        p.qos,
        p.retain,
        meta.as_ref(),
        publisher.cloned(),
    ) {
        Ok(m) => {
            // Routed in this connection's task: no hand-over to the
            // router's task. Safe to wait here: this task drains no queue.
            if shared
                .ingress
                .publish_direct_with(m, handoff)
                .await
                .is_err()
            {
                tracing::debug!("The router has stopped; message not forwarded.");
            }
        }
        Err(e) => {
            shared.metrics.inc_errors();
            tracing::debug!(error = %e, "MQTT topic not valid for the router.");
        }
    }
}
