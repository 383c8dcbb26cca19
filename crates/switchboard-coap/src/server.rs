//! Request handling: every bridge topic is a resource (GET/PUT/POST/DELETE),
//! plus `/.well-known/core` (RFC 6690). Responses are piggybacked on the ACK
//! of a CON request, or sent NON for a NON request.

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::time::Instant;

use bytes::Bytes;
use coap_lite::{CoapOption, MessageClass, MessageType, Packet, RequestType, ResponseType};
use switchboard_model::{Format, Message, Qos, Topic};

use crate::core::{Core, Event, Store};
use crate::mapping::{self, PathError};
use crate::observe::fill_content;
use crate::upload::Step;
use crate::wire::{self, Block, OptionProblem};

/// The resource type advertised in `/.well-known/core`.
pub const RESOURCE_TYPE: &str = "switchboard.topic";

impl Core {
    pub(crate) fn handle_request(
        &mut self,
        peer: SocketAddr,
        req: &Packet,
        store: &dyn Store,
        now: Instant,
    ) -> Option<Packet> {
        let non_mid = if req.header.get_type() == MessageType::Confirmable {
            0
        } else {
            self.mid()
        };
        let err = |code| Some(wire::response_to(req, code, non_mid));
        match wire::check_options(req) {
            Ok(()) => {}
            Err(OptionProblem::UnknownCritical(_)) => return err(ResponseType::BadOption),
            Err(OptionProblem::Malformed(_)) => return err(ResponseType::BadRequest),
            Err(OptionProblem::Proxy) => return err(ResponseType::ProxyingNotSupported),
        }
        let method = match req.header.code {
            MessageClass::Request(
                m @ (RequestType::Get | RequestType::Put | RequestType::Post | RequestType::Delete),
            ) => m,
            _ => return err(ResponseType::MethodNotAllowed),
        };
        let segs: Vec<&[u8]> = req
            .get_option(CoapOption::UriPath)
            .map(|l| l.iter().map(Vec::as_slice).collect())
            .unwrap_or_default();
        if segs.len() == 2 && segs[0] == b".well-known" && segs[1] == b"core" {
            if method != RequestType::Get {
                return err(ResponseType::MethodNotAllowed);
            }
            return Some(self.well_known(req, store, non_mid));
        }
        let topic = match mapping::topic_of_path(segs) {
            Ok(t) => t,
            Err(PathError::Empty) => return err(ResponseType::NotFound),
            Err(PathError::Bad) => return err(ResponseType::BadRequest),
        };
        Some(match method {
            RequestType::Get => self.get(peer, req, &topic, store, non_mid, now),
            RequestType::Delete => {
                self.push_event(Event::Forget {
                    topic: topic.clone(),
                });
                self.end_observations(&topic);
                wire::response_to(req, ResponseType::Deleted, non_mid)
            }
            _ => self.put(peer, req, method, topic, store, non_mid, now),
        })
    }

    fn get(
        &mut self,
        peer: SocketAddr,
        req: &Packet,
        topic: &Topic,
        store: &dyn Store,
        non_mid: u16,
        now: Instant,
    ) -> Packet {
        let mut r = wire::response_to(req, ResponseType::Content, non_mid);
        let (Ok(obs), Ok(accept)) = (
            wire::opt_uint(req, CoapOption::Observe, 3),
            wire::opt_uint(req, CoapOption::Accept, 2),
        ) else {
            r.header.code = MessageClass::Response(ResponseType::BadRequest);
            return r;
        };
        let key = (peer, req.get_token().to_vec());
        let blk = wire::opt_block(req, CoapOption::Block2).unwrap_or(Block {
            num: 0,
            more: false,
            szx: self.p.szx,
        });
        let blk = Block {
            num: blk.num,
            more: false,
            szx: blk.szx.min(self.p.szx),
        };
        let Some(msg) = store.latest(topic) else {
            self.observers.remove(&key);
            r.header.code = MessageClass::Response(ResponseType::NotFound);
            return r;
        };
        let cf = mapping::content_format(&msg.format);
        if accept.is_some_and(|a| Some(a as u16) != cf) {
            r.header.code = MessageClass::Response(ResponseType::NotAcceptable);
            return r;
        }
        match obs {
            Some(0) if blk.num == 0 && self.register(key.clone(), topic, blk.szx, now) => {
                let seq = self.observers.next_seq();
                r.add_option(CoapOption::Observe, wire::enc_uint(seq));
            }
            Some(1) => {
                self.observers.remove(&key);
            }
            _ => {}
        }
        let tag = mapping::etag(&msg.payload, cf);
        let valid = blk.num == 0
            && req
                .get_option(CoapOption::ETag)
                .is_some_and(|l| l.iter().any(|v| v.as_slice() == tag));
        if valid {
            r.header.code = MessageClass::Response(ResponseType::Valid);
            r.add_option(CoapOption::ETag, tag.to_vec());
            r.add_option(CoapOption::MaxAge, wire::enc_uint(self.p.max_age));
            return r;
        }
        let force = req.get_first_option(CoapOption::Block2).is_some();
        if !fill_content(
            &mut r,
            &msg.payload,
            &msg.format,
            blk,
            self.p.max_age,
            force,
        ) {
            let mut e = wire::response_to(req, ResponseType::BadOption, non_mid);
            e.header.message_id = r.header.message_id;
            return e;
        }
        r
    }

