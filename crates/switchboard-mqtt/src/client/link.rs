//! One face over rumqttc's MQTT 3.1.1 and MQTT 5 session state and codec:
//! building the options (credentials, TLS through rustls, manual acks,
//! persistent sessions), connecting, reading and writing packets from the
//! adapter's own task, and the events it needs, version-neutral.

use std::sync::Arc;
use std::time::Duration;

use bytes::{Buf, Bytes, BytesMut};
use rumqttc::v5::mqttbytes::v5 as p5;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, WriteHalf};
use tokio::net::tcp::OwnedWriteHalf;

use super::lane::{Lane, WRITE_HIGH};
use super::outbox::OutMsg;
use crate::config::{BrokerUrl, Config};
use crate::mapping::MqttMeta;
use crate::wire::{qos4, qos5};

/// The connection to the broker, driven from the adapter's own task: our
/// transport (TCP, or TLS through rustls) and framing, with rumqttc's
/// packet codec and its session state (packet identifiers, the in-flight
/// window, QoS 2 flows, keep-alive bookkeeping). Our packets are encoded
/// straight into the write buffer and written at once when the socket takes
/// them ([`Conn::try_flush`]); the rest, and reading, wait in the adapter's
/// select ([`Conn::sides`], both cancel-safe). No request channel and no
/// second task between a publication routed here and its write.
pub(crate) struct Conn {
    host: String,
    port: u16,
    tls: Option<tokio_rustls::TlsConnector>,
    io: Option<Io>,
    v: Ver,
    /// The write side, shared with the express lane.
    lane: Arc<Lane>,
}

enum Ver {
    V4(Box<V4>),
    V5(Box<V5>),
}

struct V4 {
    o: rumqttc::MqttOptions,
    state: rumqttc::MqttState,
    /// What the session still needs after a connection loss (rumqttc's
    /// `clean`: unacknowledged publications, releases).
    pending: Vec<rumqttc::Request>,
    max_packet: usize,
    /// Events in order: the session state's, converted, and incoming QoS 0
    /// publications, which skip the state (it would only clone them into
    /// its event queue).
    events: std::collections::VecDeque<Ev>,
}

struct V5 {
    o: rumqttc::v5::MqttOptions,
    state: rumqttc::v5::MqttState,
    pending: Vec<rumqttc::v5::Request>,
    /// Keep-alive: ours, or the broker's (CONNACK).
    ka: Duration,
    /// Our limit, lowered to the broker's receive maximum (CONNACK).
    max_inflight: u16,
    max_in: Option<u32>,
    /// The broker's maximum packet size (CONNACK).
    max_out: Option<u32>,
}

trait Stream: AsyncRead + AsyncWrite + Send + Unpin {}
impl<T: AsyncRead + AsyncWrite + Send + Unpin> Stream for T {}

type Rd = Box<dyn AsyncRead + Send + Unpin>;

/// The writing half of a connection's socket.
enum Wr {
    /// Plain TCP, shared with the express lane ([`Lane`]).
    Tcp(Arc<OwnedWriteHalf>),
    /// TLS (and test transports): written by the task alone.
    Split(WriteHalf<Box<dyn Stream>>),
}

/// One connection's socket (split, so that reading and writing wait
/// independently) and read buffer; the write buffer is the lane's.
struct Io {
    r: Rd,
    w: Wr,
    rbuf: BytesMut,
    lane: Arc<Lane>,
    /// Written since the last flush (TLS keeps records until flushed).
    unflushed: bool,
}

/// The reading side of a connection, for the adapter's select.
pub(crate) struct Reader<'a> {
    r: &'a mut Rd,
    buf: &'a mut BytesMut,
}

impl Reader<'_> {
    /// Reads more bytes. Cancel-safe: bytes are appended only when read.
    pub(crate) async fn fill(self) -> Result<(), String> {
        fill(self.r, self.buf).await
    }
}

/// The writing side of a connection, for the adapter's select.
pub(crate) struct Writer<'a> {
    w: &'a mut Wr,
    lane: &'a Lane,
    unflushed: &'a mut bool,
}

impl Writer<'_> {
    /// Writes some of what is encoded, or flushes. Cancel-safe: the buffer
    /// is advanced only by what was written.
    pub(crate) async fn step(self) -> Result<(), String> {
        write_step(self.w, self.lane, self.unflushed).await
    }
}

async fn fill(r: &mut Rd, buf: &mut BytesMut) -> Result<(), String> {
    if buf.capacity() - buf.len() < 1024 {
        buf.reserve(8 * 1024);
    }
    match r.read_buf(buf).await {
        Ok(0) => Err("the broker closed the connection".into()),
        Ok(_) => Ok(()),
        Err(e) => Err(e.to_string()),
    }
}

