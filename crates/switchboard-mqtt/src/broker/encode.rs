//! Writing [`Outbound`] packets in the connection's protocol version through
//! rumqttc's `mqttbytes` writers. MQTT 5 reason codes are the broker's common
//! language; they are mapped to 3.1.1 return codes where 3.1.1 has one.

use bytes::BytesMut;
use rumqttc::mqttbytes::v4;
use rumqttc::v5::mqttbytes::v5;

use super::codec::{Outbound, Publish, Version};
use crate::wire::{qos4, qos5};

/// Appends `p` to `out`. Packets that do not exist in 3.1.1 (DISCONNECT from
/// the server) are skipped there. Returns whether bytes were written.
pub fn encode(p: &Outbound, version: Version, out: &mut BytesMut) -> bool {
    let r = match version {
        Version::V4 => encode4(p, out).map_err(|e| e.to_string()),
        Version::V5 => encode5(p, out).map_err(|e| e.to_string()),
    };
    match r {
        Ok(written) => written,
        Err(e) => {
            tracing::warn!(error = %e, "Cannot encode an MQTT packet.");
            false
        }
    }
}

/// A PUBLISH with no properties, written without rumqttc's packet value
/// (see [`crate::wire`]); whether it was.
fn plain(p: &Outbound, v5: bool, out: &mut BytesMut) -> bool {
    match p {
        Outbound::Publish(pb) if !v5 || pb.props.is_none() => {
            let plain = crate::wire::PlainPublish {
                topic: &pb.topic,
                payload: &pb.payload,
                qos: pb.qos,
                retain: pb.retain,
                dup: pb.dup,
                pkid: pb.pkid,
            };
            crate::wire::write_plain(out, &plain, v5).is_some()
        }
        _ => false,
    }
}

fn encode4(p: &Outbound, out: &mut BytesMut) -> Result<bool, rumqttc::mqttbytes::Error> {
    if plain(p, false, out) {
        return Ok(true);
    }
    let pkt = match p {
        Outbound::ConnAck {
            code,
            session_present,
            ..
        } => v4::Packet::ConnAck(v4::ConnAck::new(
            match code {
                0 => v4::ConnectReturnCode::Success,
                0x84 | 0x01 => v4::ConnectReturnCode::RefusedProtocolVersion,
                0x85 => v4::ConnectReturnCode::BadClientId,
                0x86 => v4::ConnectReturnCode::BadUserNamePassword,
                0x87 => v4::ConnectReturnCode::NotAuthorized,
                _ => v4::ConnectReturnCode::ServiceUnavailable,
            },
            *session_present && *code == 0,
        )),
        Outbound::Publish(pb) => v4::Packet::Publish(v4::Publish {
            dup: pb.dup,
            qos: qos4(pb.qos),
            retain: pb.retain,
            topic: pb.topic.to_string(),
            pkid: pb.pkid,
            payload: pb.payload.clone(),
        }),
        Outbound::PubAck(id, _) => v4::Packet::PubAck(v4::PubAck::new(*id)),
        Outbound::PubRec(id, _) => v4::Packet::PubRec(v4::PubRec::new(*id)),
        Outbound::PubRel(id) => v4::Packet::PubRel(v4::PubRel::new(*id)),
        Outbound::PubComp(id, _) => v4::Packet::PubComp(v4::PubComp::new(*id)),
        Outbound::SubAck(id, codes) => v4::Packet::SubAck(v4::SubAck::new(
            *id,
            codes
                .iter()
                .map(|c| match c {
                    0..=2 => v4::SubscribeReasonCode::Success(qos4(*c)),
                    _ => v4::SubscribeReasonCode::Failure,
                })
                .collect(),
        )),
        Outbound::UnsubAck(id, _) => v4::Packet::UnsubAck(v4::UnsubAck::new(*id)),
        Outbound::PingResp => v4::Packet::PingResp,
        Outbound::Disconnect(_) => return Ok(false),
    };
    pkt.write(out, usize::MAX)?;
    Ok(true)
}