    #[allow(clippy::too_many_arguments)]
    fn put(
        &mut self,
        peer: SocketAddr,
        req: &Packet,
        method: RequestType,
        topic: Topic,
        store: &dyn Store,
        non_mid: u16,
        now: Instant,
    ) -> Packet {
        let mut r = wire::response_to(req, ResponseType::Changed, non_mid);
        let set = |r: &mut Packet, c| r.header.code = MessageClass::Response(c);
        let Ok(cf) = wire::opt_uint(req, CoapOption::ContentFormat, 2) else {
            set(&mut r, ResponseType::BadRequest);
            return r;
        };
        let format = match cf {
            None => Format::Octets,
            Some(n) => match mapping::format_of(n as u16) {
                Some(f) => f,
                None => {
                    set(&mut r, ResponseType::UnsupportedContentFormat);
                    return r;
                }
            },
        };
        let if_none = req.get_first_option(CoapOption::IfNoneMatch).is_some();
        let if_match = req.get_option(CoapOption::IfMatch);
        if if_none || if_match.is_some() {
            let cur = store.latest(&topic);
            let ok = match (&cur, if_match) {
                (Some(_), _) if if_none => false,
                (None, Some(_)) => false,
                (Some(m), Some(tags)) => {
                    let tag = mapping::etag(&m.payload, mapping::content_format(&m.format));
                    tags.iter().any(|t| t.is_empty() || t.as_slice() == tag)
                }
                _ => true,
            };
            if !ok {
                set(&mut r, ResponseType::PreconditionFailed);
                return r;
            }
        }
        let max = self.p.max_payload;
        let too_large = |r: &mut Packet| {
            r.header.code = MessageClass::Response(ResponseType::RequestEntityTooLarge);
            r.add_option(
                CoapOption::Size1,
                wire::enc_uint(u32::try_from(max).unwrap_or(u32::MAX)),
            );
        };
        let body = if let Some(b1) = wire::opt_block(req, CoapOption::Block1) {
            let Ok(size1) = wire::opt_uint(req, CoapOption::Size1, 4) else {
                set(&mut r, ResponseType::BadRequest);
                return r;
            };
            let step = self.uploads.feed(
                peer,
                &topic,
                b1,
                &req.payload,
                size1,
                max,
                self.p.max_uploads,
                now,
            );
            match step {
                Step::Continue(b) => {
                    set(&mut r, ResponseType::Continue);
                    r.add_option(CoapOption::Block1, b.encode());
                    return r;
                }
                Step::Done(buf) => {
                    r.add_option(CoapOption::Block1, b1.encode());
                    buf
                }
                Step::Incomplete => {
                    set(&mut r, ResponseType::RequestEntityIncomplete);
                    return r;
                }
                Step::TooLarge => {
                    too_large(&mut r);
                    return r;
                }
                Step::Bad => {
                    set(&mut r, ResponseType::BadRequest);
                    return r;
                }
            }
        } else {
            if req.payload.len() > max {
                too_large(&mut r);
                return r;
            }
            req.payload.clone()
        };
        if method == RequestType::Post {
            set(&mut r, ResponseType::Created);
        }
        let qos = if req.header.get_type() == MessageType::Confirmable {
            Qos::AtLeastOnce
        } else {
            Qos::AtMostOnce
        };
        let payload = Bytes::from(body);
        let msg = Message::new("coap", topic.clone(), payload.clone()).with_format(format.clone());
        let event = Event::Publish {
            topic,
            payload,
            format,
            qos,
            peer,
            retain: method == RequestType::Put,
        };
        if self.events_full() {
            // The adapter is behind (the router is back-pressuring it).
            let con = req.header.get_type() == MessageType::Confirmable;
            if con && self.can_defer() {
                // Acknowledge now, answer when the publish is taken: a
                // separate response (RFC 7252 5.2.2), a CON with the token.
                r.header.set_type(MessageType::Confirmable);
                self.stats.deferred += 1;
                self.deferred.push_back(crate::core::Deferred {
                    peer,
                    event,
                    response: r,
                    notify: (msg, qos),
                });
                let mut ack = Packet::new();
                ack.header.set_type(MessageType::Acknowledgement);
                ack.header.code = MessageClass::Empty;
                ack.header.message_id = req.header.message_id;
                return ack;
            }
            set(&mut r, ResponseType::ServiceUnavailable);
            r.add_option(CoapOption::MaxAge, wire::enc_uint(1));
            return r;
        }
        self.push_event(event);
        self.notify(&msg, qos, now);
        r
    }

