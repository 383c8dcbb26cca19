//! Sans-IO payload codecs: conversion between JSON, CBOR, text and octets.
//!
//! No I/O and no async, so everything here can be fuzzed and benchmarked alone.
//! The router calls [`transcode`] when a route asks for a format other than the
//! message's own.
//!
//! | from \ to | json | cbor | text | octets |
//! |---|---|---|---|---|
//! | json | same | CBOR of the value | the JSON text | the JSON text |
//! | cbor | JSON of the value (byte strings become base64 strings) | same | JSON text of the value | the CBOR bytes |
//! | text | a JSON string | a CBOR text string | same | the UTF-8 bytes |
//! | octets | the bytes if they are valid JSON text, else a base64 JSON string | a CBOR byte string | the bytes if valid UTF-8 | same |
//!
//! ```
//! use switchboard_codec::transcode;
//! use switchboard_model::Format;
//!
//! let cbor = transcode(br#"{"a":[1,2]}"#.as_slice().into(), &Format::Json, &Format::Cbor)?;
//! let json = transcode(cbor, &Format::Cbor, &Format::Json)?;
//! assert_eq!(&json[..], br#"{"a":[1,2]}"#);
//! # Ok::<(), switchboard_codec::CodecError>(())
//! ```

pub mod cdr;
#[doc(hidden)]
pub mod fuzzing;
pub mod idl;
mod typed;

pub use cdr::{CdrError, Encoding};
pub use idl::{IdlError, TypeId, TypeRegistry};
pub use typed::transcode_typed;

use base64::Engine;
use bytes::Bytes;
use switchboard_model::Format;

/// How deep nested JSON/CBOR values may be before they are refused.
pub const MAX_DEPTH: usize = 128;

/// Why a payload could not be converted.
#[derive(Debug, thiserror::Error)]
pub enum CodecError {
    /// The payload is not valid in its declared format.
    #[error("invalid {format} payload: {reason}")]
    Invalid {
        /// The declared format.
        format: &'static str,
        /// What the parser said.
        reason: String,
    },
    /// No conversion exists between the two formats.
    #[error("cannot convert {from} to {to}")]
    Unsupported {
        /// Source format.
        from: String,
        /// Target format.
        to: String,
    },
}

fn invalid(format: &'static str, reason: impl ToString) -> CodecError {
    CodecError::Invalid {
        format,
        reason: reason.to_string(),
    }
}

/// Converts `payload` from format `from` to format `to`. Equal formats and
/// conversions to octets return the payload unchanged (no copy).
pub fn transcode(payload: Bytes, from: &Format, to: &Format) -> Result<Bytes, CodecError> {
    if from == to {
        return Ok(payload);
    }
    match (from, to) {
        (_, Format::Octets) => Ok(payload),
        (Format::Json, Format::Text) => {
            validate_json(&payload)?;
            Ok(payload)
        }
        (Format::Json, Format::Cbor) => {
            let v = parse_json(&payload)?;
            to_cbor(&json_to_cbor(v))
        }
        (Format::Cbor, Format::Json) => {
            let v = parse_cbor(&payload)?;
            let j = cbor_to_json(v)?;
            serde_json::to_vec(&j)
                .map(Bytes::from)
                .map_err(|e| invalid("json", e))
        }
        (Format::Cbor, Format::Text) => {
            transcode(transcode(payload, from, &Format::Json)?, &Format::Json, to)
        }
        (Format::Text, Format::Json) => {
            let s = std::str::from_utf8(&payload).map_err(|e| invalid("text", e))?;
            serde_json::to_vec(s)
                .map(Bytes::from)
                .map_err(|e| invalid("json", e))
        }
        (Format::Text, Format::Cbor) => {
            let s = std::str::from_utf8(&payload).map_err(|e| invalid("text", e))?;
            to_cbor(&ciborium::Value::Text(s.to_owned()))
        }
        (Format::Octets, Format::Json) => {
            if validate_json(&payload).is_ok() {
                Ok(payload)
            } else {
                let b64 = base64::engine::general_purpose::STANDARD.encode(&payload);
                serde_json::to_vec(&b64)
                    .map(Bytes::from)
                    .map_err(|e| invalid("json", e))
            }
        }
        (Format::Octets, Format::Cbor) => to_cbor(&ciborium::Value::Bytes(payload.to_vec())),
        (Format::Octets | Format::Mime(_), Format::Text) => {
            std::str::from_utf8(&payload).map_err(|e| invalid("text", e))?;
            Ok(payload)
        }
        _ => Err(CodecError::Unsupported {
            from: from.name().to_owned(),
            to: to.name().to_owned(),
        }),
    }
}

/// Checks that `payload` is one valid JSON value.
pub fn validate_json(payload: &[u8]) -> Result<(), CodecError> {
    parse_json(payload).map(drop)
}

/// Parses one JSON value (serde_json limits nesting to 128 levels).
pub fn parse_json(payload: &[u8]) -> Result<serde_json::Value, CodecError> {
    serde_json::from_slice(payload).map_err(|e| invalid("json", e))
}

