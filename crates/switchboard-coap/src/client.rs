//! The mount client (sans-IO, part of [`Core`]): observes resources of remote
//! devices (re-registering with backoff when an observation is lost) and sends
//! deliveries to them as CON PUTs, one at a time per device, block-wise
//! (Block1) when larger than the block size.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::Bytes;
use coap_lite::{CoapOption, MessageClass, MessageType, Packet, RequestType, ResponseType};
use switchboard_model::{Format, Qos, Topic};

use crate::config::{Config, parse_url};
use crate::core::{Core, Event, Owner};
use crate::fetch::Fetch;
use crate::mapping;
use crate::wire::{self, Block};

/// One of the client's exchanges.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ReqId {
    /// The observation at this index.
    Obs(usize),
    /// The PUT in flight to the mount at this index.
    Put(usize),
    /// The Block2 fetch of the rest of a large notification of this observation.
    Fetch(usize),
}

const MIN_BACKOFF: Duration = Duration::from_secs(1);
const MAX_BACKOFF: Duration = Duration::from_secs(60);
/// How long we wait for a separate response after an empty ACK.
const SEPARATE_WAIT: Duration = Duration::from_secs(30);
/// PUTs waiting per mount behind the one in flight.
const MAX_QUEUED: usize = 1024;

#[derive(Debug)]
enum ObsState {
    Idle { retry_at: Instant },
    Registering { until: Instant },
    Active { fresh_until: Instant },
}

#[derive(Debug)]
pub(crate) struct Obs {
    pub(crate) mount: usize,
    pub(crate) path: Vec<String>,
    pub(crate) topic: Topic,
    token: Vec<u8>,
    state: ObsState,
    backoff: Duration,
    last_seq: Option<(u32, Instant)>,
    pub(crate) fetch: Option<Fetch>,
}

#[derive(Debug)]
struct Put {
    id: u64,
    path: Vec<String>,
    payload: Bytes,
    cf: Option<u16>,
    token: Vec<u8>,
    blk: Block,
    waiting_until: Option<Instant>,
}

#[derive(Debug)]
pub(crate) struct Mount {
    prefix: String,
    pub(crate) addr: SocketAddr,
    pub(crate) base: Vec<String>,
    inflight: Option<Put>,
    queue: VecDeque<(u64, Vec<String>, Bytes, Option<u16>)>,
}

#[derive(Debug, Default)]
pub(crate) struct Client {
    pub(crate) mounts: Vec<Mount>,
    pub(crate) obs: Vec<Obs>,
}

impl Client {
    /// The observation of a mount at `peer` that `owns` a response.
    pub(crate) fn obs_from(&self, peer: SocketAddr, owns: impl Fn(&Obs) -> bool) -> Option<usize> {
        self.obs
            .iter()
            .position(|o| owns(o) && self.mounts.get(o.mount).is_some_and(|m| m.addr == peer))
    }

    pub(crate) fn new(config: &Config, now: Instant) -> Self {
        let mut c = Client::default();
        for m in &config.mount {
            let Ok(url) = parse_url(&m.url) else { continue };
            let mi = c.mounts.len();
            c.mounts.push(Mount {
                prefix: m.prefix.trim_matches('/').to_owned(),
                addr: url.addr,
                base: url.base,
                inflight: None,
                queue: VecDeque::new(),
            });
            for p in &m.observe {
                let path: Vec<String> = p
                    .split('/')
                    .filter(|s| !s.is_empty())
                    .map(str::to_owned)
                    .collect();
                let Ok(topic) = Topic::new(&format!(
                    "{}/{}",
                    m.prefix.trim_matches('/'),
                    path.join("/")
                )) else {
                    continue;
                };
                c.obs.push(Obs {
                    mount: mi,
                    path,
                    topic,
                    token: Vec::new(),
                    state: ObsState::Idle { retry_at: now },
                    backoff: MIN_BACKOFF,
                    last_seq: None,
                    fetch: None,
                });
            }
        }
        c
    }

    pub(crate) fn len(&self) -> usize {
        self.mounts
            .iter()
            .map(|m| m.queue.len() + usize::from(m.inflight.is_some()))
            .sum()
    }

