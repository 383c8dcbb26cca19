//! The broker's wire codec: MQTT 3.1.1 and 5 packets parsed and written by
//! rumqttc's public `mqttbytes` codecs, normalised into one version-neutral
//! representation ([`Inbound`] / [`Outbound`]) that the broker core works on.
//!
//! Before a frame is handed to rumqttc, the checks it does not make are made
//! here: reserved fixed-header flags, CONNECT flags, remaining length of
//! packets that must have none, topic names (UTF-8 without wildcards or NUL)
//! and topic filters. The decoder tells "need more bytes" (`Ok(None)`) from
//! "malformed" (`Err`), and never allocates from a length the peer declared
//! before the bytes are present (rumqttc frames only complete packets).

use std::sync::Arc;

use bytes::{Bytes, BytesMut};

pub use super::packet::*;
use rumqttc::mqttbytes::v4;
use rumqttc::v5::mqttbytes::v5;

const CONNECT: u8 = 1;

/// The packet type of a fixed header byte, with its reserved flags checked
/// ([MQTT-2.2.2-1], [MQTT-2.2.2-2]) and QoS 3 refused ([MQTT-3.3.1-4]).
fn check_first_byte(b: u8, version: Version) -> Result<u8, DecodeError> {
    let ty = b >> 4;
    let flags = b & 0x0f;
    let ok = match ty {
        3 => (flags >> 1) & 0b11 != 0b11,
        6 | 8 | 10 => flags == 0b0010,
        1 | 4 | 5 | 7 | 12 | 14 => flags == 0,
        15 if version == Version::V5 => flags == 0,
        // Server-to-client packets and type 0 are never valid from a client.
        _ => return Err(DecodeError::Protocol("packet type not valid from a client")),
    };
    if ok {
        Ok(ty)
    } else {
        Err(DecodeError::Malformed("reserved fixed header flags"))
    }
}

/// Parses the fixed header: `Ok(None)` when more bytes are needed, else
/// `(first byte, header length, remaining length)`.
fn fixed_header(buf: &[u8]) -> Result<Option<(u8, usize, usize)>, DecodeError> {
    let Some(&b) = buf.first() else {
        return Ok(None);
    };
    let mut len = 0usize;
    for i in 0..4 {
        let Some(&byte) = buf.get(1 + i) else {
            return Ok(None);
        };
        len |= usize::from(byte & 0x7f) << (7 * i);
        if byte & 0x80 == 0 {
            return Ok(Some((b, 2 + i, len)));
        }
    }
    Err(DecodeError::Malformed("remaining length over 4 bytes"))
}

/// Peeks a CONNECT at the start of `buf` and tells its protocol version:
/// `Ok(None)` while incomplete. Also checks the CONNECT flags rumqttc does
/// not ([MQTT-3.1.2-3], will QoS/retain without will, password without user
/// name on 3.1.1).
pub fn sniff_connect(buf: &[u8], max_packet: usize) -> Result<Option<Version>, DecodeError> {
    let Some((b, hlen, rlen)) = fixed_header(buf)? else {
        return Ok(None);
    };
    if b >> 4 != CONNECT {
        return Err(DecodeError::Protocol("first packet is not CONNECT"));
    }
    if b & 0x0f != 0 {
        return Err(DecodeError::Malformed("reserved fixed header flags"));
    }
    if rlen > max_packet {
        return Err(DecodeError::TooLarge);
    }
    if buf.len() < hlen + rlen {
        return Ok(None);
    }
    let body = &buf[hlen..hlen + rlen];
    if body.len() < 2 {
        return Err(DecodeError::Malformed("short CONNECT"));
    }
    let nlen = usize::from(u16::from_be_bytes([body[0], body[1]]));
    let (Some(name), Some(&level), Some(&flags)) = (
        body.get(2..2 + nlen),
        body.get(2 + nlen),
        body.get(3 + nlen),
    ) else {
        return Err(DecodeError::Malformed("short CONNECT"));
    };
    let version = match (name, level) {
        (b"MQTT", 4) => Version::V4,
        (b"MQTT", 5) => Version::V5,
        (b"MQTT" | b"MQIsdp", l) => return Err(DecodeError::UnsupportedVersion(l)),
        _ => return Err(DecodeError::Protocol("unknown protocol name")),
    };
    if flags & 0x01 != 0 {
        return Err(DecodeError::Malformed("reserved CONNECT flag set"));
    }
    let will = flags & 0x04 != 0;
    let will_qos = (flags >> 3) & 0b11;
    if will_qos == 3 || (!will && (will_qos != 0 || flags & 0x20 != 0)) {
        return Err(DecodeError::Malformed("bad will flags"));
    }
    if version == Version::V4 && flags & 0x40 != 0 && flags & 0x80 == 0 {
        return Err(DecodeError::Malformed("password without user name"));
    }
    Ok(Some(version))
}

