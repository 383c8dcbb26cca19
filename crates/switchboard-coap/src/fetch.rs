//! Mount client, Block2 side (RFC 7959 section 3.4): a notification larger
//! than one block is completed with Block2 GETs before it is published; and
//! publishing observed values (also to our own observers of the topic).

use std::net::SocketAddr;
use std::time::Instant;

use bytes::Bytes;
use coap_lite::{CoapOption, MessageClass, MessageType, Packet, RequestType, ResponseType};
use switchboard_model::{Format, Qos, Topic};

use crate::client::ReqId;
use crate::core::{Core, Event, Owner};
use crate::wire::{self, Block};

/// The rest of a notification larger than one block, fetched with Block2
/// GETs (RFC 7959 section 3.4).
#[derive(Debug)]
pub(crate) struct Fetch {
    pub(crate) token: Vec<u8>,
    pub(crate) buf: Vec<u8>,
    pub(crate) szx: u8,
    pub(crate) etag: Option<Vec<u8>>,
    pub(crate) format: Format,
    pub(crate) qos: Qos,
}

/// Largest notification body reassembled from a device.
const MAX_FETCH: usize = 1 << 20;

impl Core {
    /// A value observed on a device: published, and notified to our own
    /// observers of the mounted topic (local delivery).
    pub(crate) fn publish_observed(
        &mut self,
        topic: Topic,
        payload: Bytes,
        format: Format,
        qos: Qos,
        peer: SocketAddr,
        now: Instant,
    ) {
        let msg = switchboard_model::Message::new("coap", topic.clone(), payload.clone())
            .with_format(format.clone());
        self.push_event(Event::Publish {
            topic,
            payload,
            format,
            qos,
            peer,
            retain: true,
        });
        self.notify(&msg, qos, now);
    }

    pub(crate) fn send_fetch(&mut self, i: usize, now: Instant) {
        let mid = self.mid();
        let Some(o) = self.client.obs.get(i) else {
            return;
        };
        let Some(m) = self.client.mounts.get(o.mount) else {
            return;
        };
        let Some(f) = o.fetch.as_ref() else { return };
        let mut r = Packet::new();
        r.header.set_type(MessageType::Confirmable);
        r.header.code = MessageClass::Request(RequestType::Get);
        r.header.message_id = mid;
        r.set_token(f.token.clone());
        for s in m.base.iter().chain(o.path.iter()) {
            r.add_option(CoapOption::UriPath, s.as_bytes().to_vec());
        }
        let num = (f.buf.len() / wire::block_size(f.szx)) as u32;
        let blk = Block {
            num,
            more: false,
            szx: f.szx,
        };
        r.add_option(CoapOption::Block2, blk.encode());
        let addr = m.addr;
        self.send_con(
            addr,
            mid,
            wire::bytes(&r),
            Owner::Client(ReqId::Fetch(i)),
            now,
        );
    }

    /// A response to a Block2 fetch; whether it was one.
    pub(crate) fn fetch_response(&mut self, peer: SocketAddr, pkt: &Packet, now: Instant) -> bool {
        let tok = pkt.get_token();
        let Some(i) = self
            .client
            .obs_from(peer, |o| o.fetch.as_ref().is_some_and(|f| f.token == tok))
        else {
            return false;
        };
        self.forget_outgoing(ReqId::Fetch(i));
        let o = &mut self.client.obs[i];
        let Some(mut f) = o.fetch.take() else {
            return true;
        };
        let ok = matches!(
            pkt.header.code,
            MessageClass::Response(ResponseType::Content)
        );
        let blk = wire::opt_block(pkt, CoapOption::Block2);
        let etag = pkt.get_first_option(CoapOption::ETag).cloned();
        let expected = blk.is_some_and(|b| b.offset() == f.buf.len());
        if !ok || !expected || etag != f.etag || f.buf.len() + pkt.payload.len() > MAX_FETCH {
            // Changed or failed mid-transfer: the next notification starts over.
            return true;
        }
        f.buf.extend_from_slice(&pkt.payload);
        if blk.is_some_and(|b| b.more) {
            if let Some(b) = blk {
                f.szx = b.szx.min(f.szx);
            }
            o.fetch = Some(f);
            self.send_fetch(i, now);
            return true;
        }
        let topic = o.topic.clone();
        self.publish_observed(topic, Bytes::from(f.buf), f.format, f.qos, peer, now);
        true
    }
}