    pub(crate) fn next_timer(&self) -> Option<Instant> {
        let a = self.obs.iter().map(|o| match o.state {
            ObsState::Idle { retry_at } => retry_at,
            ObsState::Registering { until } => until,
            ObsState::Active { fresh_until } => fresh_until,
        });
        let b = self
            .mounts
            .iter()
            .filter_map(|m| m.inflight.as_ref().and_then(|p| p.waiting_until));
        a.chain(b).min()
    }

    fn mount_of(&self, topic: &str) -> Option<(usize, Vec<String>)> {
        self.mounts.iter().enumerate().find_map(|(i, m)| {
            let rest = if topic == m.prefix {
                ""
            } else {
                topic.strip_prefix(m.prefix.as_str())?.strip_prefix('/')?
            };
            Some((
                i,
                rest.split('/')
                    .filter(|s| !s.is_empty())
                    .map(str::to_owned)
                    .collect(),
            ))
        })
    }
}

impl Core {
    /// Stops retransmitting the client request `id` (its response came).
    pub(crate) fn forget_outgoing(&mut self, id: ReqId) {
        self.outgoing.retain(|_, o| o.owner != Owner::Client(id));
    }

    /// Whether `topic` lies under a mount prefix.
    pub fn is_mounted(&self, topic: &Topic) -> bool {
        self.client.mount_of(topic.as_str()).is_some()
    }

    /// Sends a delivery to the mounted device owning `topic` as a CON PUT;
    /// [`Event::Delivered`] with `id` reports the outcome. Returns false (and
    /// does nothing) when `topic` is not under a mount.
    pub fn send_to_mount(
        &mut self,
        id: u64,
        topic: &Topic,
        payload: Bytes,
        format: &Format,
        now: Instant,
    ) -> bool {
        let Some((mi, path)) = self.client.mount_of(topic.as_str()) else {
            return false;
        };
        let cf = mapping::content_format(format);
        let m = &mut self.client.mounts[mi];
        if m.queue.len() >= MAX_QUEUED {
            self.push_event(Event::Delivered { id, ok: false });
            return true;
        }
        m.queue.push_back((id, path, payload, cf));
        if m.inflight.is_none() {
            self.start_next_put(mi, now);
        }
        true
    }

    fn start_next_put(&mut self, mi: usize, now: Instant) {
        let szx = self.p.szx;
        let token = self.random().to_be_bytes().to_vec();
        let Some(m) = self.client.mounts.get_mut(mi) else {
            return;
        };
        let Some((id, path, payload, cf)) = m.queue.pop_front() else {
            return;
        };
        m.inflight = Some(Put {
            id,
            path,
            payload,
            cf,
            token,
            blk: Block {
                num: 0,
                more: false,
                szx,
            },
            waiting_until: None,
        });
        self.send_put_block(mi, now);
    }

    fn send_put_block(&mut self, mi: usize, now: Instant) {
        let mid = self.mid();
        let Some(m) = self.client.mounts.get_mut(mi) else {
            return;
        };
        let addr = m.addr;
        let Some(put) = m.inflight.as_mut() else {
            return;
        };
        let mut r = Packet::new();
        r.header.set_type(MessageType::Confirmable);
        r.header.code = MessageClass::Request(RequestType::Put);
        r.header.message_id = mid;
        r.set_token(put.token.clone());
        for s in m.base.iter().chain(put.path.iter()) {
            r.add_option(CoapOption::UriPath, s.as_bytes().to_vec());
        }
        if let Some(cf) = put.cf {
            r.add_option(CoapOption::ContentFormat, wire::enc_uint(u32::from(cf)));
        }
        let size = put.blk.size();
        let len = put.payload.len();
        if len > size || put.blk.num > 0 {
            let off = put.blk.offset().min(len);
            let end = (off + size).min(len);
            put.blk.more = end < len;
            r.add_option(CoapOption::Block1, put.blk.encode());
            if put.blk.num == 0 {
                r.add_option(
                    CoapOption::Size1,
                    wire::enc_uint(u32::try_from(len).unwrap_or(u32::MAX)),
                );
            }
            r.payload = put.payload[off..end].to_vec();
        } else {
            r.payload = put.payload.to_vec();
        }
        put.waiting_until = None;
        let b = wire::bytes(&r);
        self.send_con(addr, mid, b, Owner::Client(ReqId::Put(mi)), now);
    }