fn connack5(code: u8) -> v5::ConnectReturnCode {
    use v5::ConnectReturnCode as C;
    match code {
        0x00 => C::Success,
        0x81 => C::MalformedPacket,
        0x82 => C::ProtocolError,
        0x84 => C::UnsupportedProtocolVersion,
        0x85 => C::ClientIdentifierNotValid,
        0x86 => C::BadUserNamePassword,
        0x87 => C::NotAuthorized,
        0x88 => C::ServerUnavailable,
        0x89 => C::ServerBusy,
        0x8C => C::BadAuthenticationMethod,
        0x95 => C::PacketTooLarge,
        0x97 => C::QuotaExceeded,
        _ => C::UnspecifiedError,
    }
}

fn disconnect5(code: u8) -> v5::DisconnectReasonCode {
    use v5::DisconnectReasonCode as D;
    match code {
        0x00 => D::NormalDisconnection,
        0x81 => D::MalformedPacket,
        0x82 => D::ProtocolError,
        0x87 => D::NotAuthorized,
        0x89 => D::ServerBusy,
        0x8B => D::ServerShuttingDown,
        0x8D => D::KeepAliveTimeout,
        0x8E => D::SessionTakenOver,
        0x8F => D::TopicFilterInvalid,
        0x90 => D::TopicNameInvalid,
        0x93 => D::ReceiveMaximumExceeded,
        0x94 => D::TopicAliasInvalid,
        0x95 => D::PacketTooLarge,
        0x97 => D::QuotaExceeded,
        0x9B => D::QoSNotSupported,
        0xA1 => D::SubscriptionIdentifiersNotSupported,
        _ => D::UnspecifiedError,
    }
}

fn puback5(code: u8) -> v5::PubAckReason {
    use v5::PubAckReason as R;
    match code {
        0x00 => R::Success,
        0x10 => R::NoMatchingSubscribers,
        0x83 => R::ImplementationSpecificError,
        0x87 => R::NotAuthorized,
        0x90 => R::TopicNameInvalid,
        0x91 => R::PacketIdentifierInUse,
        0x97 => R::QuotaExceeded,
        0x99 => R::PayloadFormatInvalid,
        _ => R::UnspecifiedError,
    }
}

fn pubrec5(code: u8) -> v5::PubRecReason {
    use v5::PubRecReason as R;
    match code {
        0x00 => R::Success,
        0x10 => R::NoMatchingSubscribers,
        0x83 => R::ImplementationSpecificError,
        0x87 => R::NotAuthorized,
        0x90 => R::TopicNameInvalid,
        0x91 => R::PacketIdentifierInUse,
        0x97 => R::QuotaExceeded,
        0x99 => R::PayloadFormatInvalid,
        _ => R::UnspecifiedError,
    }
}

fn suback5(code: u8) -> v5::SubscribeReasonCode {
    use v5::SubscribeReasonCode as S;
    match code {
        0..=2 => S::Success(qos5(code)),
        0x83 => S::ImplementationSpecific,
        0x87 => S::NotAuthorized,
        0x8F => S::TopicFilterInvalid,
        0x91 => S::PkidInUse,
        0x97 => S::QuotaExceeded,
        0x9E => S::SharedSubscriptionsNotSupported,
        0xA1 => S::SubscriptionIdNotSupported,
        0xA2 => S::WildcardSubscriptionsNotSupported,
        _ => S::Unspecified,
    }
}

fn unsuback5(code: u8) -> v5::UnsubAckReason {
    use v5::UnsubAckReason as U;
    match code {
        0x00 => U::Success,
        0x11 => U::NoSubscriptionExisted,
        0x83 => U::ImplementationSpecificError,
        0x87 => U::NotAuthorized,
        0x8F => U::TopicFilterInvalid,
        0x91 => U::PacketIdentifierInUse,
        _ => U::UnspecifiedError,
    }
}

fn publish5(pb: &Publish) -> v5::Publish {
    v5::Publish {
        dup: pb.dup,
        qos: qos5(pb.qos),
        retain: pb.retain,
        topic: bytes::Bytes::copy_from_slice(pb.topic.as_bytes()),
        pkid: pb.pkid,
        payload: pb.payload.clone(),
        properties: pb.props.as_ref().map(|p| v5::PublishProperties {
            payload_format_indicator: p.payload_format,
            message_expiry_interval: p.message_expiry,
            topic_alias: None,
            response_topic: p.response_topic.clone(),
            correlation_data: p.correlation.clone(),
            user_properties: p.user.clone(),
            subscription_identifiers: p.sub_ids.iter().map(|&i| i as usize).collect(),
            content_type: p.content_type.clone(),
        }),
    }
}

