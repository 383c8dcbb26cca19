//! JSON text -> CDR without building a `serde_json::Value`: the type drives a
//! serde `DeserializeSeed` over the JSON tokens and writes CDR as they come.
//! Struct members that arrive in declaration order (the usual case, and
//! always for JSON this crate produced) are streamed; members that arrive out
//! of order are parsed to a `Value` and written when their turn comes. Unions
//! are parsed to a `Value` (their discriminator may follow the member).

use std::fmt;

use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::Value;

use super::decode::check_bound;
use super::encode::{Encoder, decode_base64, default_member_json, enum_value};
use super::error::CdrError;
use super::prim_of;
use crate::idl::{Primitive, StructType, Type, TypeDef};

/// Encodes JSON text; errors carry the member path like the `Value` encoder.
pub(crate) fn encode_text(enc: &mut Encoder<'_>, ty: &Type, json: &[u8]) -> Result<(), CdrError> {
    let mut de = serde_json::Deserializer::from_slice(json);
    let mut pending = None;
    let r = Seed {
        enc,
        ty,
        pending: &mut pending,
    }
    .deserialize(&mut de);
    match (r, pending) {
        (Ok(()), _) => de
            .end()
            .map_err(|e| CdrError::json(format!("invalid JSON: {e}"))),
        (Err(_), Some(e)) => Err(e),
        (Err(e), None) => Err(CdrError::json(format!("invalid JSON: {e}"))),
    }
}

struct Seed<'a, 'r, 't> {
    enc: &'a mut Encoder<'r>,
    ty: &'t Type,
    /// The real error, kept here while serde unwinds with a placeholder.
    pending: &'a mut Option<CdrError>,
}

fn fail<E: de::Error>(pending: &mut Option<CdrError>, e: CdrError) -> E {
    let msg = e.to_string();
    *pending = Some(e);
    E::custom(msg)
}

/// Adds a path segment to the pending error while unwinding.
fn wrap<T, E>(
    pending: &mut Option<CdrError>,
    r: Result<T, E>,
    f: impl FnOnce(CdrError) -> CdrError,
) -> Result<T, E> {
    if r.is_err()
        && let Some(e) = pending.take()
    {
        *pending = Some(f(e));
    }
    r
}

impl<'de> DeserializeSeed<'de> for Seed<'_, '_, '_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        let reg = self.enc.reg;
        match self.ty {
            Type::Primitive(_) | Type::String { .. } => d.deserialize_any(Scalar(self)),
            Type::Sequence { .. } | Type::Array { .. } => {
                d.deserialize_any(Collection { seed: self, dim: 0 })
            }
            Type::Named(id) => match reg.def(*id) {
                TypeDef::Alias { ty, .. } => Seed {
                    enc: self.enc,
                    ty,
                    pending: self.pending,
                }
                .deserialize(d),
                TypeDef::Struct(st) => d.deserialize_map(StructVisitor { seed: self, st }),
                TypeDef::Enum(_) | TypeDef::Union(_) => {
                    let v = Value::deserialize(d)?;
                    let r = match reg.def(*id) {
                        TypeDef::Enum(e) => {
                            enum_value(e, &v).map(|x| self.enc.enum_wire(e.bit_bound, x))
                        }
                        TypeDef::Union(u) => self.enc.union_(u, &v),
                        _ => Ok(()),
                    };
                    r.map_err(|e| fail(self.pending, e))
                }
            },
        }
    }
}

use serde::Deserialize;

/// Primitives and strings: the scalar as a small `Value`, then the `Value`
/// encoder's conversions (one place for ranges, NaN strings, chars).
struct Scalar<'a, 'r, 't>(Seed<'a, 'r, 't>);

impl Scalar<'_, '_, '_> {
    fn int<E: de::Error>(self, i: i128, v: Value) -> Result<(), E> {
        let Seed { enc, ty, pending } = self.0;
        if let Type::Primitive(p) = enc.reg.resolve(ty) {
            match enc.int_fast(*p, i) {
                Ok(true) => return Ok(()),
                Ok(false) => {}
                Err(e) => return Err(fail(pending, e)),
            }
        }
        Scalar(Seed { enc, ty, pending }).put(v)
    }

    fn put<E: de::Error>(self, v: Value) -> Result<(), E> {
        let Seed { enc, ty, pending } = self.0;
        enc.value(ty, &v).map_err(|e| fail(pending, e))
    }
}

