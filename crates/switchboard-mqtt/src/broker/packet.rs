//! The broker's version-neutral packet representation: what the decoder
//! ([`super::codec`]) produces from MQTT 3.1.1 and 5 bytes and what the
//! encoder ([`super::encode`]) writes back in the connection's version.

use std::sync::Arc;

use bytes::Bytes;

/// Protocol version of a connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Version {
    /// MQTT 3.1.1 (protocol level 4).
    V4,
    /// MQTT 5.
    V5,
}

/// Why a frame could not be decoded. Every variant ends the connection.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// A packet larger than the broker accepts (`max_payload`).
    #[error("packet too large")]
    TooLarge,
    /// Bytes that are not a valid packet.
    #[error("malformed packet: {0}")]
    Malformed(&'static str),
    /// A valid packet where the protocol forbids it.
    #[error("protocol error: {0}")]
    Protocol(&'static str),
    /// A CONNECT with a protocol name or level this broker does not speak.
    #[error("unsupported protocol level {0}")]
    UnsupportedVersion(u8),
}

impl DecodeError {
    /// The MQTT 5 reason code for a DISCONNECT (or CONNACK) reporting it.
    pub fn reason_code(&self) -> u8 {
        match self {
            DecodeError::TooLarge => 0x95,
            DecodeError::Malformed(_) => 0x81,
            DecodeError::Protocol(_) => 0x82,
            DecodeError::UnsupportedVersion(_) => 0x84,
        }
    }
}

/// MQTT 5 publish properties the broker forwards (absent on 3.1.1).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PubProps {
    /// Payload format indicator (1 = UTF-8).
    pub payload_format: Option<u8>,
    /// Message expiry interval, seconds.
    pub message_expiry: Option<u32>,
    /// Content type (a MIME string).
    pub content_type: Option<String>,
    /// Response topic.
    pub response_topic: Option<String>,
    /// Correlation data.
    pub correlation: Option<Bytes>,
    /// User properties, in order.
    pub user: Vec<(String, String)>,
    /// Subscription identifiers of the receiving client's matching
    /// subscriptions (outbound only).
    pub sub_ids: Vec<u32>,
}

/// A PUBLISH, either way.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Publish {
    /// Topic name (validated on decode; empty only with a topic alias).
    pub topic: Arc<str>,
    /// Payload.
    pub payload: Bytes,
    /// QoS 0, 1 or 2.
    pub qos: u8,
    /// Retain flag.
    pub retain: bool,
    /// Duplicate delivery flag.
    pub dup: bool,
    /// Packet identifier (0 at QoS 0).
    pub pkid: u16,
    /// MQTT 5 properties.
    pub props: Option<Arc<PubProps>>,
    /// MQTT 5 topic alias (inbound only).
    pub topic_alias: Option<u16>,
    /// When its MQTT 5 message expiry interval runs out (set on receipt).
    pub expires: Option<std::time::Instant>,
}

/// A will message from CONNECT.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Will {
    /// Its publication.
    pub publish: Publish,
    /// MQTT 5 will delay interval, seconds.
    pub delay: u32,
}

/// A CONNECT, normalised.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConnectReq {
    /// Protocol version.
    pub version: Version,
    /// Client identifier (may be empty).
    pub client_id: String,
    /// Clean session (3.1.1) / clean start (5).
    pub clean_start: bool,
    /// Keep alive, seconds.
    pub keep_alive: u16,
    /// Will message.
    pub will: Option<Will>,
    /// User name.
    pub username: Option<String>,
    /// Password.
    pub password: Option<String>,
    /// Session expiry interval, seconds (3.1.1: 0 when clean, forever when not).
    pub session_expiry: u32,
    /// Client's receive maximum.
    pub receive_max: u16,
    /// Client's maximum packet size.
    pub max_packet_size: Option<u32>,
    /// MQTT 5 authentication method (enhanced auth is not supported).
    pub auth_method: Option<String>,
}

/// One topic filter of a SUBSCRIBE.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SubReq {
    /// The filter as sent (may be `$share/GROUP/FILTER`).
    pub filter: String,
    /// Maximum QoS.
    pub qos: u8,
    /// MQTT 5 no-local.
    pub no_local: bool,
    /// MQTT 5 retain-as-published.
    pub retain_as_published: bool,
    /// MQTT 5 retain handling: 0 send, 1 send if new, 2 never.
    pub retain_handling: u8,
}

/// A packet from a client.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Inbound {
    /// CONNECT.
    Connect(Box<ConnectReq>),
    /// PUBLISH.
    Publish(Publish),
    /// PUBACK.
    PubAck(u16),
    /// PUBREC (with its MQTT 5 reason code).
    PubRec(u16, u8),
    /// PUBREL.
    PubRel(u16),
    /// PUBCOMP.
    PubComp(u16),
    /// SUBSCRIBE.
    Subscribe {
        /// Packet identifier.
        pkid: u16,
        /// Filters.
        filters: Vec<SubReq>,
        /// MQTT 5 subscription identifier (not supported by this broker).
        sub_id: Option<usize>,
    },
    /// UNSUBSCRIBE.
    Unsubscribe {
        /// Packet identifier.
        pkid: u16,
        /// Filters.
        filters: Vec<String>,
    },
    /// PINGREQ.
    PingReq,
    /// DISCONNECT (MQTT 5 reason code; 0 on 3.1.1), with a new session expiry.
    Disconnect(u8, Option<u32>),
    /// MQTT 5 AUTH (not supported).
    Auth,
}

/// A packet to a client.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outbound {
    /// CONNACK with an MQTT 5 reason code (mapped for 3.1.1).
    ConnAck {
        /// Reason code (0 = success).
        code: u8,
        /// Session present.
        session_present: bool,
        /// MQTT 5 properties of a successful CONNACK.
        props: Option<Box<ConnAckInfo>>,
    },
    /// PUBLISH.
    Publish(Publish),
    /// PUBACK with reason.
    PubAck(u16, u8),
    /// PUBREC with reason.
    PubRec(u16, u8),
    /// PUBREL.
    PubRel(u16),
    /// PUBCOMP with reason.
    PubComp(u16, u8),
    /// SUBACK with one code per filter (granted QoS or an error code >= 0x80).
    SubAck(u16, Vec<u8>),
    /// UNSUBACK with one code per filter (MQTT 5).
    UnsubAck(u16, Vec<u8>),
    /// PINGRESP.
    PingResp,
    /// DISCONNECT (MQTT 5 only) with a reason code.
    Disconnect(u8),
}

/// What a successful MQTT 5 CONNACK announces.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ConnAckInfo {
    /// Our receive maximum.
    pub receive_max: u16,
    /// Our maximum packet size.
    pub max_packet_size: u32,
    /// A client identifier we assigned.
    pub assigned_client_id: Option<String>,
    /// Session expiry we grant, when it differs from the request.
    pub session_expiry: Option<u32>,
}
