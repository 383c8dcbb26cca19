//! Typed topics: samples of a type declared in the IDL files become JSON for
//! the router, and JSON (or CBOR) arriving for such a topic becomes CDR, with
//! switchboard-codec doing the work.
//!
//! The adapter converts itself so the router stays protocol-free: typed
//! samples enter the router as `json` with the DDS type name in the
//! `dds.type` property and, for keyed types, the key as JSON in `dds.key`.
//! Outbound, the type's preferred encoding is written (XCDR1 for final types,
//! XCDR2 for appendable and mutable ones, as Cyclone DDS does), with the key
//! serialized and hashed as DDS requires so instances and disposes match.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use serde_json::Value;
use switchboard_codec::cdr::{self, CdrError, Encoding};
use switchboard_codec::idl::{TypeId, TypeRegistry};
use switchboard_model::Format;

use crate::raw::{RawKey, RawSample};

/// How many key serializations each keyed topic remembers, to name the
/// instance of a dispose that carries only the serialized key.
const MAX_KEYS: usize = 65_536;

/// Why a payload could not be converted.
#[derive(Debug, thiserror::Error)]
pub enum TypedError {
    /// The CDR or JSON did not fit the type (the message names the member).
    #[error(transparent)]
    Cdr(#[from] CdrError),
    /// The payload is not JSON or CBOR.
    #[error("{0}")]
    Payload(String),
}

/// One type from the IDL files, as used by one topic.
#[derive(Debug)]
pub struct Typed {
    reg: Arc<TypeRegistry>,
    ty: TypeId,
    /// Whether the type has `@key` members.
    pub keyed: bool,
    enc: Encoding,
    keys: Mutex<HashMap<Vec<u8>, Arc<str>>>,
}

/// A decoded sample.
#[derive(Debug)]
pub struct Decoded {
    /// Compact JSON text.
    pub json: Bytes,
    /// The key as compact JSON text (keyed types).
    pub key: Option<Arc<str>>,
}

impl Typed {
    /// The type named `name` (IDL or ROS 2 DDS name), if declared.
    pub fn lookup(reg: &Arc<TypeRegistry>, name: &str) -> Option<Typed> {
        let ty = reg.get(name)?;
        let keyed = reg.struct_type(ty).is_some_and(|s| s.is_keyed());
        Some(Typed {
            reg: reg.clone(),
            ty,
            keyed,
            enc: cdr::preferred_encoding(reg, ty, false),
            keys: Mutex::new(HashMap::new()),
        })
    }

    fn remember_key(&self, rep: u16, key_cdr: Vec<u8>, key: Arc<str>) {
        let mut id = rep.to_be_bytes().to_vec();
        id.extend_from_slice(&key_cdr);
        let mut keys = self.keys.lock().unwrap_or_else(|e| e.into_inner());
        if keys.len() >= MAX_KEYS && !keys.contains_key(&id) {
            keys.clear();
        }
        keys.insert(id, key);
    }

    /// Decodes a sample to JSON (and its key, for keyed types).
    pub fn decode(&self, sample: &RawSample) -> Result<Decoded, TypedError> {
        let id = sample.rep.to_be_bytes();
        if !self.keyed {
            let json = cdr::decode_body_to_json_text(&self.reg, self.ty, id, &sample.body)?;
            return Ok(Decoded {
                json: Bytes::from(json),
                key: None,
            });
        }
        let value = cdr::decode_body_to_json(&self.reg, self.ty, id, &sample.body)?;
        let key = cdr::key_of(&self.reg, self.ty, &value)?;
        let key_text: Arc<str> = Arc::from(key.to_string());
        // Remember how this writer serializes the key, for its disposes.
        let enc = Encoding::from_representation_id(id)?;
        if let Ok(k) = cdr::key_cdr(&self.reg, self.ty, &value, enc) {
            self.remember_key(sample.rep, k, key_text.clone());
        }
        Ok(Decoded {
            json: Bytes::from(value.to_string()),
            key: Some(key_text),
        })
    }

