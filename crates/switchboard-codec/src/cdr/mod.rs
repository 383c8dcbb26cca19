//! CDR (XCDR1 and XCDR2) <-> JSON for types known only at run time.
//!
//! A DDS sample's bytes and a [`TypeRegistry`] type become a JSON value, and
//! back, with no generated code. All six XTypes encodings are read and
//! written, both byte orders, with the 4-byte encapsulation header:
//!
//! | representation id | meaning | used for |
//! |---|---|---|
//! | `00 00` / `00 01` | CDR_BE / CDR_LE (XCDR1 PLAIN_CDR) | final and appendable types in XCDR1 |
//! | `00 02` / `00 03` | PL_CDR_BE / PL_CDR_LE (XCDR1 parameter list) | mutable types in XCDR1 |
//! | `00 06` / `00 07` | CDR2_BE / CDR2_LE (PLAIN_CDR2) | final types in XCDR2 |
//! | `00 08` / `00 09` | D_CDR2_BE / D_CDR2_LE (DELIMITED_CDR2) | appendable types in XCDR2 (DHEADER) |
//! | `00 0a` / `00 0b` | PL_CDR2_BE / PL_CDR2_LE | mutable types in XCDR2 (DHEADER + EMHEADERs) |
//!
//! XCDR1 aligns 8-byte values to 8, XCDR2 to at most 4; alignment is
//! relative to the start of the body (after the header), and in XCDR1 it
//! restarts at the start of each parameter (mutable members, optional members).
//! In XCDR2, sequences and arrays of non-primitive elements (strings, enums,
//! structs, ...) carry a DHEADER. The encoder writes what Cyclone DDS writes
//! (parameter headers in the extended form, EMHEADER length codes as Cyclone
//! chooses them, no trailing padding); the decoder also accepts the other
//! legal forms (short PL_CDR parameter ids, any length code, trailing
//! padding, appendable samples from older or newer type versions).
//!
//! # JSON mapping
//!
//! | IDL | JSON (decoder output) | also accepted as input |
//! |---|---|---|
//! | struct | object, one key per member in declaration order | missing members take their default (`@default`, else 0, `""`, `[]`, first enumerator, ...) |
//! | `@optional` member | the value, or `null` when absent | key missing = absent |
//! | boolean | `true` / `false` | |
//! | integers up to 32 bits | number | numeric string |
//! | `long long`, `unsigned long long` | number when its magnitude is at most 2^53 (exact in a double), else a decimal string | number or string |
//! | float, double | number; NaN and infinities as the strings `"NaN"`, `"Infinity"`, `"-Infinity"` | those strings, numeric strings |
//! | char, wchar | one-character string (char is Latin-1) | |
//! | string, wstring | string | |
//! | enum | the enumerator name (an unknown value decodes as its number) | name (also scoped `Color::RED`) or value |
//! | sequence, array | array; multi-dimensional arrays as nested arrays | |
//! | sequence/array of octet or uint8 | array of numbers | base64 text (standard alphabet) |
//! | union | object with the active member: `{"name": value}`; the key `"_d"` holds the discriminator when it is not the first label of that member (or for the default branch, or when no member is active) | `{"_d": d}` selects the branch by discriminator |
//!
//! Members not in the type are an error; so is a value of the wrong shape, a
//! bound exceeded or an integer out of range. Every error names the member
//! path: `pose.position.x: expected number, found string`.
//!
//! # Using it from a DDS adapter
//!
//! ```
//! use switchboard_codec::cdr::{self, Encoding};
//! use switchboard_codec::idl::TypeRegistry;
//!
//! let reg = TypeRegistry::from_idl_str("t.idl",
//!     "module sensors { @appendable struct Temperature { @key string id; double celsius; }; };")?;
//! let ty = reg.get("sensors::Temperature").expect("declared");
//! let json = serde_json::json!({"id": "kitchen", "celsius": 21.5});
//!
//! let bytes = cdr::encode_from_json(&reg, ty, &json, Encoding::XCDR2_LE)?;
//! assert_eq!(&bytes[..2], &[0x00, 0x09]); // D_CDR2_LE: appendable in XCDR2
//! assert_eq!(cdr::decode_to_json(&reg, ty, &bytes)?, json);
//! assert_eq!(cdr::key_of(&reg, ty, &json)?, serde_json::json!({"id": "kitchen"}));
//!
//! // rustdds hands over the representation id and the body separately:
//! let text = cdr::decode_body_to_json_text(&reg, ty, [bytes[0], bytes[1]], &bytes[4..])?;
//! assert_eq!(text, br#"{"id":"kitchen","celsius":21.5}"#);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod decode;
mod defaults;
mod encode;
mod error;
mod key;
mod reader;
mod sink;
mod stream;
mod union;
mod writer;