fn closed() -> String {
    "the broker closed the connection".into()
}

/// Writes some of the lane's buffer (the lock held only around each
/// write), or flushes when it is empty.
async fn write_step(w: &mut Wr, lane: &Lane, unflushed: &mut bool) -> Result<(), String> {
    match w {
        Wr::Tcp(t) => loop {
            t.writable().await.map_err(err)?;
            let r = {
                let mut o = lane.lock();
                if o.wbuf.is_empty() {
                    return Ok(());
                }
                t.try_write(&o.wbuf).inspect(|&n| o.wbuf.advance(n))
            };
            match r {
                Ok(0) => return Err(closed()),
                Ok(_) => return Ok(()),
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                Err(e) => return Err(e.to_string()),
            }
        },
        Wr::Split(w) => {
            // `None`: nothing to write, so flush.
            let n = std::future::poll_fn(|cx| {
                let mut o = lane.lock();
                if o.wbuf.is_empty() {
                    return std::task::Poll::Ready(Ok(None));
                }
                let r = std::pin::Pin::new(&mut *w).poll_write(cx, &o.wbuf);
                r.map_ok(|n| {
                    o.wbuf.advance(n);
                    Some(n)
                })
            })
            .await
            .map_err(err)?;
            match n {
                Some(0) => Err(closed()),
                Some(_) => {
                    *unflushed = true;
                    Ok(())
                }
                None => {
                    w.flush().await.map_err(err)?;
                    *unflushed = false;
                    Ok(())
                }
            }
        }
    }
}

impl Io {
    /// A plain TCP connection: its writing half is shared with the lane.
    fn tcp(s: tokio::net::TcpStream, lane: Arc<Lane>) -> Io {
        let (r, w) = s.into_split();
        Io {
            r: Box::new(r),
            w: Wr::Tcp(Arc::new(w)),
            rbuf: BytesMut::with_capacity(8 * 1024),
            lane,
            unflushed: false,
        }
    }

    /// Any other transport (TLS).
    fn split(s: Box<dyn Stream>, lane: Arc<Lane>) -> Io {
        let (r, w) = tokio::io::split(s);
        Io {
            r: Box::new(r),
            w: Wr::Split(w),
            rbuf: BytesMut::with_capacity(8 * 1024),
            lane,
            unflushed: false,
        }
    }

    /// Whether encoded bytes wait to be written or flushed.
    fn wants_write(&self) -> bool {
        self.unflushed || !self.lane.lock().wbuf.is_empty()
    }

    /// The next packet, waiting for it (during the handshake).
    async fn next<P>(
        &mut self,
        parse: impl Fn(&mut BytesMut) -> Result<Option<P>, String>,
    ) -> Result<P, String> {
        loop {
            if let Some(p) = parse(&mut self.rbuf)? {
                return Ok(p);
            }
            fill(&mut self.r, &mut self.rbuf).await?;
        }
    }

    /// Writes and flushes everything encoded, waiting as long as it takes.
    async fn flush(&mut self) -> Result<(), String> {
        while self.wants_write() {
            write_step(&mut self.w, &self.lane, &mut self.unflushed).await?;
        }
        Ok(())
    }

    /// Writes and flushes what the socket takes now, without waiting.
    fn try_flush(&mut self) -> Result<(), String> {
        use futures_util::FutureExt;
        while self.wants_write() {
            match write_step(&mut self.w, &self.lane, &mut self.unflushed).now_or_never() {
                Some(r) => r?,
                None => break,
            }
        }
        Ok(())
    }
}

fn parse4(buf: &mut BytesMut, max: usize) -> Result<Option<rumqttc::Packet>, String> {
    match rumqttc::Packet::read(buf, max) {
        Ok(p) => Ok(Some(p)),
        Err(rumqttc::mqttbytes::Error::InsufficientBytes(_)) => Ok(None),
        Err(e) => Err(format!("bad packet from the broker: {e}")),
    }
}

fn parse5(buf: &mut BytesMut, max: Option<u32>) -> Result<Option<p5::Packet>, String> {
    match p5::Packet::read(buf, max) {
        Ok(p) => Ok(Some(p)),
        Err(rumqttc::v5::mqttbytes::Error::InsufficientBytes(_)) => Ok(None),
        Err(e) => Err(format!("bad packet from the broker: {e}")),
    }
}

/// An incoming PUBLISH as received, for the manual acknowledgement.
pub(crate) struct RawPub {
    pkid: u16,
    qos: u8,
}

