//! Instance keys of keyed samples: as JSON (for per-key last values and DDS
//! dispose), as the CDR key serialization Cyclone writes, and as the 16-byte
//! RTPS key hash.

use serde_json::{Map, Value};

use super::encode::{Encoder, default_member_json};
use super::error::{CdrError, CdrErrorKind};
use super::writer::Writer;
use super::{Encoding, MAX_DEPTH, prim_of};
use crate::idl::{Extensibility, Type, TypeDef, TypeId, TypeRegistry};

/// The key of a sample given as JSON (as [`decode_to_json`](super::decode_to_json)
/// returns it): an object with the `@key` members only; a key member whose
/// type is itself a keyed struct contributes only its own keys. A keyless type
/// gives an empty object. Missing key members take their default value.
pub fn key_of(reg: &TypeRegistry, ty: TypeId, value: &Value) -> Result<Value, CdrError> {
    key_json(reg, &Type::Named(ty), value, 0)
}

fn key_json(reg: &TypeRegistry, ty: &Type, value: &Value, depth: usize) -> Result<Value, CdrError> {
    if depth > MAX_DEPTH {
        return Err(CdrError::new(CdrErrorKind::TooDeep, "nesting too deep"));
    }
    let st = match reg.resolve(ty) {
        Type::Named(id) => match reg.def(*id) {
            TypeDef::Struct(s) => s,
            _ => return Ok(value.clone()),
        },
        _ => return Ok(value.clone()),
    };
    let Value::Object(obj) = value else {
        return Err(CdrError::json(format!(
            "expected object, found {}",
            super::encode::kind(value)
        )));
    };
    let mut out = Map::new();
    let keyed = st.is_keyed();
    if !keyed && depth == 0 {
        return Ok(Value::Object(out));
    }
    for m in st.members.iter().filter(|m| !keyed || m.key) {
        let v = match obj.get(&m.name) {
            Some(v) => key_json(reg, &m.ty, v, depth + 1),
            None => default_member_json(reg, m),
        }
        .map_err(|e| e.in_field(&m.name))?;
        out.insert(m.name.clone(), v);
    }
    Ok(Value::Object(out))
}

/// The key members of `value` serialized the way Cyclone DDS's
/// `serialize_key` does (key members only, in declaration order, DHEADERs and
/// EMHEADERs kept for appendable/mutable types in XCDR2; no encapsulation
/// header). For a keyless type, every member.
pub fn key_cdr(
    reg: &TypeRegistry,
    ty: TypeId,
    value: &Value,
    enc: Encoding,
) -> Result<Vec<u8>, CdrError> {
    let w = Writer::new(enc.big_endian, enc.max_align(), 64);
    let mut e = Encoder::new(reg, w, enc.v2());
    e.keys_only = true;
    e.value(&Type::Named(ty), value)?;
    Ok(e.w.buf)
}

/// The 16-byte RTPS/XTypes key hash: the XCDR2 big-endian key serialization,
/// zero-padded when the key can never exceed 16 bytes, else its MD5 digest.
/// (Computed from the spec; Cyclone's Python binding does not expose it, so it
/// is not byte-compared against Cyclone.)
pub fn key_hash(reg: &TypeRegistry, ty: TypeId, value: &Value) -> Result<[u8; 16], CdrError> {
    let bytes = key_cdr(reg, ty, value, Encoding::XCDR2_BE)?;
    let max = max_size(reg, &Type::Named(ty), 0, true, 0);
    let mut out = [0u8; 16];
    match max {
        Some(m) if m <= 16 && bytes.len() <= 16 => out[..bytes.len()].copy_from_slice(&bytes),
        _ => out = md5::compute(&bytes).0,
    }
    Ok(out)
}

/// The largest XCDR2 size of `ty` (key members only when `keys`) starting at
/// offset `at`, or `None` when unbounded.
fn max_size(reg: &TypeRegistry, ty: &Type, at: usize, keys: bool, depth: usize) -> Option<usize> {
    if depth > MAX_DEPTH {
        return None;
    }
    let align = |at: usize, a: usize| at.div_ceil(a.min(4)) * a.min(4);
    let end = match reg.resolve(ty) {
        Type::Primitive(p) => align(at, p.size()) + p.size(),
        Type::String {
            bound: Some(b),
            wide,
        } => align(at, 4) + 4 + (*b as usize + 1) * if *wide { 2 } else { 1 },
        Type::String { bound: None, .. } | Type::Sequence { bound: None, .. } => return None,
        Type::Sequence {
            elem,
            bound: Some(b),
        } => {
            let mut p = align(at, 4) + 4 + usize::from(prim_of(reg, elem).is_none()) * 4;
            for _ in 0..*b.min(&65536) {
                p = max_size(reg, elem, p, false, depth + 1)?;
            }
            p
        }
        Type::Array { elem, dims } => {
            let n: usize = dims.iter().map(|d| *d as usize).product();
            let mut p = if prim_of(reg, elem).is_none() {
                align(at, 4) + 4
            } else {
                at
            };
            for _ in 0..n.min(65536) {
                p = max_size(reg, elem, p, false, depth + 1)?;
            }
            p
        }
        Type::Named(id) => match reg.def(*id) {
            TypeDef::Enum(e) => {
                let s = super::enum_wire_size(e.bit_bound, true);
                align(at, s) + s
            }
            TypeDef::Struct(st) => {
                let mut p = at;
                if st.extensibility != Extensibility::Final {
                    p = align(p, 4) + 4;
                }
                let keyed = keys && st.is_keyed();
                for m in st.members.iter().filter(|m| !keyed || m.key) {
                    if st.extensibility == Extensibility::Mutable {
                        p = align(p, 4) + 8;
                    }
                    if m.optional {
                        p += 1;
                    }
                    p = max_size(reg, &m.ty, p, keys, depth + 1)?;
                }
                p
            }
            TypeDef::Union(u) => {
                let mut p = at;
                if u.extensibility != Extensibility::Final {
                    p = align(p, 4) + 4;
                }
                p = max_size(reg, &u.discriminator, p, false, depth + 1)?;
                let mut best = p;
                for c in &u.cases {
                    best = best.max(max_size(reg, &c.ty, p, false, depth + 1)?);
                }
                best
            }
            TypeDef::Alias { .. } => return None,
        },
    };
    Some(end)
}
