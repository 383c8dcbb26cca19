//! One face over rumqttc's MQTT 3.1.1 and MQTT 5 clients: building the
//! options (credentials, TLS through rustls, manual acks, persistent
//! sessions), the requests the adapter makes (`try_*`, never blocking the
//! event loop's task) and the events it needs, version-neutral.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use rumqttc::v5::mqttbytes::v5 as p5;

use super::outbox::OutMsg;
use crate::config::{BrokerUrl, Config};
use crate::mapping::MqttMeta;

/// The request side of the client.
pub(crate) enum Link {
    V4(rumqttc::AsyncClient),
    V5(rumqttc::v5::AsyncClient),
}

/// The event loop of the client.
pub(crate) enum Loop {
    V4(Box<rumqttc::EventLoop>),
    V5(Box<rumqttc::v5::EventLoop>),
}

/// An incoming PUBLISH as received, for the manual acknowledgement.
pub(crate) enum RawPub {
    V4(rumqttc::Publish),
    V5(p5::Publish),
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

/// What the adapter needs to know from the event loop.
pub(crate) enum Ev {
    /// Connected; whether the broker kept our session.
    ConnAck(bool),
    /// A publication from the broker.
    Publish(Box<InPub>),
    /// We sent a PUBLISH with this packet identifier.
    Sent(u16),
    /// The broker acknowledged this packet identifier (PUBACK / PUBCOMP).
    Acked(u16),
    /// We sent DISCONNECT.
    Disconnected,
    /// Anything else.
    Other,
}

fn qos4(n: u8) -> rumqttc::QoS {
    match n {
        0 => rumqttc::QoS::AtMostOnce,
        1 => rumqttc::QoS::AtLeastOnce,
        _ => rumqttc::QoS::ExactlyOnce,
    }
}

fn qos5(n: u8) -> rumqttc::v5::mqttbytes::QoS {
    match n {
        0 => rumqttc::v5::mqttbytes::QoS::AtMostOnce,
        1 => rumqttc::v5::mqttbytes::QoS::AtLeastOnce,
        _ => rumqttc::v5::mqttbytes::QoS::ExactlyOnce,
    }
}

/// Capacity of rumqttc's request channel (our outbox sits in front of it).
const REQUEST_CAP: usize = 256;
/// Outgoing QoS 1/2 publications in flight to the broker.
const INFLIGHT: u16 = 256;

/// Builds the client for `cfg`.
pub(crate) fn build(
    cfg: &Config,
    url: &BrokerUrl,
    tls: Option<Arc<rustls::ClientConfig>>,
    client_id: String,
) -> (Link, Loop) {
    let max_packet = cfg.max_payload.as_usize().saturating_add(65_536 + 4096);
    let transport = tls.map(|t| rumqttc::Transport::Tls(rumqttc::TlsConfiguration::Rustls(t)));
    let secs = cfg.keep_alive.0.as_secs();
    if cfg.version == 5 {
        let mut o = rumqttc::v5::MqttOptions::new(client_id, url.host.clone(), url.port);
        o.set_keep_alive(Duration::from_secs(secs.max(5)));
        o.set_clean_start(cfg.clean_session);
        if !cfg.clean_session {
            o.set_session_expiry_interval(Some(u32::MAX));
        }
        o.set_manual_acks(true);
        o.set_outgoing_inflight_upper_limit(INFLIGHT);
        o.set_max_packet_size(u32::try_from(max_packet).ok());
        o.set_connection_timeout(5);
        // Each publication is one small write: no Nagle delay behind an
        // unacknowledged segment (the broker may delay its TCP ACKs).
        let mut net = o.network_options();
        net.set_tcp_nodelay(true);
        o.set_network_options(net);
        if let Some(u) = &url.username {
            let p = url.password.as_ref().map_or("", |p| p.expose());
            o.set_credentials(u.clone(), p.to_owned());
        }
        if let Some(t) = transport {
            o.set_transport(t);
        }
        let (c, l) = rumqttc::v5::AsyncClient::new(o, REQUEST_CAP);
        (Link::V5(c), Loop::V5(Box::new(l)))
    } else {
        let mut o = rumqttc::MqttOptions::new(client_id, url.host.clone(), url.port);
        o.set_keep_alive(Duration::from_secs(secs.max(1)));
        o.set_clean_session(cfg.clean_session);
        o.set_manual_acks(true);
        o.set_inflight(INFLIGHT);
        o.set_max_packet_size(max_packet, max_packet);
        if let Some(u) = &url.username {
            let p = url.password.as_ref().map_or("", |p| p.expose());
            o.set_credentials(u.clone(), p.to_owned());
        }
        if let Some(t) = transport {
            o.set_transport(t);
        }
        let mut net = rumqttc::NetworkOptions::new();
        net.set_connection_timeout(5);
        net.set_tcp_nodelay(true);
        let (c, mut l) = rumqttc::AsyncClient::new(o, REQUEST_CAP);
        l.set_network_options(net);
        (Link::V4(c), Loop::V4(Box::new(l)))
    }
}

fn meta5(p: &Option<p5::PublishProperties>) -> Option<MqttMeta> {
    p.as_ref().map(|p| MqttMeta {
        content_type: p.content_type.clone(),
        payload_format: p.payload_format_indicator,
        user: p.user_properties.clone(),
    })
}

impl Loop {
    /// Events the client already read and has not handed out yet.
    pub(crate) fn buffered(&self) -> usize {
        match self {
            Loop::V4(l) => l.state.events.len(),
            Loop::V5(l) => l.state.events.len(),
        }
    }