/// An incoming publication.
pub(crate) struct InPub {
    pub(crate) topic: String,
    pub(crate) payload: Bytes,
    pub(crate) qos: u8,
    pub(crate) retain: bool,
    pub(crate) meta: Option<MqttMeta>,
    pub(crate) raw: RawPub,
}

/// What the adapter needs to know from the connection.
pub(crate) enum Ev {
    /// A publication from the broker.
    Publish(Box<InPub>),
    /// We sent a PUBLISH with this packet identifier.
    Sent(u16),
    /// The broker acknowledged this packet identifier (PUBACK / PUBCOMP).
    Acked(u16),
    /// Anything else.
    Other,
}

/// Outgoing QoS 1/2 publications in flight to the broker.
const INFLIGHT: u16 = 256;

/// Builds the (unconnected) connection for `cfg`.
pub(crate) fn build(
    cfg: &Config,
    url: &BrokerUrl,
    tls: Option<Arc<rustls::ClientConfig>>,
    client_id: String,
    lane: Arc<Lane>,
) -> Conn {
    let max_packet = cfg.max_payload.as_usize().saturating_add(65_536 + 4096);
    let secs = cfg.keep_alive.0.as_secs();
    let login = url.username.as_ref().map(|u| {
        let p = url.password.as_ref().map_or("", |p| p.expose());
        (u.clone(), p.to_owned())
    });
    let v = if cfg.version == 5 {
        let mut o = rumqttc::v5::MqttOptions::new(client_id, url.host.clone(), url.port);
        o.set_keep_alive(Duration::from_secs(secs.max(5)));
        o.set_clean_start(cfg.clean_session);
        if !cfg.clean_session {
            o.set_session_expiry_interval(Some(u32::MAX));
        }
        let max_in = u32::try_from(max_packet).ok();
        o.set_max_packet_size(max_in);
        if let Some((u, p)) = login {
            o.set_credentials(u, p);
        }
        Ver::V5(Box::new(V5 {
            ka: o.keep_alive(),
            o,
            state: rumqttc::v5::MqttState::new(INFLIGHT, true),
            pending: Vec::new(),
            max_inflight: INFLIGHT,
            max_in,
            max_out: None,
        }))
    } else {
        let mut o = rumqttc::MqttOptions::new(client_id, url.host.clone(), url.port);
        o.set_keep_alive(Duration::from_secs(secs.max(1)));
        o.set_clean_session(cfg.clean_session);
        if let Some((u, p)) = login {
            o.set_credentials(u, p);
        }
        Ver::V4(Box::new(V4 {
            o,
            state: rumqttc::MqttState::new(INFLIGHT, true),
            pending: Vec::new(),
            max_packet,
            events: std::collections::VecDeque::new(),
        }))
    };
    Conn {
        host: url.host.clone(),
        port: url.port,
        tls: tls.map(tokio_rustls::TlsConnector::from),
        io: None,
        v,
        lane,
    }
}

/// The ping interval when the broker turned keep-alive off.
const NO_KEEP_ALIVE: Duration = Duration::from_secs(365 * 86_400);

/// How long connecting (TCP, TLS, CONNECT/CONNACK) may take.
const CONNECTION_TIMEOUT: Duration = Duration::from_secs(5);

fn publish5(m: &OutMsg) -> p5::Publish {
    let meta = &m.meta;
    let props = (!meta.is_empty()).then(|| p5::PublishProperties {
        payload_format_indicator: meta.payload_format,
        content_type: meta.content_type.clone(),
        user_properties: meta.user.clone(),
        ..Default::default()
    });
    let mut p = p5::Publish::new(&*m.topic, qos5(m.qos), m.payload.clone(), props);
    p.retain = m.retain;
    p
}

fn meta5(p: &Option<p5::PublishProperties>) -> Option<MqttMeta> {
    p.as_ref().map(|p| MqttMeta {
        content_type: p.content_type.clone(),
        payload_format: p.payload_format_indicator,
        user: p.user_properties.clone(),
    })
}

fn err(e: impl std::fmt::Display) -> String {
    e.to_string()
}

/// Hands a request to the 3.1.1 session state and encodes its packet.
fn req4(io: &Option<Io>, v: &mut V4, r: rumqttc::Request) -> Result<(), String> {
    let io = io.as_ref().ok_or("not connected")?;
    if let Some(p) = v.state.handle_outgoing_packet(r).map_err(err)? {
        p.write(&mut io.lane.lock().wbuf, v.max_packet)
            .map_err(err)?;
    }
    Ok(())
}