    /// The key (JSON text) of a dispose carrying the serialized key `key`, if
    /// a sample of that instance was seen.
    pub fn dispose_key(&self, key: &RawKey) -> Option<Arc<str>> {
        let mut id = key.rep.to_be_bytes().to_vec();
        id.extend_from_slice(&key.bytes);
        self.keys
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&id)
            .cloned()
    }

    /// Parses a JSON or CBOR payload into a JSON value.
    pub fn parse(payload: &[u8], format: &Format) -> Result<Value, TypedError> {
        match format {
            Format::Cbor => switchboard_codec::parse_cbor(payload)
                .and_then(switchboard_codec::cbor_to_json)
                .map_err(|e| TypedError::Payload(e.to_string())),
            _ => switchboard_codec::parse_json(payload)
                .map_err(|e| TypedError::Payload(e.to_string())),
        }
    }

    fn key(&self, value: &Value) -> Result<RawKey, TypedError> {
        let bytes = cdr::key_cdr(&self.reg, self.ty, value, self.enc)?;
        let hash = cdr::key_hash(&self.reg, self.ty, value)?;
        let rep = u16::from_be_bytes(cdr::representation_id(&self.reg, self.ty, self.enc));
        Ok(RawKey { rep, bytes, hash })
    }

    /// Encodes a JSON value as a sample in the type's preferred encoding.
    pub fn encode(&self, value: &Value) -> Result<RawSample, TypedError> {
        let bytes = cdr::encode_from_json(&self.reg, self.ty, value, self.enc)?;
        let mut sample = RawSample::from_encapsulated(&Bytes::from(bytes))
            .map_err(|e| TypedError::Payload(e.to_string()))?;
        if self.keyed {
            sample.key = self.key(value)?;
        }
        Ok(sample)
    }

    /// The key of an instance to dispose, from its JSON (key members, or a
    /// whole sample).
    pub fn encode_key(&self, value: &Value) -> Result<RawKey, TypedError> {
        self.key(value)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn reg() -> Arc<TypeRegistry> {
        Arc::new(
            TypeRegistry::from_idl_str(
                "t.idl",
                "module test { @final struct Keyed { @key long id; double value; };
                 @appendable struct A { long id; string label; }; };",
            )
            .unwrap(),
        )
    }

    #[test]
    fn keyed_round_trip_and_dispose_lookup() {
        let reg = reg();
        let t = Typed::lookup(&reg, "test::Keyed").unwrap();
        assert!(t.keyed);
        let v = serde_json::json!({"id": 1, "value": 1.5});
        let s = t.encode(&v).unwrap();
        assert_eq!(s.rep, 0x0001);
        assert_eq!(s.key.bytes, vec![1, 0, 0, 0]);
        assert_eq!(s.key.hash[..4], [0, 0, 0, 1]);
        let d = t.decode(&s).unwrap();
        assert_eq!(&d.json[..], br#"{"id":1,"value":1.5}"#);
        assert_eq!(d.key.as_deref(), Some(r#"{"id":1}"#));
        let k = RawKey::from_bytes(1, vec![1, 0, 0, 0]);
        assert_eq!(t.dispose_key(&k).as_deref(), Some(r#"{"id":1}"#));
        assert!(
            t.dispose_key(&RawKey::from_bytes(1, vec![2, 0, 0, 0]))
                .is_none()
        );
    }

    #[test]
    fn appendable_is_xcdr2_and_errors_name_the_member() {
        let reg = reg();
        let t = Typed::lookup(&reg, "test::A").unwrap();
        let s = t
            .encode(&serde_json::json!({"id": 2, "label": "x"}))
            .unwrap();
        assert_eq!(s.rep, 0x0009);
        let e = t.encode(&serde_json::json!({"id": "nope"})).unwrap_err();
        assert!(e.to_string().contains("id"), "{e}");
        assert!(Typed::lookup(&reg, "test::Missing").is_none());
        let v = Typed::parse(br#"{"id":3}"#, &Format::Json).unwrap();
        assert_eq!(v["id"], 3);
        assert!(Typed::parse(b"{", &Format::Json).is_err());
    }
}
