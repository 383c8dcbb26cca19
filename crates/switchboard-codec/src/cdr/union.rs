//! Unions, both ways: discriminator, branch selection, the `_d` key of the
//! JSON mapping, DHEADER for appendable unions in XCDR2.

use serde_json::Value;

use super::canonical_discriminator;
use super::decode::Decoder;
use super::encode::{Encoder, default_json, enum_value, expected, json_char, ranged};
use super::error::{CdrError, CdrErrorKind};
use super::sink::Sink;
use crate::idl::{Extensibility, Primitive, Type, TypeDef, UnionType};

impl<S: Sink> Decoder<'_, '_, S> {
    pub(crate) fn union_(&mut self, u: &UnionType) -> Result<(), CdrError> {
        self.enter()?;
        let delimited = self.v2 && u.extensibility != Extensibility::Final;
        self.delimited(delimited, |d| {
            let disc = d.discriminator(&u.discriminator)?;
            let case = u.case_for(disc);
            d.s.begin_object();
            if case.is_none_or(|c| canonical_discriminator(d.reg, u, c) != disc) {
                d.s.key("_d");
                d.emit_discriminator(&u.discriminator, disc);
            }
            if let Some(c) = case {
                d.s.key(&c.name);
                if delimited && d.r.remaining() == 0 {
                    super::defaults::emit(d.reg, &c.ty, &mut d.s, 0)?;
                } else {
                    d.value(&c.ty).map_err(|e| e.in_field(&c.name))?;
                }
            }
            d.s.end_object();
            Ok(())
        })?;
        self.depth -= 1;
        Ok(())
    }

    pub(crate) fn discriminator(&mut self, ty: &Type) -> Result<i64, CdrError> {
        use Primitive::*;
        match self.reg.resolve(ty) {
            Type::Primitive(p) => Ok(match p {
                Bool | Char | Octet | UInt8 => i64::from(self.r.u8()?),
                Int8 => i64::from(self.r.u8()? as i8),
                Int16 => i64::from(self.r.u16()? as i16),
                UInt16 | WChar => i64::from(self.r.u16()?),
                Int32 => i64::from(self.r.u32()? as i32),
                UInt32 => i64::from(self.r.u32()?),
                Int64 | UInt64 => self.r.u64()? as i64,
                Float32 | Float64 => {
                    return Err(CdrError::new(
                        CdrErrorKind::Unsupported,
                        "float discriminator",
                    ));
                }
            }),
            Type::Named(id) => match self.reg.def(*id) {
                TypeDef::Enum(e) => Ok(i64::from(self.enum_wire(e.bit_bound)?)),
                _ => Err(CdrError::new(
                    CdrErrorKind::Unsupported,
                    "bad discriminator type",
                )),
            },
            _ => Err(CdrError::new(
                CdrErrorKind::Unsupported,
                "bad discriminator type",
            )),
        }
    }

    pub(crate) fn emit_discriminator(&mut self, ty: &Type, d: i64) {
        match self.reg.resolve(ty) {
            Type::Primitive(Primitive::Bool) => self.s.bool(d != 0),
            Type::Primitive(Primitive::Char | Primitive::WChar) => {
                let c = u32::try_from(d)
                    .ok()
                    .and_then(char::from_u32)
                    .unwrap_or('\u{fffd}');
                self.s.str(c.encode_utf8(&mut [0; 4]));
            }
            Type::Primitive(Primitive::UInt64) => self.s.u64(d as u64),
            Type::Named(id) => match self.reg.def(*id) {
                TypeDef::Enum(e) => match i32::try_from(d).ok().and_then(|v| e.name_of(v)) {
                    Some(n) => self.s.str(n),
                    None => self.s.i64(d),
                },
                _ => self.s.i64(d),
            },
            _ => self.s.i64(d),
        }
    }
}

