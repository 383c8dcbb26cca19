//! [`transcode_typed`]: [`transcode`](crate::transcode) that also converts
//! `cdr` payloads of a type known to a [`TypeRegistry`] to and from JSON,
//! CBOR and text. The router calls it when a route or destination asks for a
//! format and the message is (or must become) typed CDR.

use bytes::Bytes;
use switchboard_model::Format;

use crate::CodecError;
use crate::cdr::{self, CdrError};
use crate::idl::{TypeId, TypeRegistry};

fn cdr_err(e: CdrError) -> CodecError {
    CodecError::Invalid {
        format: "cdr",
        reason: e.to_string(),
    }
}

fn type_of(reg: &TypeRegistry, f: &Format) -> Result<Option<TypeId>, CodecError> {
    match f {
        Format::Cdr(Some(name)) => reg
            .get(name)
            .map(Some)
            .ok_or_else(|| CodecError::Unsupported {
                from: format!("cdr type {name}"),
                to: "a type known from the IDL files".into(),
            }),
        _ => Ok(None),
    }
}

/// Like [`transcode`](crate::transcode), plus typed CDR:
///
/// - `cdr` with a type name -> `json` (compact JSON text, see the mapping in
///   [`cdr`]), `cbor` (the same value as CBOR), `text` (the JSON text);
/// - `json`, `cbor` or `text` holding JSON -> `cdr` with a type name: encoded
///   in the encoding Cyclone DDS writers use for that type
///   ([`cdr::preferred_encoding`], little endian);
/// - `cdr` -> `octets` and equal formats pass the payload through unchanged;
/// - `cdr` without a type name, or a type the registry does not know, is
///   [`CodecError::Unsupported`].
pub fn transcode_typed(
    reg: &TypeRegistry,
    payload: Bytes,
    from: &Format,
    to: &Format,
) -> Result<Bytes, CodecError> {
    if from == to || matches!(to, Format::Octets) {
        return Ok(payload);
    }
    let from_ty = type_of(reg, from)?;
    let to_ty = type_of(reg, to)?;
    match (from, from_ty, to, to_ty) {
        (Format::Cdr(_), Some(ty), Format::Json | Format::Text, _) => {
            cdr::decode_to_json_text(reg, ty, &payload)
                .map(Bytes::from)
                .map_err(cdr_err)
        }
        (Format::Cdr(_), Some(ty), Format::Cbor, _) => {
            let v = cdr::decode_to_json(reg, ty, &payload).map_err(cdr_err)?;
            let mut out = Vec::new();
            ciborium::ser::into_writer(&crate::json_to_cbor(v), &mut out).map_err(|e| {
                CodecError::Invalid {
                    format: "cbor",
                    reason: e.to_string(),
                }
            })?;
            Ok(out.into())
        }
        (Format::Json | Format::Text, _, Format::Cdr(_), Some(ty)) => {
            let enc = cdr::preferred_encoding(reg, ty, false);
            cdr::encode_from_json_text(reg, ty, &payload, enc)
                .map(Bytes::from)
                .map_err(cdr_err)
        }
        (Format::Cbor, _, Format::Cdr(_), Some(ty)) => {
            let v = crate::cbor_to_json(crate::parse_cbor(&payload)?)?;
            let enc = cdr::preferred_encoding(reg, ty, false);
            cdr::encode_from_json(reg, ty, &v, enc)
                .map(Bytes::from)
                .map_err(cdr_err)
        }
        (Format::Cdr(_), Some(a), Format::Cdr(_), Some(b)) if a == b => Ok(payload),
        (Format::Cdr(_), _, _, _) | (_, _, Format::Cdr(_), _) => Err(CodecError::Unsupported {
            from: from.mime(),
            to: to.mime(),
        }),
        _ => crate::transcode(payload, from, to),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn json_cdr_cbor() {
        let reg =
            TypeRegistry::from_idl_str("t.idl", "module s { struct T { string id; double c; }; };")
                .unwrap();
        let cdr_f = Format::Cdr(Some("s::T".into()));
        let json = Bytes::from_static(br#"{"id":"a","c":1.5}"#);
        let c = transcode_typed(&reg, json.clone(), &Format::Json, &cdr_f).unwrap();
        assert_eq!(&c[..2], &[0, 1]);
        assert_eq!(
            transcode_typed(&reg, c.clone(), &cdr_f, &Format::Json).unwrap(),
            json
        );
        let cb = transcode_typed(&reg, c.clone(), &cdr_f, &Format::Cbor).unwrap();
        assert_eq!(transcode_typed(&reg, cb, &Format::Cbor, &cdr_f).unwrap(), c);
        assert!(transcode_typed(&reg, c.clone(), &Format::Cdr(None), &Format::Json).is_err());
        assert!(
            transcode_typed(&reg, c, &Format::Cdr(Some("x::Y".into())), &Format::Json).is_err()
        );
        let e = transcode_typed(
            &reg,
            Bytes::from_static(br#"{"c":"x"}"#),
            &Format::Json,
            &cdr_f,
        )
        .unwrap_err();
        assert!(e.to_string().contains("c: expected number"), "{e}");
        assert_eq!(
            transcode_typed(
                &reg,
                Bytes::from_static(b"[1]"),
                &Format::Json,
                &Format::Cbor
            )
            .unwrap(),
            crate::transcode(Bytes::from_static(b"[1]"), &Format::Json, &Format::Cbor).unwrap()
        );
    }
}