/// Whether `t` is a valid topic name for PUBLISH ([MQTT-3.3.2-2], [MQTT-4.7.3-1]).
pub fn valid_topic_name(t: &str) -> bool {
    !t.is_empty() && t.len() <= 65_535 && !t.contains(['+', '#', '\0'])
}

/// Whether `f` is a valid topic filter ([MQTT-4.7.1-2], [MQTT-4.7.1-3]),
/// including `$share/GROUP/FILTER`.
pub fn valid_filter(f: &str) -> bool {
    let f = match f.strip_prefix("$share/") {
        Some(rest) => match rest.split_once('/') {
            Some((group, inner)) if !group.is_empty() && !group.contains(['+', '#']) => inner,
            _ => return false,
        },
        None => f,
    };
    if f.is_empty() || f.contains('\0') {
        return false;
    }
    let mut levels = f.split('/').peekable();
    while let Some(l) = levels.next() {
        if l == "#" {
            if levels.peek().is_some() {
                return false;
            }
        } else if l != "+" && l.contains(['+', '#']) {
            return false;
        }
    }
    true
}

fn qos_u8(q: rumqttc::mqttbytes::QoS) -> u8 {
    q as u8
}

fn qos5_u8(q: rumqttc::v5::mqttbytes::QoS) -> u8 {
    q as u8
}

/// Decodes one packet from the front of `buf` (consuming it) for a
/// connection speaking `version`. `Ok(None)`: need more bytes.
pub fn decode(
    buf: &mut BytesMut,
    version: Version,
    max_packet: usize,
) -> Result<Option<Inbound>, DecodeError> {
    let Some((b, hlen, rlen)) = fixed_header(buf)? else {
        return Ok(None);
    };
    let ty = check_first_byte(b, version)?;
    if rlen > max_packet {
        return Err(DecodeError::TooLarge);
    }
    if buf.len() < hlen + rlen {
        return Ok(None);
    }
    if ty == CONNECT {
        // Validate flags and the version before rumqttc sees it.
        match sniff_connect(&buf[..hlen + rlen], max_packet)? {
            Some(v) if v == version => {}
            _ => return Err(DecodeError::Protocol("CONNECT version mismatch")),
        }
    }
    if ty == 8 {
        check_subscribe_options(&buf[hlen..hlen + rlen], version)?;
    }
    // PINGREQ and (3.1.1) DISCONNECT have no body ([MQTT-3.12], [MQTT-3.14]).
    if (ty == 12 || (ty == 14 && version == Version::V4)) && rlen != 0 {
        return Err(DecodeError::Malformed("unexpected body"));
    }
    let inbound = match version {
        Version::V4 => decode4(buf, max_packet)?,
        Version::V5 => decode5(buf, max_packet)?,
    };
    validate(&inbound)?;
    Ok(Some(inbound))
}

/// A variable byte integer at the front of `b`: (value, bytes used).
fn varint(b: &[u8]) -> Option<(usize, usize)> {
    let mut v = 0usize;
    for i in 0..4 {
        let byte = *b.get(i)?;
        v |= usize::from(byte & 0x7f) << (7 * i);
        if byte & 0x80 == 0 {
            return Some((v, i + 1));
        }
    }
    None
}

/// Checks the option byte of every SUBSCRIBE filter: reserved bits zero
/// (3.1.1 [MQTT-3.8.3-4]; MQTT 5 bits 6-7), QoS and retain handling not 3.
fn check_subscribe_options(body: &[u8], version: Version) -> Result<(), DecodeError> {
    const BAD: DecodeError = DecodeError::Malformed("bad SUBSCRIBE options");
    let mut i = 2; // packet identifier
    if version == Version::V5 {
        let (plen, used) = body.get(i..).and_then(varint).ok_or(BAD)?;
        i += used + plen;
    }
    while i < body.len() {
        let len = match body.get(i..i + 2) {
            Some(l) => usize::from(u16::from_be_bytes([l[0], l[1]])),
            None => return Err(BAD),
        };
        i += 2 + len;
        let opts = *body.get(i).ok_or(BAD)?;
        i += 1;
        let ok = match version {
            Version::V4 => opts & 0xfc == 0,
            Version::V5 => opts & 0xc0 == 0 && (opts >> 4) & 0b11 != 0b11,
        };
        if !ok || opts & 0b11 == 0b11 {
            return Err(BAD);
        }
    }
    Ok(())
}