/// Hands a request to the MQTT 5 session state and encodes its packet.
fn req5(io: &Option<Io>, v: &mut V5, r: rumqttc::v5::Request) -> Result<(), String> {
    let io = io.as_ref().ok_or("not connected")?;
    if let Some(p) = v.state.handle_outgoing_packet(r).map_err(err)? {
        p.write(&mut io.lane.lock().wbuf, v.max_out).map_err(err)?;
    }
    Ok(())
}

/// CONNECT / CONNACK on a fresh connection; whether the broker had a
/// session for us.
async fn handshake(v: &mut Ver, io: &mut Io) -> Result<bool, String> {
    match v {
        Ver::V4(v) => {
            let o = &v.o;
            let mut c = rumqttc::Connect::new(o.client_id());
            c.keep_alive = u16::try_from(o.keep_alive().as_secs()).unwrap_or(u16::MAX);
            c.clean_session = o.clean_session();
            c.last_will = o.last_will();
            c.login = o.credentials();
            rumqttc::Packet::Connect(c)
                .write(&mut io.lane.lock().wbuf, v.max_packet)
                .map_err(err)?;
            io.flush().await?;
            let max = v.max_packet;
            match io.next(|b| parse4(b, max)).await? {
                rumqttc::Packet::ConnAck(a) if a.code == rumqttc::ConnectReturnCode::Success => {
                    Ok(a.session_present)
                }
                rumqttc::Packet::ConnAck(a) => Err(format!("connection refused: {:?}", a.code)),
                p => Err(format!("expected CONNACK, got {p:?}")),
            }
        }
        Ver::V5(v) => {
            let o = &v.o;
            let c = p5::Connect {
                client_id: o.client_id(),
                keep_alive: u16::try_from(o.keep_alive().as_secs()).unwrap_or(u16::MAX),
                clean_start: o.clean_start(),
                properties: o.connect_properties(),
            };
            p5::Packet::Connect(c, o.last_will(), o.credentials())
                .write(&mut io.lane.lock().wbuf, None)
                .map_err(err)?;
            io.flush().await?;
            let max = v.max_in;
            match io.next(|b| parse5(b, max)).await? {
                p5::Packet::ConnAck(a) if a.code == p5::ConnectReturnCode::Success => {
                    v.ka = o.keep_alive();
                    v.max_inflight = INFLIGHT;
                    v.max_out = None;
                    if let Some(props) = &a.properties {
                        // The broker's keep-alive replaces ours [MQTT-3.2.2-21];
                        // 0 turns the mechanism off (no PINGREQs then).
                        if let Some(k) = props.server_keep_alive {
                            v.ka = if k == 0 {
                                NO_KEEP_ALIVE
                            } else {
                                Duration::from_secs(u64::from(k))
                            };
                        }
                        if let Some(m) = props.receive_max {
                            v.max_inflight = m.clamp(1, INFLIGHT);
                        }
                        v.max_out = props.max_packet_size;
                    }
                    let session = a.session_present;
                    // The state learns the broker's limits (topic aliases,
                    // receive maximum) from it too.
                    v.state
                        .handle_incoming_packet(p5::Packet::ConnAck(a))
                        .map_err(err)?;
                    v.state.events.clear();
                    Ok(session)
                }
                p5::Packet::ConnAck(a) => Err(format!("connection refused: {:?}", a.code)),
                p => Err(format!("expected CONNACK, got {p:?}")),
            }
        }
    }
}

/// An incoming 3.1.1 publication as an event.
fn publish4(p: rumqttc::Publish) -> Ev {
    Ev::Publish(Box::new(InPub {
        raw: RawPub {
            pkid: p.pkid,
            qos: p.qos as u8,
        },
        topic: p.topic,
        payload: p.payload,
        qos: p.qos as u8,
        retain: p.retain,
        meta: None,
    }))
}

/// Moves the 3.1.1 session state's events, converted, behind ours.
fn pull4(v: &mut V4) {
    use rumqttc::{Event, Outgoing, Packet};
    while let Some(ev) = v.state.events.pop_front() {
        v.events.push_back(match ev {
            Event::Incoming(Packet::Publish(p)) => publish4(p),
            Event::Incoming(Packet::PubAck(a)) => Ev::Acked(a.pkid),
            Event::Incoming(Packet::PubComp(a)) => Ev::Acked(a.pkid),
            Event::Outgoing(Outgoing::Publish(id)) => Ev::Sent(id),
            _ => Ev::Other,
        });
    }
}

impl Conn {
    /// Whether this is an MQTT 5 client (publications carry properties).
    pub(crate) fn is_v5(&self) -> bool {
        matches!(self.v, Ver::V5(_))
    }