fn encode5(p: &Outbound, out: &mut BytesMut) -> Result<bool, rumqttc::v5::mqttbytes::Error> {
    if plain(p, true, out) {
        return Ok(true);
    }
    if let Outbound::Disconnect(code) = p {
        // Written here: rumqttc 0.25's writer declares a Remaining Length of
        // 1 but appends a property length after the reason code (a stray
        // byte on the wire). Reason code and property length may both be
        // left out for 0x00, and the property length for any reason
        // [MQTT-3.14.2.1, 3.14.2.2.1].
        let code = disconnect5(*code) as u8;
        if code == 0 {
            out.extend_from_slice(&[0xE0, 0]);
        } else {
            out.extend_from_slice(&[0xE0, 1, code]);
        }
        return Ok(true);
    }
    let pkt = match p {
        Outbound::ConnAck {
            code,
            session_present,
            props,
        } => v5::Packet::ConnAck(v5::ConnAck {
            session_present: *session_present && *code == 0,
            code: connack5(*code),
            properties: props.as_ref().map(|i| v5::ConnAckProperties {
                session_expiry_interval: i.session_expiry,
                receive_max: Some(i.receive_max),
                max_qos: None,
                retain_available: Some(1),
                max_packet_size: Some(i.max_packet_size),
                assigned_client_identifier: i.assigned_client_id.clone(),
                topic_alias_max: Some(super::conn::TOPIC_ALIAS_MAX),
                reason_string: None,
                user_properties: Vec::new(),
                wildcard_subscription_available: Some(1),
                subscription_identifiers_available: Some(1),
                shared_subscription_available: Some(1),
                server_keep_alive: None,
                response_information: None,
                server_reference: None,
                authentication_method: None,
                authentication_data: None,
            }),
        }),
        Outbound::Publish(pb) => v5::Packet::Publish(publish5(pb)),
        Outbound::PubAck(id, r) => v5::Packet::PubAck(v5::PubAck {
            pkid: *id,
            reason: puback5(*r),
            properties: None,
        }),
        Outbound::PubRec(id, r) => v5::Packet::PubRec(v5::PubRec {
            pkid: *id,
            reason: pubrec5(*r),
            properties: None,
        }),
        Outbound::PubRel(id) => v5::Packet::PubRel(v5::PubRel {
            pkid: *id,
            reason: v5::PubRelReason::Success,
            properties: None,
        }),
        Outbound::PubComp(id, r) => v5::Packet::PubComp(v5::PubComp {
            pkid: *id,
            reason: if *r == 0 {
                v5::PubCompReason::Success
            } else {
                v5::PubCompReason::PacketIdentifierNotFound
            },
            properties: None,
        }),
        Outbound::SubAck(id, codes) => v5::Packet::SubAck(v5::SubAck {
            pkid: *id,
            return_codes: codes.iter().map(|c| suback5(*c)).collect(),
            properties: None,
        }),
        Outbound::UnsubAck(id, codes) => v5::Packet::UnsubAck(v5::UnsubAck {
            pkid: *id,
            reasons: codes.iter().map(|c| unsuback5(*c)).collect(),
            properties: None,
        }),
        Outbound::PingResp => v5::Packet::PingResp(v5::PingResp),
        // Written above.
        Outbound::Disconnect(_) => return Ok(true),
    };
    pkt.write(out, None)?;
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn v5_disconnect_is_well_formed() {
        let mut b = BytesMut::new();
        assert!(encode(&Outbound::Disconnect(0x93), Version::V5, &mut b));
        assert_eq!(&b[..], [0xE0, 1, 0x93]);
        b.clear();
        assert!(encode(&Outbound::Disconnect(0), Version::V5, &mut b));
        assert_eq!(&b[..], [0xE0, 0]);
        // 3.1.1 has no server DISCONNECT.
        b.clear();
        assert!(!encode(&Outbound::Disconnect(0x93), Version::V4, &mut b));
        assert!(b.is_empty());
    }
}