pub use error::{CdrError, CdrErrorKind};
pub use key::{key_cdr, key_hash, key_of};

use serde_json::Value;

use crate::idl::{
    Extensibility, Primitive, Type, TypeDef, TypeId, TypeRegistry, UnionCase, UnionType,
};
use decode::Decoder;
use encode::Encoder;
use reader::Reader;
use sink::{Sink, TextSink, ValueSink};
use writer::Writer;

/// How deep types may nest (structs in sequences in structs ...).
pub const MAX_DEPTH: usize = 100;

/// XCDR version.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum XcdrVersion {
    /// XCDR version 1 (classic CDR, PL_CDR for mutable types).
    Xcdr1,
    /// XCDR version 2 (XTypes 1.3).
    Xcdr2,
}

/// An encoding to write: XCDR version and byte order. The encapsulation kind
/// (plain, delimited or parameter list) follows from the type's extensibility.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Encoding {
    /// XCDR version.
    pub version: XcdrVersion,
    /// Big-endian (`true`) or little-endian.
    pub big_endian: bool,
}

impl Encoding {
    /// XCDR1, little endian (what Cyclone writes for final types by default).
    pub const XCDR1_LE: Encoding = Encoding {
        version: XcdrVersion::Xcdr1,
        big_endian: false,
    };
    /// XCDR1, big endian.
    pub const XCDR1_BE: Encoding = Encoding {
        version: XcdrVersion::Xcdr1,
        big_endian: true,
    };
    /// XCDR2, little endian (what Cyclone writes for appendable and mutable types).
    pub const XCDR2_LE: Encoding = Encoding {
        version: XcdrVersion::Xcdr2,
        big_endian: false,
    };
    /// XCDR2, big endian.
    pub const XCDR2_BE: Encoding = Encoding {
        version: XcdrVersion::Xcdr2,
        big_endian: true,
    };

    /// The encoding a representation id (first two header bytes) denotes.
    pub fn from_representation_id(id: [u8; 2]) -> Result<Encoding, CdrError> {
        if id[0] != 0 {
            return Err(CdrError::malformed(format!(
                "unknown representation id {:02x}{:02x}",
                id[0], id[1]
            )));
        }
        let version = match id[1] {
            0x00..=0x03 => XcdrVersion::Xcdr1,
            0x06..=0x0b => XcdrVersion::Xcdr2,
            other => {
                return Err(CdrError::new(
                    CdrErrorKind::Unsupported,
                    format!("unsupported representation id 00{other:02x}"),
                ));
            }
        };
        Ok(Encoding {
            version,
            big_endian: id[1] & 1 == 0,
        })
    }

    /// The representation id for a type of `ext`ensibility in this encoding.
    pub fn representation_id(self, ext: Extensibility) -> [u8; 2] {
        let base = match (self.version, ext) {
            (XcdrVersion::Xcdr1, Extensibility::Mutable) => 0x02,
            (XcdrVersion::Xcdr1, _) => 0x00,
            (XcdrVersion::Xcdr2, Extensibility::Final) => 0x06,
            (XcdrVersion::Xcdr2, Extensibility::Appendable) => 0x08,
            (XcdrVersion::Xcdr2, Extensibility::Mutable) => 0x0a,
        };
        [0, base | u8::from(!self.big_endian)]
    }

    fn v2(self) -> bool {
        self.version == XcdrVersion::Xcdr2
    }

    fn max_align(self) -> usize {
        if self.v2() { 4 } else { 8 }
    }
}

/// The extensibility of the type `ty` names (final for typedefs of non-aggregates).
pub fn extensibility(reg: &TypeRegistry, ty: TypeId) -> Extensibility {
    match reg.resolve(&Type::Named(ty)) {
        Type::Named(id) => match reg.def(*id) {
            TypeDef::Struct(s) => s.extensibility,
            TypeDef::Union(u) => u.extensibility,
            _ => Extensibility::Final,
        },
        _ => Extensibility::Final,
    }
}

/// The representation id `encode_from_json(reg, ty, _, enc)` writes.
pub fn representation_id(reg: &TypeRegistry, ty: TypeId, enc: Encoding) -> [u8; 2] {
    enc.representation_id(extensibility(reg, ty))
}

/// The encoding Cyclone DDS writers use by default for `ty`: XCDR2 when the
/// type is appendable or mutable, or contains (at any depth) an optional
/// member or an appendable or mutable type; XCDR1 otherwise.
pub fn preferred_encoding(reg: &TypeRegistry, ty: TypeId, big_endian: bool) -> Encoding {
    let mut seen = Vec::new();
    let v2 = needs_xcdr2(reg, &Type::Named(ty), &mut seen);
    Encoding {
        version: if v2 {
            XcdrVersion::Xcdr2
        } else {
            XcdrVersion::Xcdr1
        },
        big_endian,
    }
}