    /// The keep-alive interval agreed with the broker.
    pub(crate) fn keep_alive(&self) -> Duration {
        match &self.v {
            Ver::V4(v) => v.o.keep_alive(),
            Ver::V5(v) => v.ka,
        }
    }

    /// Connects (TCP, TLS, CONNECT, CONNACK) and queues what a session the
    /// broker kept still needs from us (publications not acknowledged,
    /// releases). Returns whether the broker had a session for us. Not
    /// cancel-safe: keep the future until it completes.
    pub(crate) async fn connect(&mut self) -> Result<bool, String> {
        self.io = None;
        self.lane.detach();
        let lane = self.lane.clone();
        let s = tokio::time::timeout(CONNECTION_TIMEOUT, async {
            let tcp = tokio::net::TcpStream::connect((self.host.as_str(), self.port))
                .await
                .map_err(err)?;
            let _ = tcp.set_nodelay(true);
            let mut io = match &self.tls {
                Some(c) => {
                    let name =
                        rustls::pki_types::ServerName::try_from(self.host.clone()).map_err(err)?;
                    Io::split(Box::new(c.connect(name, tcp).await.map_err(err)?), lane)
                }
                None => Io::tcp(tcp, lane),
            };
            let session = handshake(&mut self.v, &mut io).await?;
            Ok::<_, String>((io, session))
        })
        .await
        .unwrap_or_else(|_| Err("timed out connecting".into()));
        let (io, session) = s?;
        let tcp = match &io.w {
            Wr::Tcp(t) => Some(t.clone()),
            Wr::Split(_) => None,
        };
        self.lane.attach(tcp, self.max_packet());
        self.io = Some(io);
        match &mut self.v {
            Ver::V4(v) => {
                let pending = std::mem::take(&mut v.pending);
                if session {
                    for r in pending {
                        req4(&self.io, v, r)?;
                    }
                }
            }
            Ver::V5(v) => {
                let pending = std::mem::take(&mut v.pending);
                if session {
                    for r in pending {
                        req5(&self.io, v, r)?;
                    }
                }
            }
        }
        Ok(session)
    }

    /// The connection's two sides, for the adapter's select (`None` when
    /// not connected).
    pub(crate) fn sides(&mut self) -> Option<(Reader<'_>, Writer<'_>)> {
        let io = self.io.as_mut()?;
        Some((
            Reader {
                r: &mut io.r,
                buf: &mut io.rbuf,
            },
            Writer {
                w: &mut io.w,
                lane: &io.lane,
                unflushed: &mut io.unflushed,
            },
        ))
    }

    /// Hands every complete packet read so far to the session state: the
    /// events are then in [`Conn::next_event`], replies encoded.
    pub(crate) fn on_read(&mut self) -> Result<(), String> {
        let Some(io) = self.io.as_mut() else {
            return Ok(());
        };
        match &mut self.v {
            Ver::V4(v) => {
                let max = v.max_packet;
                while let Some(p) = parse4(&mut io.rbuf, max)? {
                    match p {
                        rumqttc::Packet::Publish(p) if p.qos == rumqttc::QoS::AtMostOnce => {
                            // Nothing for the session state to do or keep;
                            // its events so far go first.
                            pull4(v);
                            v.events.push_back(publish4(p));
                        }
                        p => {
                            if let Some(o) = v.state.handle_incoming_packet(p).map_err(err)? {
                                o.write(&mut io.lane.lock().wbuf, max).map_err(err)?;
                            }
                        }
                    }
                }
            }
            Ver::V5(v) => {
                let max = v.max_in;
                while let Some(p) = parse5(&mut io.rbuf, max)? {
                    if let Some(o) = v.state.handle_incoming_packet(p).map_err(err)? {
                        o.write(&mut io.lane.lock().wbuf, v.max_out).map_err(err)?;
                    }
                }
            }
        }
        Ok(())
    }

    /// The next event: the session state's, and (3.1.1) incoming QoS 0
    /// publications in their place among them.
    pub(crate) fn next_event(&mut self) -> Option<Ev> {
        match &mut self.v {
            Ver::V4(v) => {
                pull4(v);
                v.events.pop_front()
            }
            Ver::V5(v) => {
                use rumqttc::v5::Event;
                let ev = v.state.events.pop_front()?;
                Some(match ev {
                    Event::Incoming(p5::Packet::Publish(p)) => Ev::Publish(Box::new(InPub {
                        topic: String::from_utf8_lossy(&p.topic).into_owned(),
                        meta: meta5(&p.properties),
                        raw: RawPub {
                            pkid: p.pkid,
                            qos: p.qos as u8,
                        },
                        payload: p.payload,
                        qos: p.qos as u8,
                        retain: p.retain,
                    })),
                    Event::Incoming(p5::Packet::PubAck(a)) => Ev::Acked(a.pkid),
                    Event::Incoming(p5::Packet::PubComp(a)) => Ev::Acked(a.pkid),
                    Event::Outgoing(rumqttc::Outgoing::Publish(id)) => Ev::Sent(id),
                    _ => Ev::Other,
                })
            }
        }
    }