/// Parses one CBOR value, refusing nesting deeper than [`MAX_DEPTH`].
pub fn parse_cbor(payload: &[u8]) -> Result<ciborium::Value, CodecError> {
    ciborium::de::from_reader_with_recursion_limit(payload, MAX_DEPTH)
        .map_err(|e| invalid("cbor", e))
}

fn to_cbor(v: &ciborium::Value) -> Result<Bytes, CodecError> {
    let mut out = Vec::new();
    ciborium::ser::into_writer(v, &mut out).map_err(|e| invalid("cbor", e))?;
    Ok(out.into())
}

/// Maps a JSON value to CBOR (integers stay integers, floats stay floats).
pub fn json_to_cbor(v: serde_json::Value) -> ciborium::Value {
    use ciborium::Value as C;
    use serde_json::Value as J;
    match v {
        J::Null => C::Null,
        J::Bool(b) => C::Bool(b),
        J::Number(n) => {
            if let Some(u) = n.as_u64() {
                C::Integer(u.into())
            } else if let Some(i) = n.as_i64() {
                C::Integer(i.into())
            } else {
                C::Float(n.as_f64().unwrap_or(f64::NAN))
            }
        }
        J::String(s) => C::Text(s),
        J::Array(a) => C::Array(a.into_iter().map(json_to_cbor).collect()),
        J::Object(o) => C::Map(
            o.into_iter()
                .map(|(k, v)| (C::Text(k), json_to_cbor(v)))
                .collect(),
        ),
    }
}

/// Maps a CBOR value to JSON: byte strings become base64 strings, tags are
/// dropped, non-string map keys are written as their JSON text, NaN and
/// infinities become `null` (JSON has no such numbers).
pub fn cbor_to_json(v: ciborium::Value) -> Result<serde_json::Value, CodecError> {
    use ciborium::Value as C;
    use serde_json::Value as J;
    Ok(match v {
        C::Null => J::Null,
        C::Bool(b) => J::Bool(b),
        C::Integer(i) => {
            let n: i128 = i.into();
            if let Ok(u) = u64::try_from(n) {
                J::from(u)
            } else if let Ok(s) = i64::try_from(n) {
                J::from(s)
            } else {
                J::String(n.to_string())
            }
        }
        C::Float(f) => serde_json::Number::from_f64(f).map_or(J::Null, J::Number),
        C::Text(s) => J::String(s),
        C::Bytes(b) => J::String(base64::engine::general_purpose::STANDARD.encode(b)),
        C::Array(a) => J::Array(a.into_iter().map(cbor_to_json).collect::<Result<_, _>>()?),
        C::Map(m) => {
            let mut o = serde_json::Map::new();
            for (k, v) in m {
                let key = match k {
                    C::Text(s) => s,
                    // Stringifying nested keys re-escapes them at every level:
                    // a few hundred bytes of nested map keys would become
                    // gigabytes of text.
                    C::Map(_) | C::Array(_) | C::Tag(..) => {
                        return Err(invalid("cbor", "map keys must be scalars"));
                    }
                    other => cbor_to_json(other)?.to_string(),
                };
                o.insert(key, cbor_to_json(v)?);
            }
            J::Object(o)
        }
        C::Tag(_, inner) => cbor_to_json(*inner)?,
        other => return Err(invalid("cbor", format!("unsupported value {other:?}"))),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tc(p: &[u8], from: Format, to: Format) -> Result<Bytes, CodecError> {
        transcode(Bytes::copy_from_slice(p), &from, &to)
    }

    #[test]
    fn json_cbor_round_trip() {
        let src = br#"{"a":1,"b":[true,null,-5,2.5],"c":"x"}"#;
        let c = tc(src, Format::Json, Format::Cbor).unwrap();
        let back = tc(&c, Format::Cbor, Format::Json).unwrap();
        let a: serde_json::Value = serde_json::from_slice(src).unwrap();
        let b: serde_json::Value = serde_json::from_slice(&back).unwrap();
        assert_eq!(a, b);
    }

    #[test]
    fn text_and_octets() {
        assert_eq!(
            &tc(b"hi \"x\"", Format::Text, Format::Json).unwrap()[..],
            br#""hi \"x\"""#
        );
        assert_eq!(
            &tc(b"[1]", Format::Octets, Format::Json).unwrap()[..],
            b"[1]"
        );
        assert_eq!(
            &tc(&[0xff, 0], Format::Octets, Format::Json).unwrap()[..],
            br#""/wA=""#
        );
        assert!(tc(&[0xff], Format::Octets, Format::Text).is_err());
        assert!(tc(b"{", Format::Json, Format::Cbor).is_err());
        assert!(tc(&[0xff, 0xff], Format::Cbor, Format::Json).is_err());
        let p = Bytes::from_static(b"abc");
        let out = transcode(p.clone(), &Format::Json, &Format::Octets).unwrap();
        assert_eq!(out.as_ptr(), p.as_ptr());
    }

    #[test]
    fn deep_cbor_is_refused() {
        let mut deep = vec![0x81u8; 10_000];
        deep.push(0x01);
        assert!(tc(&deep, Format::Cbor, Format::Json).is_err());
    }
}
