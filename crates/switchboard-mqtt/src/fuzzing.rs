//! Fuzz target bodies (called by `fuzz/fuzz_targets/*` and by the corpus
//! replay test). Each takes arbitrary bytes and must never panic.

use bytes::BytesMut;

use crate::broker::codec::{self, Version};

/// Feeds bytes to the broker's decoder as a connection would: sniff the
/// CONNECT, then decode packets until the bytes run out or one is refused.
/// Re-encodes what decodes, to exercise the writers too.
pub fn mqtt_packets(data: &[u8]) {
    let mut buf = BytesMut::from(data);
    let version = match codec::sniff_connect(&buf, 1 << 20) {
        Ok(Some(v)) => v,
        Ok(None) | Err(_) => {
            // Still exercise the per-version decoders on raw input.
            for v in [Version::V4, Version::V5] {
                let mut b = BytesMut::from(data);
                while let Ok(Some(_)) = codec::decode(&mut b, v, 1 << 20) {}
            }
            return;
        }
    };
    let mut out = BytesMut::new();
    while let Ok(Some(p)) = codec::decode(&mut buf, version, 1 << 20) {
        if let codec::Inbound::Publish(p) = p {
            crate::broker::encode::encode(&codec::Outbound::Publish(p), version, &mut out);
        }
    }
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