    /// Whether a publication at `qos` may be sent now: QoS >= 1 waits while
    /// the in-flight window is full or a packet identifier collided.
    pub(crate) fn may_publish(&self, qos: u8) -> bool {
        // Beyond this, publications wait in the outbox (bounded, and
        // back-pressuring the router) until the socket takes more.
        if self
            .io
            .as_ref()
            .is_none_or(|io| io.lane.lock().wbuf.len() >= WRITE_HIGH)
        {
            return false;
        }
        if qos == 0 {
            return true;
        }
        match &self.v {
            Ver::V4(v) => v.state.inflight() < INFLIGHT && v.state.collision.is_none(),
            Ver::V5(v) => v.state.inflight() < v.max_inflight && v.state.collision.is_none(),
        }
    }

    /// Whether a publication is over the broker's Maximum Packet Size
    /// (MQTT 5 CONNACK): it could never be sent [MQTT-3.1.2-24].
    pub(crate) fn too_large(&self, m: &OutMsg) -> bool {
        let Ver::V5(v) = &self.v else {
            return false;
        };
        let Some(max) = v.max_out else {
            return false;
        };
        // An upper bound first (fixed header 5, topic 2 + len, packet id 2,
        // properties length 4, payload format 2, content type 3 + len, each
        // user property 5 + key + value): the exact size needs the packet
        // built, which only a message near the limit is worth.
        let meta = &m.meta;
        let bound = 5
            + 2
            + m.topic.len()
            + 2
            + 4
            + 2
            + meta.content_type.as_ref().map_or(0, |c| 3 + c.len())
            + meta
                .user
                .iter()
                .map(|(k, v)| 5 + k.len() + v.len())
                .sum::<usize>()
            + m.payload.len();
        if u32::try_from(bound).is_ok_and(|b| b <= max) {
            return false;
        }
        let p = publish5(m);
        // `size` counts the packet identifier only once it is assigned.
        let size = p.size() + if m.qos > 0 { 2 } else { 0 };
        u32::try_from(size).map_or(true, |n| n > max)
    }

    /// Encodes a publication (see [`Conn::may_publish`] first).
    pub(crate) fn publish(&mut self, m: &OutMsg) -> Result<(), String> {
        if m.qos == 0 && self.publish_plain(m) {
            return Ok(());
        }
        match &mut self.v {
            Ver::V4(v) => {
                let mut p = rumqttc::Publish::from_bytes(&*m.topic, qos4(m.qos), m.payload.clone());
                p.retain = m.retain;
                req4(&self.io, v, rumqttc::Request::Publish(p))
            }
            Ver::V5(v) => req5(&self.io, v, rumqttc::v5::Request::Publish(publish5(m))),
        }
    }

    /// A QoS 0 publication with nothing for MQTT 5 properties, encoded
    /// straight into the write buffer: the session state has nothing to
    /// keep for it (its only trace there is an event the outbox ignores,
    /// QoS 0 being done once handed over). Whether it was written; `false`
    /// leaves it to the session state (also a packet over the limits, for
    /// the same error as always).
    fn publish_plain(&mut self, m: &OutMsg) -> bool {
        // (A 3.1.1 publication's meta is always empty.)
        m.meta.is_empty()
            && self
                .io
                .as_ref()
                .is_some_and(|io| io.lane.lock().write_plain(&m.topic, &m.payload, m.retain))
    }

    /// The largest packet the broker takes.
    fn max_packet(&self) -> usize {
        match &self.v {
            Ver::V4(v) => v.max_packet,
            Ver::V5(v) => v.max_out.map_or(usize::MAX, |n| n as usize),
        }
    }