fn needs_xcdr2(reg: &TypeRegistry, ty: &Type, seen: &mut Vec<TypeId>) -> bool {
    match ty {
        Type::Primitive(_) | Type::String { .. } => false,
        Type::Sequence { elem, .. } | Type::Array { elem, .. } => needs_xcdr2(reg, elem, seen),
        Type::Named(id) => {
            if seen.contains(id) {
                return false;
            }
            seen.push(*id);
            match reg.def(*id) {
                TypeDef::Alias { ty, .. } => needs_xcdr2(reg, ty, seen),
                TypeDef::Enum(_) => false,
                TypeDef::Struct(st) => {
                    st.extensibility != Extensibility::Final
                        || st
                            .members
                            .iter()
                            .any(|m| m.optional || needs_xcdr2(reg, &m.ty, seen))
                }
                TypeDef::Union(u) => {
                    u.extensibility != Extensibility::Final
                        || u.cases.iter().any(|c| needs_xcdr2(reg, &c.ty, seen))
                }
            }
        }
    }
}

fn split_header(bytes: &[u8]) -> Result<([u8; 2], &[u8]), CdrError> {
    if bytes.len() < 4 {
        return Err(CdrError::truncated(4, bytes.len()));
    }
    Ok(([bytes[0], bytes[1]], &bytes[4..]))
}

fn decode_with<S: Sink>(
    reg: &TypeRegistry,
    ty: TypeId,
    id: [u8; 2],
    body: &[u8],
    sink: S,
) -> Result<S, CdrError> {
    let enc = Encoding::from_representation_id(id)?;
    check_id(reg, ty)?;
    let r = Reader::new(body, enc.big_endian, enc.max_align());
    let mut d = Decoder::new(reg, r, sink, enc.v2());
    d.value(&Type::Named(ty))?;
    let left = d.r.remaining();
    if left > 3 && extensibility(reg, ty) == Extensibility::Final && enc.v2() {
        return Err(CdrError::malformed(format!(
            "{left} unexpected bytes after the sample"
        )));
    }
    Ok(d.s)
}

fn check_id(reg: &TypeRegistry, ty: TypeId) -> Result<(), CdrError> {
    if reg.types().nth(ty.0 as usize).is_none() {
        return Err(CdrError::new(
            CdrErrorKind::Unsupported,
            "type id from another registry",
        ));
    }
    Ok(())
}

/// Decodes a whole serialized payload (4-byte encapsulation header, then the
/// body) of type `ty` into a JSON value.
pub fn decode_to_json(reg: &TypeRegistry, ty: TypeId, bytes: &[u8]) -> Result<Value, CdrError> {
    let (id, body) = split_header(bytes)?;
    decode_body_to_json(reg, ty, id, body)
}

/// Decodes a body without its header, given the header's representation id.
pub fn decode_body_to_json(
    reg: &TypeRegistry,
    ty: TypeId,
    representation_id: [u8; 2],
    body: &[u8],
) -> Result<Value, CdrError> {
    Ok(decode_with(reg, ty, representation_id, body, ValueSink::default())?.finish())
}

/// Decodes a whole serialized payload straight into compact JSON text (no
/// intermediate [`Value`]; the fast path for routing to JSON destinations).
pub fn decode_to_json_text(
    reg: &TypeRegistry,
    ty: TypeId,
    bytes: &[u8],
) -> Result<Vec<u8>, CdrError> {
    let (id, body) = split_header(bytes)?;
    decode_body_to_json_text(reg, ty, id, body)
}

/// [`decode_to_json_text`] for a body without its header.
pub fn decode_body_to_json_text(
    reg: &TypeRegistry,
    ty: TypeId,
    representation_id: [u8; 2],
    body: &[u8],
) -> Result<Vec<u8>, CdrError> {
    let cap = body.len().saturating_mul(2).min(64 << 20) + 64;
    Ok(decode_with(reg, ty, representation_id, body, TextSink::new(cap))?.out)
}

/// Encodes `value` as a sample of type `ty`: the 4-byte encapsulation header
/// (representation id from `enc` and the type's extensibility, options 0)
/// followed by the body.
pub fn encode_from_json(
    reg: &TypeRegistry,
    ty: TypeId,
    value: &Value,
    enc: Encoding,
) -> Result<Vec<u8>, CdrError> {
    check_id(reg, ty)?;
    let id = representation_id(reg, ty, enc);
    let mut w = Writer::new(enc.big_endian, enc.max_align(), 256);
    w.buf.extend_from_slice(&[id[0], id[1], 0, 0]);
    w.origin = 4;
    let mut e = Encoder::new(reg, w, enc.v2());
    e.value(&Type::Named(ty), value)?;
    Ok(e.w.buf)
}

