//! Type specifications, declarators, bounds and constant coercion.

use super::IdlError;
use super::lexer::Tok;
use super::parser::{Entity, Parser};
use super::types::*;

impl Parser<'_> {
    pub(crate) fn coerce_const(&self, ty: &Type, v: ConstValue) -> Result<ConstValue, String> {
        let ty = self.resolve_alias(ty);
        Ok(match (ty, v) {
            (Type::Primitive(Primitive::Float32 | Primitive::Float64), ConstValue::Int(i)) => {
                ConstValue::Float(i as f64)
            }
            (Type::Primitive(Primitive::Bool), v @ ConstValue::Bool(_)) => v,
            (Type::Primitive(Primitive::Char | Primitive::WChar), v @ ConstValue::Char(_)) => v,
            (
                Type::Primitive(Primitive::Float32 | Primitive::Float64),
                v @ ConstValue::Float(_),
            ) => v,
            (Type::Primitive(p), ConstValue::Int(i))
                if !matches!(p, Primitive::Bool | Primitive::Char | Primitive::WChar) =>
            {
                let (lo, hi) = int_range(*p);
                if i < lo || i > hi {
                    return Err(format!("constant {i} out of range for {}", p.idl_name()));
                }
                ConstValue::Int(i)
            }
            (Type::String { .. }, v @ ConstValue::String(_)) => v,
            (Type::Named(id), v @ ConstValue::Int(_))
                if matches!(self.b.defs[id.0 as usize], Some(TypeDef::Enum(_))) =>
            {
                v
            }
            (ty, v) => return Err(format!("constant {v:?} does not fit type {ty:?}")),
        })
    }

    pub(crate) fn resolve_alias<'t>(&'t self, mut ty: &'t Type) -> &'t Type {
        for _ in 0..64 {
            match ty {
                Type::Named(id) => match &self.b.defs[id.0 as usize] {
                    Some(TypeDef::Alias { ty: t, .. }) => ty = t,
                    _ => return ty,
                },
                _ => return ty,
            }
        }
        ty
    }

    pub(crate) fn declarator(&mut self, ty: Type) -> Result<(String, Type), IdlError> {
        let name = self.ident()?;
        let mut dims = Vec::new();
        while self.eat_punct("[") {
            dims.push(self.positive_int("an array dimension")?);
            self.expect_punct("]")?;
        }
        if dims.is_empty() {
            Ok((name, ty))
        } else {
            Ok((
                name,
                Type::Array {
                    elem: Box::new(ty),
                    dims,
                },
            ))
        }
    }

    pub(crate) fn bound(&mut self) -> Result<Option<u32>, IdlError> {
        if self.eat_punct("<") {
            let b = self.positive_int("a bound")?;
            self.expect_punct(">")?;
            Ok(Some(b))
        } else {
            Ok(None)
        }
    }

    pub(crate) fn type_spec(&mut self) -> Result<Type, IdlError> {
        use Primitive::*;
        let pos = self.pos();
        let word = match self.peek_tok() {
            Some(Tok::Ident(s)) => s.clone(),
            Some(Tok::Punct("::")) => String::new(),
            _ => return Err(self.unexpected("a type")),
        };
        let prim = |p| Ok(Type::Primitive(p));
        match word.as_str() {
            "unsigned" => {
                self.advance();
                if self.eat_kw("short") {
                    prim(UInt16)
                } else if self.eat_kw("long") {
                    if self.eat_kw("long") {
                        prim(UInt64)
                    } else {
                        prim(UInt32)
                    }
                } else {
                    Err(self.unexpected("`short` or `long`"))
                }
            }
            "long" => {
                self.advance();
                if self.eat_kw("long") {
                    prim(Int64)
                } else if self.is_kw("double") {
                    Err(IdlError::at(
                        pos,
                        "`long double` is not supported (no portable CDR mapping)",
                    ))
                } else {
                    prim(Int32)
                }
            }
            "sequence" => {
                self.advance();
                self.expect_punct("<")?;
                let elem = self.type_spec()?;
                let bound = if self.eat_punct(",") {
                    Some(self.positive_int("a sequence bound")?)
                } else {
                    None
                };
                self.expect_punct(">")?;
                Ok(Type::Sequence {
                    elem: Box::new(elem),
                    bound,
                })
            }
            "string" | "wstring" => {
                self.advance();
                Ok(Type::String {
                    bound: self.bound()?,
                    wide: word == "wstring",
                })
            }
            "fixed" | "any" | "Object" | "ValueBase" | "map" => {
                Err(IdlError::at(pos, format!("type `{word}` is not supported")))
            }
            _ => {
                let p = match word.as_str() {
                    "short" | "int16" => Some(Int16),
                    "int32" => Some(Int32),
                    "int64" => Some(Int64),
                    "uint16" => Some(UInt16),
                    "uint32" => Some(UInt32),
                    "uint64" => Some(UInt64),
                    "int8" => Some(Int8),
                    "uint8" => Some(UInt8),
                    "octet" => Some(Octet),
                    "char" => Some(Char),
                    "wchar" => Some(WChar),
                    "boolean" => Some(Bool),
                    "float" => Some(Float32),
                    "double" => Some(Float64),
                    _ => None,
                };
                if let Some(p) = p {
                    self.advance();
                    return prim(p);
                }
                let name = self.scoped_name()?;
                match self.lookup(&name) {
                    Some((Entity::Type(id), _)) => Ok(Type::Named(*id)),
                    Some(_) => Err(IdlError::at(pos, format!("`{name}` is not a type"))),
                    None => Err(IdlError::at(pos, format!("unknown type `{name}`"))),
                }
            }
        }
    }
}

fn int_range(p: Primitive) -> (i128, i128) {
    use Primitive::*;
    match p {
        Int8 => (-128, 127),
        Octet | UInt8 => (0, 255),
        Int16 => (i128::from(i16::MIN), i128::from(i16::MAX)),
        UInt16 => (0, i128::from(u16::MAX)),
        Int32 => (i128::from(i32::MIN), i128::from(i32::MAX)),
        UInt32 => (0, i128::from(u32::MAX)),
        Int64 => (i128::from(i64::MIN), i128::from(i64::MAX)),
        UInt64 => (0, i128::from(u64::MAX)),
        _ => (0, 0),
    }
}
