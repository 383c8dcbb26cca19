//! Observe (RFC 7641), server side: registrations keyed by peer and token,
//! sequence numbers, CON/NON choice, one CON in flight per observer with the
//! newest value waiting behind it, removal on RST or unacknowledged CON.

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use coap_lite::{CoapOption, MessageClass, MessageType, Packet, ResponseType};
use switchboard_model::{Format, Message, Qos, Topic};

use crate::core::{Core, Owner};
use crate::mapping;
use crate::wire::{self, Block};

/// An observer: the client's address and the token of its registration.
pub(crate) type ObsKey = (SocketAddr, Vec<u8>);

/// A notification is sent CON at least this often (RFC 7641 section 4.5).
const CON_EVERY: u32 = 100;
const CON_AT_LEAST_EVERY: Duration = Duration::from_secs(24 * 3600);

#[derive(Debug)]
pub(crate) struct Observer {
    topic: Topic,
    szx: u8,
    since_con: u32,
    last_con: Instant,
    inflight: bool,
    pending: Option<(Message, bool)>,
    last_non_mid: Option<u16>,
}

#[derive(Debug, Default)]
pub(crate) struct Observers {
    map: HashMap<ObsKey, Observer>,
    by_topic: HashMap<Topic, HashSet<ObsKey>>,
    seq: u32,
}

impl Observers {
    pub(crate) fn len(&self) -> usize {
        self.map.len()
    }

    pub(crate) fn remove(&mut self, key: &ObsKey) -> bool {
        let Some(o) = self.map.remove(key) else {
            return false;
        };
        if let Some(set) = self.by_topic.get_mut(&o.topic) {
            set.remove(key);
            if set.is_empty() {
                self.by_topic.remove(&o.topic);
            }
        }
        true
    }

    pub(crate) fn remove_by_non_mid(&mut self, peer: SocketAddr, mid: u16) -> bool {
        let key = self
            .map
            .iter()
            .find(|(k, o)| k.0 == peer && o.last_non_mid == Some(mid))
            .map(|(k, _)| k.clone());
        key.is_some_and(|k| self.remove(&k))
    }

    pub(crate) fn next_seq(&mut self) -> u32 {
        self.seq = (self.seq + 1) & 0x00ff_ffff;
        self.seq
    }

    pub(crate) fn count(&self, topic: &Topic) -> usize {
        self.by_topic.get(topic).map_or(0, HashSet::len)
    }

    pub(crate) fn keys_of(&self, topic: &Topic) -> Vec<ObsKey> {
        self.by_topic
            .get(topic)
            .map(|s| s.iter().cloned().collect())
            .unwrap_or_default()
    }
}

/// Fills a 2.05 response (or notification) for `msg`, sliced to block `blk`
/// when the value is larger than one block. `None` when `blk` is past the end.
pub(crate) fn fill_content(
    r: &mut Packet,
    payload: &[u8],
    format: &Format,
    blk: Block,
    max_age: u32,
    force_block: bool,
) -> bool {
    let cf = mapping::content_format(format);
    let tag = mapping::etag(payload, cf);
    r.header.code = MessageClass::Response(ResponseType::Content);
    if let Some(cf) = cf {
        r.add_option(CoapOption::ContentFormat, wire::enc_uint(u32::from(cf)));
    }
    r.add_option(CoapOption::ETag, tag.to_vec());
    r.add_option(CoapOption::MaxAge, wire::enc_uint(max_age));
    let len = payload.len();
    let size = blk.size();
    if len <= size && blk.num == 0 && !force_block {
        r.payload = payload.to_vec();
        return true;
    }
    let off = blk.offset();
    if off >= len && !(off == 0 && len == 0) {
        return false;
    }
    let end = (off + size).min(len);
    r.payload = payload[off..end].to_vec();
    let b = Block {
        num: blk.num,
        more: end < len,
        szx: blk.szx,
    };
    r.add_option(CoapOption::Block2, b.encode());
    r.add_option(
        CoapOption::Size2,
        wire::enc_uint(u32::try_from(len).unwrap_or(u32::MAX)),
    );
    true
}