    fn well_known(&mut self, req: &Packet, store: &dyn Store, non_mid: u16) -> Packet {
        let mut r = wire::response_to(req, ResponseType::Content, non_mid);
        let queries: Vec<(String, String)> = req
            .get_option(CoapOption::UriQuery)
            .map(|l| {
                l.iter()
                    .map(|q| {
                        let q = String::from_utf8_lossy(q);
                        let (k, v) = q.split_once('=').unwrap_or((&q, ""));
                        (k.to_owned(), v.trim_matches('"').to_owned())
                    })
                    .collect()
            })
            .unwrap_or_default();
        let mut topics = store.topics();
        topics.sort_by(|a, b| a.0.cmp(&b.0));
        let mut out = String::new();
        for (t, f) in topics {
            let href = format!("/{}", encode_path(t.as_str()));
            let ct = mapping::content_format(&f);
            let ok = queries.iter().all(|(k, v)| match k.as_str() {
                "href" => glob(v, &href),
                "rt" => glob(v, RESOURCE_TYPE),
                "ct" => ct.is_some_and(|c| glob(v, &c.to_string())),
                "obs" => true,
                _ => false,
            });
            if !ok {
                continue;
            }
            if !out.is_empty() {
                out.push(',');
            }
            let _ = write!(out, "<{href}>;rt=\"{RESOURCE_TYPE}\";obs");
            if let Some(ct) = ct {
                let _ = write!(out, ";ct={ct}");
            }
        }
        let format = Format::Mime("application/link-format".into());
        let blk = wire::opt_block(req, CoapOption::Block2).unwrap_or(Block {
            num: 0,
            more: false,
            szx: self.p.szx,
        });
        let blk = Block {
            szx: blk.szx.min(self.p.szx),
            ..blk
        };
        let force = req.get_first_option(CoapOption::Block2).is_some();
        if !fill_content(&mut r, out.as_bytes(), &format, blk, self.p.max_age, force) {
            r = wire::response_to(req, ResponseType::BadOption, non_mid);
        }
        r
    }
}

/// RFC 6690 filter: exact, or prefix when the value ends with `*`.
fn glob(pattern: &str, value: &str) -> bool {
    match pattern.strip_suffix('*') {
        Some(p) => value.starts_with(p),
        None => pattern == value,
    }
}

/// Percent-encodes what may not appear in a link's URI-reference.
fn encode_path(t: &str) -> String {
    let mut s = String::with_capacity(t.len());
    for b in t.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~/!$&'()*+=:@".contains(&b) && b != b',' {
            s.push(b as char);
        } else {
            let _ = write!(s, "%{b:02X}");
        }
    }
    s
}
