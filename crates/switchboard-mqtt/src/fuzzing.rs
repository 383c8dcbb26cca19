//! Fuzz target bodies (called by `fuzz/fuzz_targets/mqtt_*.rs` and by the
//! corpus replay test). Each takes arbitrary bytes and must never panic.

use std::sync::Arc;
use std::time::Instant;

use bytes::BytesMut;

use crate::broker::codec::{self, Inbound, Outbound, Version};
use crate::broker::core::{Core, CoreStats, Limits};
use crate::broker::encode::encode;

const MAX_PACKET: usize = 1 << 20;

/// Feeds bytes to the broker as one client connection would, without I/O:
/// sniff the CONNECT, decode packets until the bytes run out or one is
/// refused, apply each to a sans-IO broker core (sessions, subscriptions,
/// routing, QoS windows) and encode every answer.
pub fn mqtt_packets(data: &[u8]) {
    let mut buf = BytesMut::from(data);
    let version = match codec::sniff_connect(&buf, MAX_PACKET) {
        Ok(Some(v)) => v,
        Ok(None) | Err(_) => {
            // Still exercise the per-version decoders on raw input.
            for v in [Version::V4, Version::V5] {
                let mut b = BytesMut::from(data);
                while let Ok(Some(_)) = codec::decode(&mut b, v, MAX_PACKET) {}
            }
            return;
        }
    };
    let metrics = switchboard_model::AdapterMetrics::default();
    let mut core = Core::new(
        Limits {
            max_clients: 4,
            max_sessions: 4,
            max_inflight: 4,
            max_queued: 16,
        },
        CoreStats::new(&metrics),
    );
    let client: Arc<str> = Arc::from("fuzz");
    let now = Instant::now();
    let mut out = Vec::new();
    let mut wire = BytesMut::new();
    let Ok(Some(Inbound::Connect(req))) = codec::decode(&mut buf, version, MAX_PACKET) else {
        return;
    };
    let Ok((link, _)) = core.connect(&client, &req, now) else {
        return;
    };
    let id = link.id;
    while let Ok(Some(p)) = codec::decode(&mut buf, version, MAX_PACKET) {
        match p {
            Inbound::Connect(_) | Inbound::Auth | Inbound::Disconnect(..) => break,
            Inbound::Publish(p) => {
                core.route(&p, Some("other"));
                match p.qos {
                    1 => out.push(Outbound::PubAck(p.pkid, 0)),
                    2 => {
                        core.qos2_received(&client, id, p.pkid);
                        out.push(Outbound::PubRec(p.pkid, 0));
                    }
                    _ => {}
                }
            }
            Inbound::PubAck(pk) => core.puback(&client, id, pk),
            Inbound::PubRec(pk, r) => out.extend(core.pubrec(&client, id, pk, r)),
            Inbound::PubRel(pk) => {
                let known = core.qos2_released(&client, id, pk);
                out.push(Outbound::PubComp(pk, if known { 0 } else { 0x92 }));
            }
            Inbound::PubComp(pk) => core.pubcomp(&client, id, pk),
            Inbound::Subscribe { pkid, filters, .. } => {
                let codes = filters
                    .iter()
                    .map(|f| {
                        if codec::valid_filter(&f.filter) && f.qos <= 2 {
                            core.subscribe(&client, f, f.qos, None);
                            f.qos
                        } else {
                            0x8F
                        }
                    })
                    .collect();
                out.push(Outbound::SubAck(pkid, codes));
            }
            Inbound::Unsubscribe { pkid, filters } => {
                let codes = filters
                    .iter()
                    .map(|f| u8::from(!core.unsubscribe(&client, f)) * 0x11)
                    .collect();
                out.push(Outbound::UnsubAck(pkid, codes));
            }
            Inbound::PingReq => out.push(Outbound::PingResp),
        }
        core.pull(&client, id, &mut out);
        for o in out.drain(..) {
            encode(&o, version, &mut wire);
        }
        wire.clear();
    }
    core.disconnected(&client, id, now);
    core.sweep(now);
}

/// Parses a broker URL and an adapter config table from text.
pub fn mqtt_config(data: &[u8]) {
    let Ok(s) = std::str::from_utf8(data) else {
        return;
    };
    let _ = crate::config::BrokerUrl::parse(s);
    if let Ok(c) = toml::from_str::<crate::config::Config>(s) {
        let _ = c.validate();
        let _ = c.listen_addrs();
    }
}

/// Bytes from a broker into a connected client (both versions): framing,
/// rumqttc's session state, the adapter's events and acknowledgements.
pub fn mqtt_client_inbound(data: &[u8]) {
    crate::client::fuzz_inbound(data);
}