impl Core {
    /// Registers `(peer, token)` for `topic`; false when a limit refuses it.
    pub(crate) fn register(&mut self, key: ObsKey, topic: &Topic, szx: u8, now: Instant) -> bool {
        if let Some(o) = self.observers.map.get_mut(&key) {
            if &o.topic == topic {
                o.szx = szx;
                return true;
            }
            self.observers.remove(&key);
        }
        if self.observers.len() >= self.p.max_observers
            || self.observers.count(topic) >= self.p.max_observers_per_resource
        {
            self.stats.observers_refused += 1;
            return false;
        }
        self.observers
            .by_topic
            .entry(topic.clone())
            .or_default()
            .insert(key.clone());
        self.observers.map.insert(
            key,
            Observer {
                topic: topic.clone(),
                szx,
                since_con: 0,
                last_con: now,
                inflight: false,
                pending: None,
                last_non_mid: None,
            },
        );
        true
    }

    /// Notifies every observer of `msg.topic` of a new value; `qos` >= 1 makes
    /// the notifications confirmable.
    pub fn notify(&mut self, msg: &Message, qos: Qos, now: Instant) {
        for key in self.observers.keys_of(&msg.topic) {
            let Some(o) = self.observers.map.get_mut(&key) else {
                continue;
            };
            let con = qos >= Qos::AtLeastOnce
                || o.since_con + 1 >= CON_EVERY
                || now.saturating_duration_since(o.last_con) >= CON_AT_LEAST_EVERY;
            if o.inflight {
                // NSTART 1: the newest value waits behind the CON in flight.
                let was_con = o.pending.as_ref().is_some_and(|p| p.1);
                o.pending = Some((msg.clone(), con || was_con));
                continue;
            }
            self.send_notification(&key, msg, con, now);
        }
    }

    fn send_notification(&mut self, key: &ObsKey, msg: &Message, con: bool, now: Instant) {
        let mid = self.mid();
        let seq = self.observers.next_seq();
        let Some(o) = self.observers.map.get_mut(key) else {
            return;
        };
        let mut r = Packet::new();
        r.header.set_type(if con {
            MessageType::Confirmable
        } else {
            MessageType::NonConfirmable
        });
        r.header.message_id = mid;
        r.set_token(key.1.clone());
        r.add_option(CoapOption::Observe, wire::enc_uint(seq));
        let blk = Block {
            num: 0,
            more: false,
            szx: o.szx,
        };
        fill_content(
            &mut r,
            &msg.payload,
            &msg.format,
            blk,
            self.p.max_age,
            false,
        );
        let bytes = wire::bytes(&r);
        if con {
            o.inflight = true;
            o.since_con = 0;
            o.last_con = now;
            self.send_con(key.0, mid, bytes, Owner::Observer(key.clone()), now);
        } else {
            o.since_con += 1;
            o.last_non_mid = Some(mid);
            self.send(key.0, bytes);
        }
    }

    pub(crate) fn observer_acked(&mut self, key: &ObsKey, now: Instant) {
        let Some(o) = self.observers.map.get_mut(key) else {
            return;
        };
        o.inflight = false;
        if let Some((msg, con)) = o.pending.take() {
            self.send_notification(key, &msg, con, now);
        }
    }

    /// Ends every observation of `topic` with a 4.04 notification (DELETE).
    pub(crate) fn end_observations(&mut self, topic: &Topic) {
        for key in self.observers.keys_of(topic) {
            let mid = self.mid();
            let mut r = Packet::new();
            r.header.set_type(MessageType::NonConfirmable);
            r.header.message_id = mid;
            r.header.code = MessageClass::Response(ResponseType::NotFound);
            r.set_token(key.1.clone());
            self.send(key.0, wire::bytes(&r));
            self.observers.remove(&key);
            self.outgoing
                .retain(|_, o| o.owner != Owner::Observer(key.clone()));
        }
    }
}