fn malformed(e: impl std::fmt::Debug) -> DecodeError {
    tracing::trace!(error = ?e, "Malformed MQTT packet.");
    DecodeError::Malformed("rejected by the packet codec")
}

fn decode4(buf: &mut BytesMut, max_packet: usize) -> Result<Inbound, DecodeError> {
    let p = v4::Packet::read(buf, max_packet).map_err(malformed)?;
    Ok(match p {
        v4::Packet::Connect(c) => Inbound::Connect(Box::new(ConnectReq {
            version: Version::V4,
            session_expiry: if c.clean_session { 0 } else { u32::MAX },
            client_id: c.client_id,
            clean_start: c.clean_session,
            keep_alive: c.keep_alive,
            will: c.last_will.map(|w| Will {
                publish: Publish {
                    topic: Arc::from(w.topic),
                    payload: w.message,
                    qos: qos_u8(w.qos),
                    retain: w.retain,
                    dup: false,
                    pkid: 0,
                    props: None,
                    topic_alias: None,
                    expires: None,
                },
                delay: 0,
            }),
            username: c.login.as_ref().map(|l| l.username.clone()),
            password: c.login.map(|l| l.password).filter(|p| !p.is_empty()),
            receive_max: u16::MAX,
            max_packet_size: None,
            auth_method: None,
        })),
        v4::Packet::Publish(p) => Inbound::Publish(Publish {
            topic: Arc::from(p.topic),
            payload: p.payload,
            qos: qos_u8(p.qos),
            retain: p.retain,
            dup: p.dup,
            pkid: p.pkid,
            props: None,
            topic_alias: None,
            expires: None,
        }),
        v4::Packet::PubAck(a) => Inbound::PubAck(a.pkid),
        v4::Packet::PubRec(a) => Inbound::PubRec(a.pkid, 0),
        v4::Packet::PubRel(a) => Inbound::PubRel(a.pkid),
        v4::Packet::PubComp(a) => Inbound::PubComp(a.pkid),
        v4::Packet::Subscribe(s) => Inbound::Subscribe {
            pkid: s.pkid,
            filters: s
                .filters
                .into_iter()
                .map(|f| SubReq {
                    filter: f.path,
                    qos: qos_u8(f.qos),
                    no_local: false,
                    retain_as_published: false,
                    retain_handling: 0,
                })
                .collect(),
            sub_id: None,
        },
        v4::Packet::Unsubscribe(u) => Inbound::Unsubscribe {
            pkid: u.pkid,
            filters: u.topics,
        },
        v4::Packet::PingReq => Inbound::PingReq,
        v4::Packet::Disconnect => Inbound::Disconnect(0, None),
        _ => return Err(DecodeError::Protocol("packet type not valid from a client")),
    })
}

fn pub_props5(p: v5::PublishProperties) -> PubProps {
    PubProps {
        payload_format: p.payload_format_indicator,
        message_expiry: p.message_expiry_interval,
        content_type: p.content_type,
        response_topic: p.response_topic,
        correlation: p.correlation_data,
        user: p.user_properties,
        sub_ids: Vec::new(),
    }
}

fn topic_from_bytes(b: Bytes) -> Result<Arc<str>, DecodeError> {
    std::str::from_utf8(&b)
        .map(Arc::from)
        .map_err(|_| DecodeError::Malformed("topic is not UTF-8"))
}