    fn finish_put(&mut self, mi: usize, ok: bool, now: Instant) {
        let Some(m) = self.client.mounts.get_mut(mi) else {
            return;
        };
        if let Some(p) = m.inflight.take() {
            self.forget_outgoing(ReqId::Put(mi));
            self.push_event(Event::Delivered { id: p.id, ok });
        }
        self.start_next_put(mi, now);
    }

    fn register_obs(&mut self, i: usize, now: Instant) {
        let mid = self.mid();
        let tok = self.random().to_be_bytes().to_vec();
        let Some(o) = self.client.obs.get_mut(i) else {
            return;
        };
        let Some(m) = self.client.mounts.get(o.mount) else {
            return;
        };
        if o.token.is_empty() {
            o.token = tok;
        }
        let mut r = Packet::new();
        r.header.set_type(MessageType::Confirmable);
        r.header.code = MessageClass::Request(RequestType::Get);
        r.header.message_id = mid;
        r.set_token(o.token.clone());
        r.add_option(CoapOption::Observe, Vec::new());
        for s in m.base.iter().chain(o.path.iter()) {
            r.add_option(CoapOption::UriPath, s.as_bytes().to_vec());
        }
        o.state = ObsState::Registering {
            until: now + SEPARATE_WAIT,
        };
        let addr = m.addr;
        self.forget_outgoing(ReqId::Obs(i));
        self.send_con(
            addr,
            mid,
            wire::bytes(&r),
            Owner::Client(ReqId::Obs(i)),
            now,
        );
    }

    fn obs_lost(&mut self, i: usize, now: Instant) {
        let Some(o) = self.client.obs.get_mut(i) else {
            return;
        };
        o.state = ObsState::Idle {
            retry_at: now + o.backoff,
        };
        o.backoff = (o.backoff * 2).min(MAX_BACKOFF);
        o.last_seq = None;
        tracing::debug!(topic = %o.topic, "CoAP observation lost; re-registering later.");
    }

    pub(crate) fn client_timers(&mut self, now: Instant) {
        for i in 0..self.client.obs.len() {
            let due = match self.client.obs[i].state {
                ObsState::Idle { retry_at } => retry_at <= now,
                ObsState::Active { fresh_until } => fresh_until <= now,
                ObsState::Registering { until } => {
                    if until <= now {
                        self.obs_lost(i, now);
                    }
                    false
                }
            };
            if due {
                self.register_obs(i, now);
            }
        }
        for mi in 0..self.client.mounts.len() {
            let late = self.client.mounts[mi]
                .inflight
                .as_ref()
                .and_then(|p| p.waiting_until)
                .is_some_and(|t| t <= now);
            if late {
                self.finish_put(mi, false, now);
            }
        }
    }

    pub(crate) fn client_acked(&mut self, id: ReqId, now: Instant) {
        match id {
            ReqId::Put(mi) => {
                if let Some(p) = self
                    .client
                    .mounts
                    .get_mut(mi)
                    .and_then(|m| m.inflight.as_mut())
                {
                    p.waiting_until = Some(now + SEPARATE_WAIT);
                }
            }
            // Registering has a deadline; a fetch is replaced by the next notification.
            ReqId::Obs(_) | ReqId::Fetch(_) => {}
        }
    }

    pub(crate) fn client_failed(&mut self, id: ReqId, now: Instant) {
        match id {
            ReqId::Put(mi) => {
                tracing::warn!(
                    mount = mi,
                    "CoAP PUT to mounted device failed (no acknowledgement)."
                );
                self.finish_put(mi, false, now);
            }
            ReqId::Obs(i) => self.obs_lost(i, now),
            ReqId::Fetch(i) => {
                if let Some(o) = self.client.obs.get_mut(i) {
                    o.fetch = None;
                }
            }
        }
    }