    /// Encodes the acknowledgement of an incoming publication.
    pub(crate) fn ack(&mut self, raw: &RawPub) -> Result<(), String> {
        match &mut self.v {
            Ver::V4(v) => {
                let r = match raw.qos {
                    0 => return Ok(()),
                    1 => rumqttc::Request::PubAck(rumqttc::PubAck::new(raw.pkid)),
                    _ => rumqttc::Request::PubRec(rumqttc::PubRec::new(raw.pkid)),
                };
                req4(&self.io, v, r)
            }
            Ver::V5(v) => {
                let r = match raw.qos {
                    0 => return Ok(()),
                    1 => rumqttc::v5::Request::PubAck(p5::PubAck::new(raw.pkid, None)),
                    _ => rumqttc::v5::Request::PubRec(p5::PubRec::new(raw.pkid, None)),
                };
                req5(&self.io, v, r)
            }
        }
    }

    /// Encodes a SUBSCRIBE; `no_local` is honoured on MQTT 5 only.
    pub(crate) fn subscribe(
        &mut self,
        filter: &str,
        qos: u8,
        no_local: bool,
    ) -> Result<(), String> {
        match &mut self.v {
            Ver::V4(v) => {
                let r = rumqttc::Request::Subscribe(rumqttc::Subscribe::new(filter, qos4(qos)));
                req4(&self.io, v, r)
            }
            Ver::V5(v) => {
                let mut f = p5::Filter::new(filter, qos5(qos));
                f.nolocal = no_local;
                let r = rumqttc::v5::Request::Subscribe(p5::Subscribe::new(f, None));
                req5(&self.io, v, r)
            }
        }
    }

    /// Encodes an UNSUBSCRIBE.
    pub(crate) fn unsubscribe(&mut self, filter: &str) -> Result<(), String> {
        match &mut self.v {
            Ver::V4(v) => {
                let r = rumqttc::Request::Unsubscribe(rumqttc::Unsubscribe::new(filter));
                req4(&self.io, v, r)
            }
            Ver::V5(v) => {
                let r = rumqttc::v5::Request::Unsubscribe(p5::Unsubscribe::new(filter, None));
                req5(&self.io, v, r)
            }
        }
    }

    /// Encodes a PINGREQ; an error when the last one was never answered.
    pub(crate) fn ping(&mut self) -> Result<(), String> {
        match &mut self.v {
            Ver::V4(v) => req4(&self.io, v, rumqttc::Request::PingReq(rumqttc::PingReq)),
            Ver::V5(v) => req5(&self.io, v, rumqttc::v5::Request::PingReq),
        }
    }

    /// Encodes a DISCONNECT.
    pub(crate) fn disconnect(&mut self) -> Result<(), String> {
        match &mut self.v {
            Ver::V4(v) => req4(
                &self.io,
                v,
                rumqttc::Request::Disconnect(rumqttc::Disconnect),
            ),
            Ver::V5(v) => req5(&self.io, v, rumqttc::v5::Request::Disconnect),
        }
    }

    /// Whether encoded bytes wait to be written or flushed.
    pub(crate) fn wants_write(&self) -> bool {
        self.io.as_ref().is_some_and(Io::wants_write)
    }

    /// Writes what the socket takes now, without waiting (the rest waits
    /// for the select's writer).
    pub(crate) fn try_flush(&mut self) -> Result<(), String> {
        match self.io.as_mut() {
            Some(io) => io.try_flush(),
            None => Ok(()),
        }
    }

    /// Writes everything encoded, waiting as long as it takes (shutdown).
    pub(crate) async fn flush(&mut self) -> Result<(), String> {
        match self.io.as_mut() {
            Some(io) => io.flush().await,
            None => Ok(()),
        }
    }

    /// The connection failed: drops it and keeps what the session still
    /// needs for the next one (unacknowledged publications and releases;
    /// acknowledgements are not carried over, the broker sends those
    /// publications again).
    pub(crate) fn lost(&mut self) {
        self.io = None;
        self.lane.detach();
        match &mut self.v {
            Ver::V4(v) => {
                let kept = v.state.clean();
                v.pending.extend(kept);
                v.state.events.clear();
                v.events.clear();
            }
            Ver::V5(v) => {
                let kept = v.state.clean();
                v.pending.extend(kept);
                v.state.events.clear();
            }
        }
    }
}

impl Drop for Conn {
    /// The express lane lets go of the socket with the connection, whatever
    /// ends the task.
    fn drop(&mut self) {
        self.lane.detach();
    }
}

