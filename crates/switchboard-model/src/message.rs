//! The [`Message`] that flows through the router, with its origin, properties
//! and loop-guard trace.

use std::sync::Arc;
use std::time::SystemTime;

use bytes::Bytes;

use crate::ModelError;
use crate::address::Address;
use crate::format::{Format, Qos};
use crate::topic::Topic;

/// Where a message came from: the adapter instance and, where known, the peer.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Origin {
    /// The adapter instance name (`mqtt`, `cloud`, ...), or `app` for messages
    /// published through the library handle.
    pub adapter: Arc<str>,
    /// The peer (client id, socket address, participant GUID), where known.
    pub peer: Option<Arc<str>>,
}

impl Origin {
    /// An origin with no peer.
    pub fn adapter(name: impl Into<Arc<str>>) -> Self {
        Origin {
            adapter: name.into(),
            peer: None,
        }
    }
}

/// A small ordered key/value list (MQTT 5 user properties, CoAP options, HTTP
/// headers, DDS instance state). Cloning shares the list until one side writes.
#[derive(Clone, PartialEq, Eq, Debug, Default)]
pub struct Properties(Option<Arc<Vec<Pair>>>);

type Pair = (Arc<str>, Arc<str>);

impl Properties {
    /// An empty list.
    pub fn new() -> Self {
        Properties(None)
    }