/// Encodes the body only (no header); the representation id to send with it
/// is [`representation_id`]`(reg, ty, enc)`.
pub fn encode_body_from_json(
    reg: &TypeRegistry,
    ty: TypeId,
    value: &Value,
    enc: Encoding,
) -> Result<Vec<u8>, CdrError> {
    check_id(reg, ty)?;
    let mut e = Encoder::new(
        reg,
        Writer::new(enc.big_endian, enc.max_align(), 256),
        enc.v2(),
    );
    e.value(&Type::Named(ty), value)?;
    Ok(e.w.buf)
}

/// Encodes JSON text (see [`encode_from_json`]) without building a
/// [`Value`]: the type drives the JSON parser and CDR is written as the
/// tokens come (the fast path for JSON from HTTP, MQTT, WebSocket).
pub fn encode_from_json_text(
    reg: &TypeRegistry,
    ty: TypeId,
    json: &[u8],
    enc: Encoding,
) -> Result<Vec<u8>, CdrError> {
    check_id(reg, ty)?;
    let id = representation_id(reg, ty, enc);
    let mut w = Writer::new(enc.big_endian, enc.max_align(), json.len() / 2 + 64);
    w.buf.extend_from_slice(&[id[0], id[1], 0, 0]);
    w.origin = 4;
    let mut e = Encoder::new(reg, w, enc.v2());
    stream::encode_text(&mut e, &Type::Named(ty), json)?;
    Ok(e.w.buf)
}

/// [`encode_from_json_text`] without the header (for DDS stacks that send the
/// representation id separately; it is [`representation_id`]`(reg, ty, enc)`).
pub fn encode_body_from_json_text(
    reg: &TypeRegistry,
    ty: TypeId,
    json: &[u8],
    enc: Encoding,
) -> Result<Vec<u8>, CdrError> {
    check_id(reg, ty)?;
    let w = Writer::new(enc.big_endian, enc.max_align(), json.len() / 2 + 64);
    let mut e = Encoder::new(reg, w, enc.v2());
    stream::encode_text(&mut e, &Type::Named(ty), json)?;
    Ok(e.w.buf)
}

/// Re-encodes a sample in another encoding (e.g. XCDR2 from a Cyclone writer
/// to XCDR1 for a reader that only accepts that).
pub fn transcode(
    reg: &TypeRegistry,
    ty: TypeId,
    bytes: &[u8],
    enc: Encoding,
) -> Result<Vec<u8>, CdrError> {
    encode_from_json(reg, ty, &decode_to_json(reg, ty, bytes)?, enc)
}

// ----- helpers shared by the decoder and the encoder -----

/// The primitive a (possibly aliased) type is, if it is one.
pub(crate) fn prim_of(reg: &TypeRegistry, ty: &Type) -> Option<Primitive> {
    match reg.resolve(ty) {
        Type::Primitive(p) => Some(*p),
        _ => None,
    }
}

/// Bytes of an enum on the wire: `@bit_bound` shrinks it in XCDR2 only.
pub(crate) fn enum_wire_size(bit_bound: u8, v2: bool) -> usize {
    match (v2, bit_bound) {
        (true, 1..=8) => 1,
        (true, 9..=16) => 2,
        _ => 4,
    }
}

/// The discriminator written for branch `c` when JSON names only the member:
/// its first label; for the default branch the value Cyclone DDS picks (enum:
/// the smallest non-negative value no enumerator has; boolean: true unless a
/// label takes it; signed integers: -1, -2, ... ; unsigned and char: 0, 1, ...
/// the first that no label uses).
pub(crate) fn canonical_discriminator(reg: &TypeRegistry, u: &UnionType, c: &UnionCase) -> i64 {
    if let Some(l) = c.labels.first() {
        return *l;
    }
    let used = |v: i64| u.cases.iter().any(|x| x.labels.contains(&v));
    match reg.resolve(&u.discriminator) {
        Type::Named(id) => match reg.def(*id) {
            TypeDef::Enum(e) => (0..)
                .find(|v| !e.enumerators.iter().any(|x| i64::from(x.1) == *v))
                .unwrap_or(0),
            _ => 0,
        },
        Type::Primitive(Primitive::Bool) => i64::from(!used(1)),
        Type::Primitive(
            Primitive::Int8 | Primitive::Int16 | Primitive::Int32 | Primitive::Int64,
        ) => (1..).map(|v: i64| -v).find(|v| !used(*v)).unwrap_or(-1),
        _ => (0..).find(|v| !used(*v)).unwrap_or(0),
    }
}

#[cfg(test)]
mod tests;