    /// A response from `peer`; whether it belongs to one of our exchanges.
    pub(crate) fn client_response(&mut self, peer: SocketAddr, pkt: &Packet, now: Instant) -> bool {
        let tok = pkt.get_token();
        if tok.is_empty() {
            return false;
        }
        if self.fetch_response(peer, pkt, now) {
            return true;
        }
        let code = match pkt.header.code {
            MessageClass::Response(c) => c,
            _ => ResponseType::UnKnown,
        };
        if let Some(mi) = self
            .client
            .mounts
            .iter()
            .position(|m| m.addr == peer && m.inflight.as_ref().is_some_and(|p| p.token == tok))
        {
            self.forget_outgoing(ReqId::Put(mi));
            if code == ResponseType::Continue {
                let b1 = wire::opt_block(pkt, CoapOption::Block1);
                if let Some(put) = self.client.mounts[mi].inflight.as_mut() {
                    let sent_end = put.blk.offset() + put.blk.size();
                    let szx = b1.map_or(put.blk.szx, |b| b.szx.min(put.blk.szx));
                    let next = (sent_end / wire::block_size(szx)) as u32;
                    put.blk = Block {
                        num: next,
                        more: false,
                        szx,
                    };
                    if put.blk.offset() < put.payload.len() {
                        self.send_put_block(mi, now);
                        return true;
                    }
                }
                self.finish_put(mi, false, now);
            } else {
                let ok = matches!(pkt.header.code, MessageClass::Response(c) if !c.is_error());
                self.finish_put(mi, ok, now);
            }
            return true;
        }
        let Some(i) = self.client.obs_from(peer, |o| o.token == tok) else {
            return false;
        };
        self.forget_outgoing(ReqId::Obs(i));
        let ok = matches!(code, ResponseType::Content | ResponseType::Valid);
        if !ok {
            self.obs_lost(i, now);
            return true;
        }
        let seq = wire::opt_uint(pkt, CoapOption::Observe, 3).ok().flatten();
        let max_age = wire::opt_uint(pkt, CoapOption::MaxAge, 4)
            .ok()
            .flatten()
            .unwrap_or(60);
        let block2 = wire::opt_block(pkt, CoapOption::Block2);
        let more = block2.is_some_and(|b| b.more && b.num == 0);
        let cf = wire::opt_uint(pkt, CoapOption::ContentFormat, 2)
            .ok()
            .flatten();
        let format = cf.map_or(Format::Octets, |c| {
            mapping::format_of(c as u16).unwrap_or(Format::Octets)
        });
        let qos = if pkt.header.get_type() == MessageType::Confirmable {
            Qos::AtLeastOnce
        } else {
            Qos::AtMostOnce
        };
        let o = &mut self.client.obs[i];
        let fresh = match (seq, o.last_seq) {
            (Some(v2), Some((v1, t))) => {
                (v1 < v2 && v2 - v1 < (1 << 23))
                    || (v1 > v2 && v1 - v2 > (1 << 23))
                    || now.saturating_duration_since(t) > Duration::from_secs(128)
            }
            _ => true,
        };
        match seq {
            Some(v) => {
                o.backoff = MIN_BACKOFF;
                o.state = ObsState::Active {
                    fresh_until: now
                        + Duration::from_secs(u64::from(max_age))
                        + Duration::from_secs(2),
                };
                if fresh {
                    o.last_seq = Some((v, now));
                }
            }
            None => {
                // Not observable: poll at Max-Age (at least every minute).
                o.state = ObsState::Idle {
                    retry_at: now + Duration::from_secs(u64::from(max_age.clamp(1, 60))),
                };
            }
        }
        if !fresh || code == ResponseType::Valid {
            return true;
        }
        if more {
            let token = self.random().to_be_bytes().to_vec();
            let o = &mut self.client.obs[i];
            o.fetch = Some(Fetch {
                token,
                buf: pkt.payload.clone(),
                szx: block2.map_or(self.p.szx, |b| b.szx),
                etag: pkt.get_first_option(CoapOption::ETag).cloned(),
                format,
                qos,
            });
            self.send_fetch(i, now);
            return true;
        }
        let topic = o.topic.clone();
        let payload = Bytes::from(pkt.payload.clone());
        self.publish_observed(topic, payload, format, qos, peer, now);
        true
    }
}