impl<'de> Visitor<'de> for Scalar<'_, '_, '_> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON scalar")
    }
    fn visit_bool<E: de::Error>(self, v: bool) -> Result<(), E> {
        self.put(Value::Bool(v))
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<(), E> {
        self.int(i128::from(v), Value::from(v))
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<(), E> {
        self.int(i128::from(v), Value::from(v))
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<(), E> {
        let Seed { enc, ty, pending } = self.0;
        match enc.reg.resolve(ty) {
            Type::Primitive(Primitive::Float64) => {
                enc.w.u64(v.to_bits());
                Ok(())
            }
            Type::Primitive(Primitive::Float32) => {
                enc.w.u32((v as f32).to_bits());
                Ok(())
            }
            _ => Scalar(Seed { enc, ty, pending }).put(Value::from(v)),
        }
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<(), E> {
        let Seed { enc, ty, pending } = self.0;
        match enc.reg.resolve(ty) {
            Type::String { bound, wide } => enc
                .str_value(*bound, *wide, v)
                .map_err(|e| fail(pending, e)),
            _ => Scalar(Seed { enc, ty, pending }).put(Value::String(v.to_owned())),
        }
    }
    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        self.put(Value::Null)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, _: A) -> Result<(), A::Error> {
        self.put(Value::Array(Vec::new()))
    }
    fn visit_map<A: MapAccess<'de>>(self, _: A) -> Result<(), A::Error> {
        self.put(Value::Object(serde_json::Map::new()))
    }
}

/// Sequences and arrays (`dim`: which array dimension this level is).
struct Collection<'a, 'r, 't> {
    seed: Seed<'a, 'r, 't>,
    dim: usize,
}

impl<'de> Visitor<'de> for Collection<'_, '_, '_> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an array")
    }

    fn visit_str<E: de::Error>(self, s: &str) -> Result<(), E> {
        let Seed { enc, ty, pending } = self.seed;
        let r = (|| {
            let (elem, bound, n) = match ty {
                Type::Sequence { elem, bound } => (elem, *bound, None),
                Type::Array { elem, dims } if dims.len() == self.dim + 1 => {
                    (elem, None, Some(dims[self.dim] as usize))
                }
                _ => return Err(CdrError::json("expected array, found string")),
            };
            if !prim_of(enc.reg, elem).is_some_and(Primitive::is_byte) {
                return Err(CdrError::json("expected array, found string"));
            }
            let bytes = decode_base64(s)?;
            check_bound(bytes.len(), bound)?;
            match n {
                None => enc
                    .w
                    .u32(u32::try_from(bytes.len()).map_err(|_| CdrError::json("too long"))?),
                Some(n) if n != bytes.len() => {
                    return Err(CdrError::json(format!(
                        "expected {n} bytes, found {}",
                        bytes.len()
                    )));
                }
                Some(_) => {}
            }
            enc.w.buf.extend_from_slice(&bytes);
            Ok(())
        })();
        r.map_err(|e| fail(pending, e))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let Seed { enc, ty, pending } = self.seed;
        if let Err(e) = enc.enter() {
            return Err(fail(pending, e));
        }
        let (elem, bound, dims) = match ty {
            Type::Sequence { elem, bound } => (&**elem, *bound, None),
            Type::Array { elem, dims } => (&**elem, None, Some(&dims[..])),
            _ => return Err(fail(pending, CdrError::json("unexpected array"))),
        };
        let p = prim_of(enc.reg, elem);
        // DHEADER for non-primitive elements in XCDR2 (outermost level only).
        let dh = (enc.v2 && p.is_none() && self.dim == 0).then(|| enc.w.reserve_u32());
        let count_at = dims.is_none().then(|| enc.w.reserve_u32());
        let last_dim = dims.is_none_or(|d| self.dim + 1 >= d.len());
        let mut n = 0usize;
        // Byte data (the 1 MiB images and point clouds): no per-element dispatch.
        let bytes = last_dim && p.is_some_and(Primitive::is_byte);
        if bytes {
            loop {
                match seq.next_element::<u64>() {
                    Ok(Some(v)) => {
                        let Ok(b) = u8::try_from(v) else {
                            let e = CdrError::json(format!("{v} is out of range for octet"));
                            return Err(fail(pending, e.at_index(n)));
                        };
                        enc.w.u8(b);
                        n += 1;
                        if let Err(e) = check_bound(n, bound) {
                            return Err(fail(pending, e));
                        }
                    }
                    Ok(None) => break,
                    Err(e) => {
                        *pending = Some(CdrError::json(e.to_string()).at_index(n));
                        return Err(e);
                    }
                }
            }
        } else {
            loop {
                let r = if last_dim {
                    seq.next_element_seed(Seed {
                        enc: &mut *enc,
                        ty: elem,
                        pending: &mut *pending,
                    })
                } else {
                    seq.next_element_seed(Nested(Collection {
                        seed: Seed {
                            enc: &mut *enc,
                            ty,
                            pending: &mut *pending,
                        },
                        dim: self.dim + 1,
                    }))
                };
                match wrap(pending, r, |e| e.at_index(n))? {
                    Some(()) => n += 1,
                    None => break,
                }
                if let Err(e) = check_bound(n, bound) {
                    return Err(fail(pending, e));
                }
                if let Some(d) = dims
                    && n > d[self.dim] as usize
                {
                    return Err(fail(
                        pending,
                        CdrError::json(format!("expected an array of {} elements", d[self.dim])),
                    ));
                }
            }
        }
        if let Some(d) = dims
            && n != d[self.dim] as usize
        {
            return Err(fail(
                pending,
                CdrError::json(format!(
                    "expected an array of {} elements, found {n}",
                    d[self.dim]
                )),
            ));
        }
        if let Some(at) = count_at {
            enc.w.patch_u32(at, u32::try_from(n).unwrap_or(u32::MAX));
        }
        if let Some(at) = dh {
            enc.w.patch_len(at);
        }
        enc.depth -= 1;
        Ok(())
    }
}