fn decode5(buf: &mut BytesMut, max_packet: usize) -> Result<Inbound, DecodeError> {
    let max = u32::try_from(max_packet).unwrap_or(u32::MAX);
    let p = v5::Packet::read(buf, Some(max)).map_err(malformed)?;
    Ok(match p {
        v5::Packet::Connect(c, will, login) => {
            let props = c.properties.unwrap_or_default();
            let will = match will {
                Some(w) => {
                    let wp = w.properties.unwrap_or(v5::LastWillProperties {
                        delay_interval: None,
                        payload_format_indicator: None,
                        message_expiry_interval: None,
                        content_type: None,
                        response_topic: None,
                        correlation_data: None,
                        user_properties: Vec::new(),
                    });
                    Some(Will {
                        publish: Publish {
                            topic: topic_from_bytes(w.topic)?,
                            payload: w.message,
                            qos: qos5_u8(w.qos),
                            retain: w.retain,
                            dup: false,
                            pkid: 0,
                            props: Some(Arc::new(PubProps {
                                payload_format: wp.payload_format_indicator,
                                message_expiry: wp.message_expiry_interval,
                                content_type: wp.content_type,
                                response_topic: wp.response_topic,
                                correlation: wp.correlation_data,
                                user: wp.user_properties,
                                sub_ids: Vec::new(),
                            })),
                            topic_alias: None,
                            expires: None,
                        },
                        delay: wp.delay_interval.unwrap_or(0),
                    })
                }
                None => None,
            };
            if props.receive_maximum == Some(0) || props.max_packet_size == Some(0) {
                return Err(DecodeError::Protocol("zero receive maximum or packet size"));
            }
            Inbound::Connect(Box::new(ConnectReq {
                version: Version::V5,
                client_id: c.client_id,
                clean_start: c.clean_start,
                keep_alive: c.keep_alive,
                will,
                username: login.as_ref().map(|l| l.username.clone()),
                password: login.map(|l| l.password).filter(|p| !p.is_empty()),
                session_expiry: props.session_expiry_interval.unwrap_or(0),
                receive_max: props.receive_maximum.unwrap_or(u16::MAX),
                max_packet_size: props.max_packet_size,
                auth_method: props.authentication_method,
            }))
        }
        v5::Packet::Publish(p) => {
            let alias = p.properties.as_ref().and_then(|pp| pp.topic_alias);
            // [MQTT-3.3.4-6]: not from a client.
            if p.properties
                .as_ref()
                .is_some_and(|pp| !pp.subscription_identifiers.is_empty())
            {
                return Err(DecodeError::Protocol("subscription identifier in PUBLISH"));
            }
            let props = p.properties.map(pub_props5);
            Inbound::Publish(Publish {
                topic: topic_from_bytes(p.topic)?,
                payload: p.payload,
                qos: qos5_u8(p.qos),
                retain: p.retain,
                dup: p.dup,
                pkid: p.pkid,
                props: props.map(Arc::new),
                topic_alias: alias,
                expires: None,
            })
        }
        v5::Packet::PubAck(a) => Inbound::PubAck(a.pkid),
        v5::Packet::PubRec(a) => Inbound::PubRec(a.pkid, pubrec_reason(a.reason)),
        v5::Packet::PubRel(a) => Inbound::PubRel(a.pkid),
        v5::Packet::PubComp(a) => Inbound::PubComp(a.pkid),
        v5::Packet::Subscribe(s) => Inbound::Subscribe {
            pkid: s.pkid,
            sub_id: s.properties.and_then(|p| p.id),
            filters: s
                .filters
                .into_iter()
                .map(|f| SubReq {
                    filter: f.path,
                    qos: qos5_u8(f.qos),
                    no_local: f.nolocal,
                    retain_as_published: f.preserve_retain,
                    retain_handling: match f.retain_forward_rule {
                        v5::RetainForwardRule::OnEverySubscribe => 0,
                        v5::RetainForwardRule::OnNewSubscribe => 1,
                        v5::RetainForwardRule::Never => 2,
                    },
                })
                .collect(),
        },
        v5::Packet::Unsubscribe(u) => Inbound::Unsubscribe {
            pkid: u.pkid,
            filters: u.filters,
        },
        v5::Packet::PingReq(_) => Inbound::PingReq,
        v5::Packet::Disconnect(d) => Inbound::Disconnect(
            d.reason_code as u8,
            d.properties.and_then(|p| p.session_expiry_interval),
        ),
        v5::Packet::Auth(_) => Inbound::Auth,
        _ => return Err(DecodeError::Protocol("packet type not valid from a client")),
    })
}

fn pubrec_reason(r: v5::PubRecReason) -> u8 {
    match r {
        v5::PubRecReason::Success => 0x00,
        v5::PubRecReason::NoMatchingSubscribers => 0x10,
        _ => 0x80,
    }
}