    /// The next event; `Err` when the connection failed or dropped (poll
    /// again, after a backoff, to reconnect).
    pub(crate) async fn poll(&mut self) -> Result<Ev, String> {
        match self {
            Loop::V4(l) => {
                use rumqttc::{Event, Outgoing, Packet};
                let ev = l.poll().await.map_err(|e| e.to_string())?;
                Ok(match ev {
                    Event::Incoming(Packet::ConnAck(a)) => Ev::ConnAck(a.session_present),
                    Event::Incoming(Packet::Publish(mut p)) => Ev::Publish(Box::new(InPub {
                        // The acknowledgement needs only QoS and packet id.
                        topic: std::mem::take(&mut p.topic),
                        payload: std::mem::take(&mut p.payload),
                        qos: p.qos as u8,
                        retain: p.retain,
                        meta: None,
                        raw: RawPub::V4(p),
                    })),
                    Event::Incoming(Packet::PubAck(a)) => Ev::Acked(a.pkid),
                    Event::Incoming(Packet::PubComp(a)) => Ev::Acked(a.pkid),
                    Event::Outgoing(Outgoing::Publish(id)) => Ev::Sent(id),
                    Event::Outgoing(Outgoing::Disconnect) => Ev::Disconnected,
                    _ => Ev::Other,
                })
            }
            Loop::V5(l) => {
                use rumqttc::v5::{Event, mqttbytes::v5::Packet};
                let ev = l.poll().await.map_err(|e| e.to_string())?;
                Ok(match ev {
                    Event::Incoming(Packet::ConnAck(a)) => Ev::ConnAck(a.session_present),
                    Event::Incoming(Packet::Publish(p)) => {
                        let topic = String::from_utf8_lossy(&p.topic).into_owned();
                        Ev::Publish(Box::new(InPub {
                            topic,
                            payload: p.payload.clone(),
                            qos: p.qos as u8,
                            retain: p.retain,
                            meta: meta5(&p.properties),
                            raw: RawPub::V5(p),
                        }))
                    }
                    Event::Incoming(Packet::PubAck(a)) => Ev::Acked(a.pkid),
                    Event::Incoming(Packet::PubComp(a)) => Ev::Acked(a.pkid),
                    Event::Outgoing(rumqttc::Outgoing::Publish(id)) => Ev::Sent(id),
                    Event::Outgoing(rumqttc::Outgoing::Disconnect) => Ev::Disconnected,
                    _ => Ev::Other,
                })
            }
        }
    }
}

impl Link {
    /// Whether this is an MQTT 5 client (publications carry properties).
    pub(crate) fn is_v5(&self) -> bool {
        matches!(self, Link::V5(_))
    }

    /// Hands a publication to the client; `false` when its channel is full.
    pub(crate) fn try_publish(&self, m: &OutMsg) -> bool {
        match self {
            Link::V4(c) => c
                .try_publish(&*m.topic, qos4(m.qos), m.retain, m.payload.to_vec())
                .is_ok(),
            Link::V5(c) => {
                let props = p5::PublishProperties {
                    payload_format_indicator: m.meta.payload_format,
                    content_type: m.meta.content_type.clone(),
                    user_properties: m.meta.user.clone(),
                    ..Default::default()
                };
                c.try_publish_with_properties(
                    &*m.topic,
                    qos5(m.qos),
                    m.retain,
                    m.payload.clone(),
                    props,
                )
                .is_ok()
            }
        }
    }

    /// Acknowledges an incoming publication; `false` when the channel is full.
    pub(crate) fn try_ack(&self, raw: &RawPub) -> bool {
        match (self, raw) {
            (Link::V4(c), RawPub::V4(p)) => c.try_ack(p).is_ok(),
            (Link::V5(c), RawPub::V5(p)) => c.try_ack(p).is_ok(),
            _ => true,
        }
    }

    /// Subscribes; `no_local` is honoured on MQTT 5 only.
    pub(crate) fn try_subscribe(&self, filter: &str, qos: u8, no_local: bool) -> bool {
        match self {
            Link::V4(c) => c.try_subscribe(filter, qos4(qos)).is_ok(),
            Link::V5(c) => {
                let mut f = p5::Filter::new(filter, qos5(qos));
                f.nolocal = no_local;
                c.try_subscribe_many([f]).is_ok()
            }
        }
    }

    /// Unsubscribes.
    pub(crate) fn try_unsubscribe(&self, filter: &str) -> bool {
        match self {
            Link::V4(c) => c.try_unsubscribe(filter).is_ok(),
            Link::V5(c) => c.try_unsubscribe(filter).is_ok(),
        }
    }

    /// Asks for a clean DISCONNECT.
    pub(crate) fn try_disconnect(&self) {
        let _ = match self {
            Link::V4(c) => c.try_disconnect().is_ok(),
            Link::V5(c) => c.try_disconnect().is_ok(),
        };
    }
}
