//! Pure mapping between MQTT publications and the message model: topic to
//! topic unchanged, QoS and retain carried, MQTT 5 content type <-> `format`,
//! user properties <-> `properties`, and the loop guard's trace carried as
//! the user properties `sb-hops` and `sb-path` (addresses joined by `,`).

use std::sync::Arc;

use bytes::Bytes;
use switchboard_model::{Address, Format, Message, ModelError, Properties, Topic, Trace};

use crate::config::qos_of;

/// User property carrying the loop guard's hop count.
pub const HOPS_KEY: &str = "sb-hops";
/// User property carrying the addresses a message passed.
pub const PATH_KEY: &str = "sb-path";

/// What an MQTT publication carries, independent of the codec.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MqttMeta {
    /// MQTT 5 content type.
    pub content_type: Option<String>,
    /// MQTT 5 payload format indicator.
    pub payload_format: Option<u8>,
    /// MQTT 5 user properties.
    pub user: Vec<(String, String)>,
}

impl MqttMeta {
    /// Whether there is nothing to carry as MQTT 5 properties.
    pub fn is_empty(&self) -> bool {
        self.content_type.is_none() && self.payload_format.is_none() && self.user.is_empty()
    }
}

/// Builds the message for a publication received at `topic`.
pub fn to_message(
    adapter: &Arc<str>,
    topic: &str,
    payload: Bytes,
    qos: u8,
    retain: bool,
    meta: Option<&MqttMeta>,
    peer: Option<Arc<str>>,
) -> Result<Message, ModelError> {
    let mut m = Message::new(adapter.clone(), Topic::new(topic)?, payload);
    m.qos = qos_of(qos);
    m.retain = retain;
    m.origin.peer = peer;
    if let Some(meta) = meta {
        if let Some(ct) = &meta.content_type {
            m.format = Format::from_mime(ct);
        } else if meta.payload_format == Some(1) {
            m.format = Format::Text;
        }
        let mut props = Properties::new();
        for (k, v) in &meta.user {
            match k.as_str() {
                HOPS_KEY => m.trace.hops = v.parse().unwrap_or(0),
                PATH_KEY => {
                    let path: Vec<Address> = v
                        .split(',')
                        .filter_map(|a| Address::parse(a).ok())
                        .take(64)
                        .collect();
                    if !path.is_empty() {
                        m.trace.path = Some(Arc::from(path));
                    }
                }
                _ => props.push(k.as_str(), v.as_str()),
            }
        }
        m.properties = props;
    }
    Ok(m)
}

/// The MQTT 5 metadata of a message going out: its format as content type
/// (none for octets), its properties as user properties, and its trace.
pub fn meta_of(m: &Message) -> MqttMeta {
    let mut user: Vec<(String, String)> = m
        .properties
        .iter()
        .filter(|(k, _)| *k != HOPS_KEY && *k != PATH_KEY)
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
    let trace: &Trace = &m.trace;
    if trace.hops > 0 || !trace.is_empty() {
        user.push((HOPS_KEY.to_owned(), trace.hops.to_string()));
        let path: Vec<String> = trace.addresses().map(|a| a.to_string()).collect();
        if !path.is_empty() {
            user.push((PATH_KEY.to_owned(), path.join(",")));
        }
    }
    MqttMeta {
        content_type: match &m.format {
            Format::Octets => None,
            f => Some(f.mime()),
        },
        payload_format: m.format.is_textual().then_some(1),
        user,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_meta() {
        let a: Arc<str> = Arc::from("mqtt");
        let meta = MqttMeta {
            content_type: Some("application/json".into()),
            payload_format: Some(1),
            user: vec![
                ("k".into(), "v".into()),
                (HOPS_KEY.into(), "2".into()),
                (PATH_KEY.into(), "mqtt:a,http:b".into()),
            ],
        };
        let m = to_message(
            &a,
            "s/1",
            Bytes::from_static(b"{}"),
            1,
            true,
            Some(&meta),
            None,
        )
        .unwrap();
        assert_eq!(m.format, Format::Json);
        assert_eq!(m.properties.get("k"), Some("v"));
        assert_eq!(m.properties.len(), 1);
        assert_eq!(m.trace.hops, 2);
        assert_eq!(m.trace.addresses().count(), 2);
        assert!(m.retain);
        let back = meta_of(&m);
        assert_eq!(back.content_type.as_deref(), Some("application/json"));
        assert_eq!(back.user, meta.user);
        assert!(to_message(&a, "a/+", Bytes::new(), 0, false, None, None).is_err());
        let plain = to_message(&a, "x", Bytes::new(), 0, false, None, None).unwrap();
        let pm = meta_of(&plain);
        assert!(pm.content_type.is_none() && pm.user.is_empty());
    }
}