/// An inner array dimension as a seed.
struct Nested<'a, 'r, 't>(Collection<'a, 'r, 't>);

impl<'de> DeserializeSeed<'de> for Nested<'_, '_, '_> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self.0)
    }
}

struct StructVisitor<'a, 'r, 't> {
    seed: Seed<'a, 'r, 't>,
    st: &'t StructType,
}

/// A member name -> its index.
struct MemberKey<'t>(&'t StructType);

impl<'de> DeserializeSeed<'de> for MemberKey<'_> {
    type Value = Result<usize, String>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for MemberKey<'_> {
    type Value = Result<usize, String>;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a member name")
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        Ok(self
            .0
            .members
            .iter()
            .position(|m| m.name == v)
            .ok_or_else(|| v.to_owned()))
    }
}

/// One member's value: `null` is an absent optional.
struct MemberValue<'a, 'r, 't> {
    seed: Seed<'a, 'r, 't>,
    st: &'t StructType,
    index: usize,
}

impl<'de> DeserializeSeed<'de> for MemberValue<'_, '_, '_> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        if self.st.members[self.index].optional {
            d.deserialize_option(self)
        } else {
            self.visit_some(d)
        }
    }
}

impl<'de> Visitor<'de> for MemberValue<'_, '_, '_> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a member value")
    }
    fn visit_none<E: de::Error>(self) -> Result<(), E> {
        let m = &self.st.members[self.index];
        let Seed { enc, pending, .. } = self.seed;
        enc.member(self.st, m, None).map_err(|e| fail(pending, e))
    }
    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        self.visit_none()
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        let m = &self.st.members[self.index];
        let Seed { enc, pending, .. } = self.seed;
        let Some(ms) = enc.begin_member(self.st, m, true) else {
            return Ok(());
        };
        let r = Seed {
            enc: &mut *enc,
            ty: &m.ty,
            pending: &mut *pending,
        }
        .deserialize(d);
        enc.end_member(ms);
        wrap(pending, r, |e| e.in_field(&m.name))
    }
}

impl<'de> Visitor<'de> for StructVisitor<'_, '_, '_> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let Seed { enc, pending, .. } = self.seed;
        let st = self.st;
        if let Err(e) = enc.enter() {
            return Err(fail(pending, e));
        }
        let ss = enc.begin_struct(st);
        let n = st.members.len();
        let mut next = 0usize;
        let mut slots: Vec<Option<Value>> = Vec::new();
        let mut seen = vec![false; n];
        while let Some(k) = map.next_key_seed(MemberKey(st))? {
            let i = match k {
                Ok(i) => i,
                Err(name) => {
                    return Err(fail(
                        pending,
                        CdrError::json("unknown member").in_field(&name),
                    ));
                }
            };
            if seen[i] {
                return Err(fail(
                    pending,
                    CdrError::json("duplicate member").in_field(&st.members[i].name),
                ));
            }
            seen[i] = true;
            if i == next {
                map.next_value_seed(MemberValue {
                    seed: Seed {
                        enc: &mut *enc,
                        ty: &st.members[i].ty,
                        pending: &mut *pending,
                    },
                    st,
                    index: i,
                })?;
                next += 1;
                while next < n && slots.get(next).is_some_and(Option::is_some) {
                    let v = slots[next].take();
                    write_from_value(enc, st, next, v).map_err(|e| fail(pending, e))?;
                    next += 1;
                }
            } else {
                if slots.is_empty() {
                    slots.resize(n, None);
                }
                let v: Value = map.next_value()?;
                slots[i] = Some(v);
            }
        }
        while next < n {
            let v = slots.get_mut(next).and_then(Option::take);
            let v = match v {
                Some(v) => Some(v),
                None if st.members[next].optional => None,
                None => Some(
                    default_member_json(enc.reg, &st.members[next])
                        .map_err(|e| fail(pending, e))?,
                ),
            };
            write_from_value(enc, st, next, v).map_err(|e| fail(pending, e))?;
            next += 1;
        }
        enc.end_struct(ss);
        enc.depth -= 1;
        Ok(())
    }
}

fn write_from_value(
    enc: &mut Encoder<'_>,
    st: &StructType,
    i: usize,
    v: Option<Value>,
) -> Result<(), CdrError> {
    let m = &st.members[i];
    let v = match v {
        Some(Value::Null) if m.optional => None,
        other => other,
    };
    enc.member(st, m, v.as_ref())
}