/// Checks what the codec accepted but MQTT forbids.
fn validate(p: &Inbound) -> Result<(), DecodeError> {
    match p {
        Inbound::Publish(p) => {
            let alias_only = p.topic.is_empty() && p.topic_alias.is_some();
            if !(alias_only || valid_topic_name(&p.topic)) {
                return Err(DecodeError::Malformed("invalid topic name"));
            }
            if p.qos == 0 && p.dup {
                return Err(DecodeError::Malformed("DUP set on QoS 0"));
            }
        }
        Inbound::Connect(c) => {
            if let Some(w) = &c.will
                && !valid_topic_name(&w.publish.topic)
            {
                return Err(DecodeError::Malformed("invalid will topic"));
            }
        }
        Inbound::Subscribe { pkid, filters, .. } if (*pkid == 0 || filters.is_empty()) => {
            return Err(DecodeError::Malformed("SUBSCRIBE without filters"));
        }
        Inbound::Unsubscribe { pkid, filters } if (*pkid == 0 || filters.is_empty()) => {
            return Err(DecodeError::Malformed("UNSUBSCRIBE without filters"));
        }
        Inbound::PubAck(id)
        | Inbound::PubRec(id, _)
        | Inbound::PubRel(id)
        | Inbound::PubComp(id)
            if *id == 0 =>
        {
            return Err(DecodeError::Malformed("packet identifier 0"));
        }
        _ => {}
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn connect(level: u8) -> Vec<u8> {
        let mut v = vec![0x10, 0, 0, 4, b'M', b'Q', b'T', b'T', level, 2, 0, 60];
        if level == 5 {
            v.push(0);
        }
        v.extend([0, 0]);
        v[1] = (v.len() - 2) as u8;
        v
    }

    fn decode_all(bytes: &[u8]) -> Result<Vec<Inbound>, DecodeError> {
        let mut b = BytesMut::from(bytes);
        let v = sniff_connect(&b, 1 << 20)?.unwrap();
        let mut out = Vec::new();
        while let Some(p) = decode(&mut b, v, 1 << 20)? {
            out.push(p);
        }
        Ok(out)
    }

    #[test]
    fn incomplete_is_not_malformed() {
        let mut c = connect(4);
        c.extend([0x30, 10, 0, 3, b'a']);
        for n in 0..c.len() {
            let mut b = BytesMut::from(&c[..n]);
            match sniff_connect(&b, 1 << 20) {
                Ok(None) => {}
                Ok(Some(v)) => {
                    let first = decode(&mut b, v, 1 << 20).unwrap();
                    assert!(first.is_some());
                    assert_eq!(decode(&mut b, v, 1 << 20), Ok(None));
                }
                Err(e) => panic!("{e} at {n}"),
            }
        }
    }

    #[test]
    fn subscribe_options_checked() {
        let mut ok = connect(4);
        ok.extend([0x82, 6, 0, 1, 0, 1, b'a', 1]);
        assert_eq!(decode_all(&ok).unwrap().len(), 2);
        let mut bad = connect(4);
        bad.extend([0x82, 6, 0, 1, 0, 1, b'a', 0x05]);
        assert!(decode_all(&bad).is_err());
        let mut v5 = connect(5);
        v5.extend([0x82, 7, 0, 1, 0, 0, 1, b'a', 0x2d]);
        let ps = decode_all(&v5).unwrap();
        let Inbound::Subscribe { filters, .. } = &ps[1] else {
            panic!()
        };
        assert!(filters[0].no_local && filters[0].retain_as_published);
        assert_eq!((filters[0].qos, filters[0].retain_handling), (1, 2));
        let mut v5bad = connect(5);
        v5bad.extend([0x82, 7, 0, 1, 0, 0, 1, b'a', 0x31]);
        assert!(decode_all(&v5bad).is_err());
    }

    #[test]
    fn topics_and_filters() {
        assert!(valid_topic_name("a/b") && valid_topic_name("/") && valid_topic_name("$SYS/x"));
        assert!(!valid_topic_name("a/+") && !valid_topic_name("#") && !valid_topic_name(""));
        assert!(!valid_topic_name("a\0"));
        for f in ["#", "+", "a/+/b", "a/#", "+/+", "$share/g/a/#", "a//b"] {
            assert!(valid_filter(f), "{f}");
        }
        for f in [
            "a/#/b",
            "a+",
            "a/b#",
            "",
            "$share/g",
            "$share//a",
            "$share/g+/a",
        ] {
            assert!(!valid_filter(f), "{f}");
        }
    }

    #[test]
    fn fixed_header_rules() {
        // PUBREL with flags 0 is malformed; PUBLISH with QoS 3 too.
        let mut c = connect(4);
        c.extend([0x60, 2, 0, 1]);
        assert!(decode_all(&c).is_err());
        let mut c = connect(4);
        c.extend([0x36, 4, 0, 1, b'a', 0]);
        assert!(decode_all(&c).is_err());
        // DUP on QoS 0.
        let mut c = connect(4);
        c.extend([0x38, 3, 0, 1, b'a']);
        assert!(decode_all(&c).is_err());
        // A server-to-client packet from a client.
        let mut c = connect(4);
        c.extend([0x20, 2, 0, 0]);
        assert!(decode_all(&c).is_err());
        // Too large is told apart.
        let mut b = BytesMut::from(&[0x30u8, 0xff, 0xff, 0x7f][..]);
        assert_eq!(
            decode(&mut b, Version::V4, 1000),
            Err(DecodeError::TooLarge)
        );
    }
}