/// Fuzzing: bytes from the broker into a connected client of each version,
/// after a few publications of ours (so acknowledgements can match): the
/// framing, the session state and the events must never panic.
pub(crate) fn fuzz_inbound(data: &[u8]) {
    let Ok(url) = BrokerUrl::parse("mqtt://127.0.0.1") else {
        return;
    };
    for version in [4u8, 5] {
        let cfg = Config {
            version,
            ..Config::default()
        };
        let lane = Arc::new(Lane::new(version == 5, 1 << 20, Default::default()));
        let mut conn = build(&cfg, &url, None, "fuzz".into(), lane.clone());
        let (a, _b) = tokio::io::duplex(64);
        let mut io = Io::split(Box::new(a), lane.clone());
        io.rbuf.extend_from_slice(data);
        conn.io = Some(io);
        lane.attach(None, conn.max_packet());
        for qos in [1u8, 2, 1, 0] {
            let m = OutMsg {
                topic: Arc::from("t"),
                payload: Bytes::from_static(b"x"),
                qos,
                retain: false,
                meta: MqttMeta::default(),
            };
            if conn.may_publish(qos) {
                let _ = conn.publish(&m);
            }
        }
        let r = conn.on_read();
        while let Some(ev) = conn.next_event() {
            if let Ev::Publish(p) = ev {
                let _ = conn.ack(&p.raw);
            }
        }
        if r.is_err() {
            conn.lost();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Incoming 3.1.1 QoS 0 publications skip the session state but keep
    /// their place among its events: QoS 1, 0, 1, 0 read in one go come out
    /// in that order, and a PUBACK for our own publication in between too.
    #[tokio::test]
    async fn v4_qos0_publications_keep_their_place_among_the_states_events() {
        let url = BrokerUrl::parse("mqtt://127.0.0.1").unwrap();
        let cfg = Config::default();
        let lane = Arc::new(Lane::new(false, 1 << 20, Default::default()));
        let mut conn = build(&cfg, &url, None, "t".into(), lane.clone());
        let (a, _b) = tokio::io::duplex(1 << 16);
        conn.io = Some(Io::split(Box::new(a), lane.clone()));
        lane.attach(None, conn.max_packet());
        // One QoS 1 publication of ours, so that a PUBACK can match it.
        let ours = OutMsg {
            topic: Arc::from("out"),
            payload: Bytes::from_static(b"x"),
            qos: 1,
            retain: false,
            meta: MqttMeta::default(),
        };
        conn.publish(&ours).unwrap();
        let publish = |topic: &str, qos: u8, pkid: u16| {
            let mut p = rumqttc::Publish::new(topic, qos4(qos), "p");
            p.pkid = pkid;
            rumqttc::Packet::Publish(p)
        };
        let mut bytes = BytesMut::new();
        for p in [
            publish("a", 1, 7),
            publish("b", 0, 0),
            rumqttc::Packet::PubAck(rumqttc::PubAck::new(1)),
            publish("c", 1, 8),
            publish("d", 0, 0),
        ] {
            p.write(&mut bytes, 1 << 20).unwrap();
        }
        conn.io.as_mut().unwrap().rbuf.extend_from_slice(&bytes);
        conn.on_read().unwrap();
        let mut seen = Vec::new();
        while let Some(ev) = conn.next_event() {
            seen.push(match ev {
                Ev::Publish(p) => format!("{}{}", p.topic, p.qos),
                Ev::Sent(id) => format!("sent{id}"),
                Ev::Acked(id) => format!("acked{id}"),
                Ev::Other => "other".into(),
            });
        }
        assert_eq!(seen, ["sent1", "a1", "b0", "acked1", "c1", "d0"]);
    }

    /// The quick bound never lets through a publication whose exact size is
    /// over the broker's maximum, and never refuses one that fits.
    #[test]
    fn too_large_agrees_with_the_exact_size() {
        let url = BrokerUrl::parse("mqtt://127.0.0.1").unwrap();
        let cfg = Config {
            version: 5,
            ..Config::default()
        };
        let lane = Arc::new(Lane::new(true, 1 << 20, Default::default()));
        let mut conn = build(&cfg, &url, None, "t".into(), lane);
        let max = 200u32;
        if let Ver::V5(v) = &mut conn.v {
            v.max_out = Some(max);
        }
        for meta in [
            MqttMeta::default(),
            MqttMeta {
                content_type: Some("application/json".into()),
                payload_format: Some(1),
                user: vec![("sb-origin".into(), "bridge-a".into())],
            },
        ] {
            for qos in [0u8, 1] {
                for n in 100..200 {
                    let m = OutMsg {
                        topic: Arc::from("a/b"),
                        payload: Bytes::from(vec![b'x'; n]),
                        qos,
                        retain: false,
                        meta: meta.clone(),
                    };
                    let exact = publish5(&m).size() + if qos > 0 { 2 } else { 0 };
                    assert_eq!(conn.too_large(&m), exact > max as usize, "{n} {qos}");
                }
            }
        }
    }
}