impl Encoder<'_> {
    pub(crate) fn union_(&mut self, u: &UnionType, v: &Value) -> Result<(), CdrError> {
        self.enter()?;
        let Value::Object(obj) = v else {
            return Err(expected("object", v));
        };
        let mut disc = match obj.get("_d") {
            Some(d) => Some(
                self.discriminator_value(&u.discriminator, d)
                    .map_err(|e| e.in_field("_d"))?,
            ),
            None => None,
        };
        let mut chosen = None;
        for (k, val) in obj {
            if k == "_d" {
                continue;
            }
            let Some(c) = u.cases.iter().find(|c| &c.name == k) else {
                return Err(CdrError::json("unknown union member").in_field(k));
            };
            if chosen.is_some() {
                return Err(CdrError::json("a union holds one member at a time").in_field(k));
            }
            chosen = Some((c, val));
        }
        let d = match (disc.take(), chosen) {
            (Some(d), Some((c, _))) => {
                if u.case_for(d).map(|x| &x.name) != Some(&c.name) {
                    return Err(CdrError::json(format!(
                        "discriminator does not select `{}`",
                        c.name
                    ))
                    .in_field("_d"));
                }
                d
            }
            (Some(d), None) => d,
            (None, Some((c, _))) => canonical_discriminator(self.reg, u, c),
            (None, None) => return Err(CdrError::json("a union needs a member or `_d`")),
        };
        let delimited = self.v2 && u.extensibility != Extensibility::Final;
        self.delimited(delimited, |e| {
            e.write_discriminator(&u.discriminator, d)?;
            if let Some(c) = u.case_for(d) {
                match chosen {
                    Some((_, val)) => e.value(&c.ty, val),
                    None => {
                        let def = default_json(e.reg, &c.ty)?;
                        e.value(&c.ty, &def)
                    }
                }
                .map_err(|err| err.in_field(&c.name))?;
            }
            Ok(())
        })?;
        self.depth -= 1;
        Ok(())
    }

    pub(crate) fn discriminator_value(&self, ty: &Type, v: &Value) -> Result<i64, CdrError> {
        match self.reg.resolve(ty) {
            Type::Primitive(Primitive::Bool) => match v {
                Value::Bool(b) => Ok(i64::from(*b)),
                other => Err(expected("boolean", other)),
            },
            Type::Primitive(Primitive::Char) => Ok(i64::from(json_char(v, 0xff)?)),
            Type::Primitive(Primitive::WChar) => Ok(i64::from(json_char(v, 0xffff)?)),
            Type::Primitive(Primitive::UInt64) => {
                Ok(ranged(v, 0, u64::MAX.into(), "uint64")? as u64 as i64)
            }
            Type::Named(id) => match self.reg.def(*id) {
                TypeDef::Enum(e) => match v {
                    Value::Number(_) => {
                        Ok(ranged(v, i32::MIN.into(), i32::MAX.into(), "enum")? as i64)
                    }
                    _ => Ok(i64::from(enum_value(e, v)?)),
                },
                _ => Err(CdrError::new(
                    CdrErrorKind::Unsupported,
                    "bad discriminator type",
                )),
            },
            _ => Ok(ranged(v, i64::MIN.into(), i64::MAX.into(), "discriminator")? as i64),
        }
    }

    pub(crate) fn write_discriminator(&mut self, ty: &Type, d: i64) -> Result<(), CdrError> {
        use Primitive::*;
        match self.reg.resolve(ty) {
            Type::Primitive(p) => match p.size() {
                1 => self.w.u8(d as u8),
                2 => self.w.u16(d as u16),
                4 => self.w.u32(d as u32),
                _ => self.w.u64(d as u64),
            },
            Type::Named(id) => match self.reg.def(*id) {
                TypeDef::Enum(e) => self.enum_wire(e.bit_bound, d as i32),
                _ => {
                    return Err(CdrError::new(
                        CdrErrorKind::Unsupported,
                        "bad discriminator type",
                    ));
                }
            },
            _ => {
                return Err(CdrError::new(
                    CdrErrorKind::Unsupported,
                    "bad discriminator type",
                ));
            }
        }
        let _ = (Bool, Float32);
        Ok(())
    }
}