    /// The first value for `key`.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.iter().find(|(k, _)| *k == key).map(|(_, v)| v)
    }

    /// Appends a pair (keys may repeat, as in MQTT 5).
    pub fn push(&mut self, key: impl Into<Arc<str>>, value: impl Into<Arc<str>>) {
        Arc::make_mut(self.0.get_or_insert_with(Default::default)).push((key.into(), value.into()));
    }

    /// Replaces every value of `key` with one.
    pub fn set(&mut self, key: &str, value: impl Into<Arc<str>>) {
        self.remove(key);
        self.push(key, value);
    }

    /// Removes every pair with `key`.
    pub fn remove(&mut self, key: &str) {
        if let Some(v) = &mut self.0
            && v.iter().any(|(k, _)| &**k == key)
        {
            Arc::make_mut(v).retain(|(k, _)| &**k != key);
        }
    }

    /// The pairs in order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0
            .iter()
            .flat_map(|v| v.iter().map(|(k, v)| (&**k, &**v)))
    }

    /// Number of pairs.
    pub fn len(&self) -> usize {
        self.0.as_ref().map_or(0, |v| v.len())
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// The loop guard's record: how many bridge hops a message made and which
/// addresses it passed through.
///
/// The most recent address is held inline and older ones in a shared list, so
/// the first hop (by far the most common trace) allocates nothing.
#[derive(Clone, PartialEq, Eq, Debug, Default)]
pub struct Trace {
    /// Routed hops so far (across bridges too, where the protocol carries it).
    pub hops: u8,
    /// Older addresses passed, oldest first.
    pub path: Option<Arc<[Address]>>,
    /// The most recent address passed (the source of the hop that produced
    /// this message), after `path`.
    pub last: Option<Address>,
}

impl Trace {
    /// Whether `addr` is already on the trace.
    pub fn passed(&self, addr: &Address) -> bool {
        self.addresses().any(|a| a == addr)
    }

    /// Whether `adapter:topic` is already on the trace.
    #[inline]
    pub fn passed_at(&self, adapter: &str, topic: &str) -> bool {
        self.addresses()
            .any(|a| *a.adapter == *adapter && a.topic.as_str() == topic)
    }

    /// The addresses passed, oldest first.
    #[inline]
    pub fn addresses(&self) -> impl Iterator<Item = &Address> {
        self.path
            .as_deref()
            .unwrap_or(&[])
            .iter()
            .chain(self.last.as_ref())
    }

    /// Whether no address was passed.
    pub fn is_empty(&self) -> bool {
        self.last.is_none() && self.path.as_ref().is_none_or(|p| p.is_empty())
    }

    /// A trace one hop further that also passed `addr`.
    pub fn extended(&self, addr: &Address) -> Trace {
        self.extended_at(&addr.adapter, &addr.topic)
    }

    /// A trace one hop further that also passed `adapter:topic`.
    #[inline]
    pub fn extended_at(&self, adapter: &Arc<str>, topic: &Topic) -> Trace {
        let path = match &self.last {
            None => self.path.clone(),
            // One allocation: the iterator has an exact length.
            Some(last) => Some(
                self.path
                    .as_deref()
                    .unwrap_or(&[])
                    .iter()
                    .chain(std::iter::once(last))
                    .cloned()
                    .collect(),
            ),
        };
        Trace {
            hops: self.hops.saturating_add(1),
            path,
            last: Some(Address::new(adapter.clone(), topic.clone())),
        }
    }
}

/// What flows through the router.
#[derive(Clone, Debug)]
pub struct Message {
    /// The topic within the adapter the message is at.
    pub topic: Topic,
    /// The payload; cloned by reference count.
    pub payload: Bytes,
    /// The payload's content format.
    pub format: Format,
    /// Delivery guarantee.
    pub qos: Qos,
    /// Last-value semantics (MQTT retain, DDS TRANSIENT_LOCAL).
    pub retain: bool,
    /// Where it came from.
    pub origin: Origin,
    /// When the bridge received it.
    pub timestamp: SystemTime,
    /// When the source says it was produced, where the protocol carries it.
    pub source_timestamp: Option<SystemTime>,
    /// Protocol metadata carried across.
    pub properties: Properties,
    /// Loop-guard record.
    pub trace: Trace,
}

/// The adapter name used as origin for messages published through the library.
pub const APP_ORIGIN: &str = "app";

impl Message {
    /// A message on `topic` from adapter `origin`, with defaults (octets, QoS 0,
    /// not retained, received now).
    pub fn new(origin: impl Into<Arc<str>>, topic: Topic, payload: impl Into<Bytes>) -> Self {
        Message {
            topic,
            payload: payload.into(),
            format: Format::Octets,
            qos: Qos::AtMostOnce,
            retain: false,
            origin: Origin::adapter(origin),
            timestamp: SystemTime::now(),
            source_timestamp: None,
            properties: Properties::new(),
            trace: Trace::default(),
        }
    }

    /// A message to be published at `address` (`ADAPTER:TOPIC`) through the
    /// library, with the given format. Its origin adapter is the address's
    /// adapter and its peer is `app`.
    pub fn at(
        address: &str,
        payload: impl Into<Bytes>,
        format: Format,
    ) -> Result<Self, ModelError> {
        let addr = Address::parse(address)?;
        let mut m = Message::new(addr.adapter, addr.topic, payload);
        m.origin.peer = Some(Arc::from(APP_ORIGIN));
        m.format = format;
        Ok(m)
    }

    /// A JSON message at `address`; the payload must be valid JSON text.
    pub fn json(address: &str, payload: impl Into<Bytes>) -> Result<Self, ModelError> {
        Message::at(address, payload, Format::Json)
    }

    /// A text message at `address`.
    pub fn text(address: &str, payload: impl Into<Bytes>) -> Result<Self, ModelError> {
        Message::at(address, payload, Format::Text)
    }

    /// An octets message at `address`.
    pub fn octets(address: &str, payload: impl Into<Bytes>) -> Result<Self, ModelError> {
        Message::at(address, payload, Format::Octets)
    }

    /// Sets the QoS (builder style).
    pub fn with_qos(mut self, qos: Qos) -> Self {
        self.qos = qos;
        self
    }

    /// Sets retain (builder style).
    pub fn with_retain(mut self, retain: bool) -> Self {
        self.retain = retain;
        self
    }

    /// Sets the format (builder style).
    pub fn with_format(mut self, format: Format) -> Self {
        self.format = format;
        self
    }

    /// The address the message is at: its origin adapter and topic.
    pub fn address(&self) -> Address {
        Address::new(self.origin.adapter.clone(), self.topic.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn properties_copy_on_write() {
        let mut a = Properties::new();
        a.push("k", "1");
        let b = a.clone();
        a.set("k", "2");
        a.push("x", "y");
        assert_eq!(b.get("k"), Some("1"));
        assert_eq!(a.get("k"), Some("2"));
        assert_eq!(a.len(), 2);
        a.remove("k");
        assert_eq!(a.iter().collect::<Vec<_>>(), vec![("x", "y")]);
    }

    #[test]
    fn message_at_address() {
        let m = Message::json("mqtt:cmd/lamp", r#"{"on":true}"#).unwrap();
        assert_eq!(m.address().to_string(), "mqtt:cmd/lamp");
        assert_eq!(m.format, Format::Json);
        assert!(Message::json("cmd/lamp", "1").is_err());
    }

    #[test]
    fn payload_is_shared_on_clone() {
        let m = Message::octets("a:b", vec![1u8; 64]).unwrap();
        let c = m.clone();
        assert_eq!(m.payload.as_ptr(), c.payload.as_ptr());
    }
}
