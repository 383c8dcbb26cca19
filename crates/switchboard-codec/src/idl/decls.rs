//! `struct`, `union` and `enum` definitions.

use super::annot::{Annot, AnnotArg, find};
use super::lexer::Tok;
use super::parser::{Entity, Parser};
use super::types::*;
use super::{IdlError, Pos};

impl Parser<'_> {
    pub(crate) fn struct_def(&mut self, annots: &[Annot], pos: Pos) -> Result<(), IdlError> {
        let name = self.ident()?;
        if self.is_punct(";") {
            self.type_slot(&name, pos)?;
            return Ok(());
        }
        let mut members: Vec<Member> = Vec::new();
        let mut base = None;
        if self.eat_punct(":") {
            let bpos = self.pos();
            let bname = self.scoped_name()?;
            let id = match self.lookup(&bname) {
                Some((Entity::Type(id), _)) => *id,
                _ => return Err(IdlError::at(bpos, format!("unknown base type `{bname}`"))),
            };
            let resolved = self.resolve_alias(&Type::Named(id)).clone();
            match resolved {
                Type::Named(bid) => match &self.b.defs[bid.0 as usize] {
                    Some(TypeDef::Struct(s)) => {
                        members = s.members.clone();
                        base = Some(bid);
                    }
                    _ => {
                        return Err(IdlError::at(
                            bpos,
                            format!("base `{bname}` is not a defined struct"),
                        ));
                    }
                },
                _ => {
                    return Err(IdlError::at(
                        bpos,
                        format!("base `{bname}` is not a struct"),
                    ));
                }
            }
        }
        let (id, q) = self.type_slot(&name, pos)?;
        let ext = Self::extensibility(annots)?;
        let auto = Self::autoid(annots)?;
        let mut next_id = members.last().map_or(0, |m| m.id.saturating_add(1));
        self.expect_punct("{")?;
        while !self.eat_punct("}") {
            let mannots = self.annotations()?;
            let ty = self.type_spec()?;
            loop {
                let mpos = self.pos();
                let (mname, mty) = self.declarator(ty.clone())?;
                if members.iter().any(|m| m.name == mname) {
                    return Err(IdlError::at(mpos, format!("duplicate member `{mname}`")));
                }
                let mid = Self::member_id(&mannots, &mname, auto, next_id)?;
                next_id = mid.saturating_add(1);
                let optional = find(&mannots, "optional").is_some_and(Annot::flag);
                let key = find(&mannots, "key").is_some_and(Annot::flag);
                if key && optional {
                    return Err(IdlError::at(mpos, "a @key member cannot be @optional"));
                }
                members.push(Member {
                    name: mname,
                    ty: mty,
                    id: mid,
                    key,
                    optional,
                    must_understand: find(&mannots, "must_understand").is_some_and(Annot::flag),
                    default: find(&mannots, "default").and_then(|a| match a.args.first() {
                        Some((_, AnnotArg::Value(v))) => Some(v.clone()),
                        _ => None,
                    }),
                });
                if !self.eat_punct(",") {
                    break;
                }
            }
            self.expect_punct(";")?;
        }
        if members.is_empty() {
            return Err(IdlError::at(
                pos,
                format!("struct `{q}` has no members (not supported)"),
            ));
        }
        self.define(
            id,
            TypeDef::Struct(StructType {
                name: q,
                extensibility: ext,
                members,
                base,
            }),
        );
        Ok(())
    }

    pub(crate) fn union_def(&mut self, annots: &[Annot], pos: Pos) -> Result<(), IdlError> {
        let name = self.ident()?;
        if self.is_punct(";") {
            self.type_slot(&name, pos)?;
            return Ok(());
        }
        let (id, q) = self.type_slot(&name, pos)?;
        let ext = Self::extensibility(annots)?;
        if ext == Extensibility::Mutable {
            return Err(IdlError::at(pos, "@mutable unions are not supported"));
        }
        let auto = Self::autoid(annots)?;
        if !self.eat_kw("switch") {
            return Err(self.unexpected("`switch`"));
        }
        self.expect_punct("(")?;
        let _ = self.annotations()?;
        let dpos = self.pos();
        let disc = self.type_spec()?;
        let disc_enum = match self.resolve_alias(&disc) {
            Type::Primitive(p) if !matches!(p, Primitive::Float32 | Primitive::Float64) => None,
            Type::Named(eid) => match &self.b.defs[eid.0 as usize] {
                Some(TypeDef::Enum(e)) => Some(e.clone()),
                _ => {
                    return Err(IdlError::at(
                        dpos,
                        "a union discriminator must be an integer, char, boolean or enum",
                    ));
                }
            },
            _ => {
                return Err(IdlError::at(
                    dpos,
                    "a union discriminator must be an integer, char, boolean or enum",
                ));
            }
        };
        self.expect_punct(")")?;
        self.expect_punct("{")?;
        let mut cases: Vec<UnionCase> = Vec::new();
        let mut next_id = 1u32;
        while !self.eat_punct("}") {
            let mut labels = Vec::new();
            let mut is_default = false;
            loop {
                let lpos = self.pos();
                if self.eat_kw("case") {
                    let v = match (&disc_enum, self.peek_tok()) {
                        (Some(e), Some(Tok::Ident(n)))
                            if e.value_of(n).is_some()
                                && !matches!(self.peek_at(1), Some(Tok::Punct("::"))) =>
                        {
                            let v = e.value_of(n).unwrap_or(0);
                            self.advance();
                            ConstValue::Int(i128::from(v))
                        }
                        _ => self.const_expr()?,
                    };
                    let l = match v {
                        ConstValue::Int(i) => i64::try_from(i)
                            .map_err(|_| IdlError::at(lpos, "case label out of range"))?,
                        ConstValue::Bool(b) => i64::from(b),
                        ConstValue::Char(c) => i64::from(u32::from(c)),
                        other => {
                            return Err(IdlError::at(lpos, format!("bad case label {other:?}")));
                        }
                    };
                    if cases.iter().any(|c| c.labels.contains(&l)) || labels.contains(&l) {
                        return Err(IdlError::at(lpos, format!("duplicate case label {l}")));
                    }
                    labels.push(l);
                } else if self.eat_kw("default") {
                    if cases.iter().any(|c| c.is_default) {
                        return Err(IdlError::at(lpos, "more than one `default` branch"));
                    }
                    is_default = true;
                } else {
                    break;
                }
                self.expect_punct(":")?;
            }
            if labels.is_empty() && !is_default {
                return Err(self.unexpected("`case` or `default`"));
            }
            let mannots = self.annotations()?;
            let ty = self.type_spec()?;
            let (mname, mty) = self.declarator(ty)?;
            let mid = Self::member_id(&mannots, &mname, auto, next_id)?;
            next_id = mid.saturating_add(1);
            cases.push(UnionCase {
                name: mname,
                ty: mty,
                labels,
                is_default,
                id: mid,
            });
            self.expect_punct(";")?;
        }
        self.define(
            id,
            TypeDef::Union(UnionType {
                name: q,
                extensibility: ext,
                discriminator: disc,
                cases,
            }),
        );
        Ok(())
    }

    pub(crate) fn enum_def(&mut self, annots: &[Annot]) -> Result<(), IdlError> {
        let pos = self.pos();
        let name = self.ident()?;
        let (id, q) = self.type_slot(&name, pos)?;
        let bit_bound = match find(annots, "bit_bound") {
            Some(a) => u8::try_from(a.int_arg()?)
                .ok()
                .filter(|b| (1..=32).contains(b))
                .ok_or_else(|| IdlError::at(a.pos, "@bit_bound of an enum must be 1..=32"))?,
            None => 32,
        };
        self.expect_punct("{")?;
        let mut enumerators: Vec<(String, i32)> = Vec::new();
        let mut next = 0i64;
        loop {
            let eannots = self.annotations()?;
            let epos = self.pos();
            let ename = self.ident()?;
            let v = match find(&eannots, "value") {
                Some(a) => a.int_arg()? as i64,
                None => next,
            };
            let v = i32::try_from(v)
                .map_err(|_| IdlError::at(epos, "enumerator value out of range"))?;
            next = i64::from(v) + 1;
            if enumerators.iter().any(|e| e.0 == ename) {
                return Err(IdlError::at(
                    epos,
                    format!("duplicate enumerator `{ename}`"),
                ));
            }
            // Enumerators live in the enclosing scope (IDL) and, for
            // convenience, also as `Enum::Name`.
            self.declare(&ename, Entity::Const(ConstValue::Int(i128::from(v))), epos)?;
            self.b
                .names
                .entry(format!("{q}::{ename}"))
                .or_insert(Entity::Const(ConstValue::Int(i128::from(v))));
            enumerators.push((ename, v));
            if !self.eat_punct(",") || self.is_punct("}") {
                break;
            }
        }
        self.expect_punct("}")?;
        self.define(
            id,
            TypeDef::Enum(EnumType {
                name: q,
                enumerators,
                bit_bound,
            }),
        );
        Ok(())
    }

    // ----- types -----
}
