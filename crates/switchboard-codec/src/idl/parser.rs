//! The IDL parser: modules, structs (single inheritance), unions, enums,
//! typedefs, consts and annotations, resolving scoped names as it goes
//! (IDL requires declaration before use; forward declarations are honoured).

use std::collections::HashMap;

use super::lexer::{Tok, Token};
use super::types::*;
use super::{IdlError, Pos};

/// What a fully scoped name denotes.
#[derive(Debug, Clone)]
pub(crate) enum Entity {
    Type(TypeId),
    Const(ConstValue),
    Module,
}

/// Declarations collected so far.
#[derive(Default)]
pub(crate) struct Builder {
    pub(crate) defs: Vec<Option<TypeDef>>,
    pub(crate) def_pos: Vec<Pos>,
    pub(crate) names: HashMap<String, Entity>,
}

#[derive(Debug, Clone)]
enum AnnotArg {
    Value(ConstValue),
    Ident(String),
}

#[derive(Debug, Clone)]
struct Annot {
    name: String,
    args: Vec<(Option<String>, AnnotArg)>,
    pos: Pos,
}

impl Annot {
    fn int_arg(&self) -> Result<i128, IdlError> {
        match self.args.first() {
            Some((_, AnnotArg::Value(ConstValue::Int(v)))) => Ok(*v),
            _ => Err(IdlError::at(
                self.pos,
                format!("@{} needs an integer argument", self.name),
            )),
        }
    }
    /// `@key`, `@key(TRUE)`, `@key(FALSE)`.
    fn flag(&self) -> bool {
        !matches!(
            self.args.first(),
            Some((_, AnnotArg::Value(ConstValue::Bool(false))))
        ) && !matches!(self.args.first(), Some((_, AnnotArg::Ident(s))) if s.eq_ignore_ascii_case("false"))
    }
    fn ident_arg(&self) -> Option<String> {
        match self.args.first() {
            Some((_, AnnotArg::Ident(s))) => Some(s.to_ascii_uppercase()),
            Some((_, AnnotArg::Value(ConstValue::String(s)))) => Some(s.to_ascii_uppercase()),
            _ => None,
        }
    }
}

fn find<'a>(annots: &'a [Annot], name: &str) -> Option<&'a Annot> {
    annots.iter().rev().find(|a| a.name == name)
}

pub(crate) struct Parser<'a> {
    toks: &'a [Token],
    i: usize,
    scope: Vec<String>,
    pub(crate) b: Builder,
    end: Pos,
}

/// How the member ids of a struct or union are assigned.
#[derive(Clone, Copy, PartialEq)]
enum AutoId {
    Sequential,
    Hash,
}

impl<'a> Parser<'a> {
    pub(crate) fn new(toks: &'a [Token], b: Builder) -> Self {
        let end = toks.last().map(|t| t.pos).unwrap_or_default();
        Parser {
            toks,
            i: 0,
            scope: Vec::new(),
            b,
            end,
        }
    }

    // ----- cursor -----

    pub(crate) fn pos(&self) -> Pos {
        self.toks.get(self.i).map_or(self.end, |t| t.pos)
    }

    pub(crate) fn peek_tok(&self) -> Option<&Tok> {
        self.toks.get(self.i).map(|t| &t.tok)
    }

    fn peek_at(&self, k: usize) -> Option<&Tok> {
        self.toks.get(self.i + k).map(|t| &t.tok)
    }

    pub(crate) fn advance(&mut self) {
        self.i += 1;
    }

    fn is_punct(&self, p: &str) -> bool {
        matches!(self.peek_tok(), Some(Tok::Punct(q)) if *q == p)
    }

    fn is_kw(&self, kw: &str) -> bool {
        matches!(self.peek_tok(), Some(Tok::Ident(s)) if s == kw)
    }

    fn eat_punct(&mut self, p: &str) -> bool {
        let y = self.is_punct(p);
        if y {
            self.advance();
        }
        y
    }

    fn eat_kw(&mut self, kw: &str) -> bool {
        let y = self.is_kw(kw);
        if y {
            self.advance();
        }
        y
    }

    fn unexpected(&self, wanted: &str) -> IdlError {
        match self.peek_tok() {
            Some(t) => IdlError::at(self.pos(), format!("expected {wanted}, found {t}")),
            None => IdlError::at(self.pos(), format!("expected {wanted}, found end of input")),
        }
    }

    pub(crate) fn expect_punct(&mut self, p: &str) -> Result<(), IdlError> {
        if self.eat_punct(p) {
            Ok(())
        } else {
            Err(self.unexpected(&format!("`{p}`")))
        }
    }

    fn ident(&mut self) -> Result<String, IdlError> {
        match self.peek_tok() {
            Some(Tok::Ident(s)) => {
                let s = s.clone();
                self.advance();
                Ok(s)
            }
            _ => Err(self.unexpected("an identifier")),
        }
    }

    /// `a::b`, `::a::b` -> "a::b" / "::a::b" (leading `::` kept to mark absolute).
    pub(crate) fn scoped_name(&mut self) -> Result<String, IdlError> {
        let mut s = String::new();
        if self.eat_punct("::") {
            s.push_str("::");
        }
        s.push_str(&self.ident()?);
        while self.is_punct("::") {
            self.advance();
            s.push_str("::");
            s.push_str(&self.ident()?);
        }
        Ok(s)
    }

    // ----- scopes -----

    fn qualify(&self, name: &str) -> String {
        let mut q = self.scope.join("::");
        if !q.is_empty() {
            q.push_str("::");
        }
        q.push_str(name);
        q
    }

    fn lookup(&self, name: &str) -> Option<(&Entity, String)> {
        if let Some(abs) = name.strip_prefix("::") {
            return self.b.names.get(abs).map(|e| (e, abs.to_owned()));
        }
        for depth in (0..=self.scope.len()).rev() {
            let mut q = self.scope[..depth].join("::");
            if !q.is_empty() {
                q.push_str("::");
            }
            q.push_str(name);
            if let Some(e) = self.b.names.get(&q) {
                return Some((e, q));
            }
        }
        None
    }

    pub(crate) fn lookup_const(&self, name: &str) -> Option<ConstValue> {
        match self.lookup(name) {
            Some((Entity::Const(v), _)) => Some(v.clone()),
            _ => None,
        }
    }

    fn declare(&mut self, name: &str, e: Entity, pos: Pos) -> Result<String, IdlError> {
        let q = self.qualify(name);
        match (self.b.names.get(&q), &e) {
            (None, _) => {}
            (Some(Entity::Module), Entity::Module) => return Ok(q),
            // A forward declaration followed by the definition.
            (Some(Entity::Type(id)), Entity::Type(_)) if self.b.defs[id.0 as usize].is_none() => {
                return Ok(q);
            }
            _ => return Err(IdlError::at(pos, format!("`{q}` is already declared"))),
        }
        self.b.names.insert(q.clone(), e);
        Ok(q)
    }

    /// Declares (or finds the forward declaration of) a type and returns its id.
    fn type_slot(&mut self, name: &str, pos: Pos) -> Result<(TypeId, String), IdlError> {
        let q = self.qualify(name);
        if let Some(Entity::Type(id)) = self.b.names.get(&q) {
            let id = *id;
            if self.b.defs[id.0 as usize].is_none() {
                return Ok((id, q));
            }
        }
        let id = TypeId(
            u32::try_from(self.b.defs.len()).map_err(|_| IdlError::at(pos, "too many types"))?,
        );
        self.declare(name, Entity::Type(id), pos)?;
        self.b.defs.push(None);
        self.b.def_pos.push(pos);
        Ok((id, q))
    }

    fn define(&mut self, id: TypeId, def: TypeDef) {
        self.b.defs[id.0 as usize] = Some(def);
    }

    // ----- definitions -----

    pub(crate) fn parse_all(&mut self) -> Result<(), IdlError> {
        while self.peek_tok().is_some() {
            self.definition()?;
        }
        Ok(())
    }

    fn annotations(&mut self) -> Result<Vec<Annot>, IdlError> {
        let mut out = Vec::new();
        while self.is_punct("@") {
            let pos = self.pos();
            self.advance();
            if self.is_kw("annotation") {
                // An annotation declaration: skip it.
                self.advance();
                self.ident()?;
                self.skip_braces()?;
                self.eat_punct(";");
                continue;
            }
            let name = self.scoped_name()?;
            let name = name.rsplit("::").next().unwrap_or(&name).to_owned();
            let mut args = Vec::new();
            if self.eat_punct("(") {
                while !self.eat_punct(")") {
                    let key = match (self.peek_tok(), self.peek_at(1)) {
                        (Some(Tok::Ident(k)), Some(Tok::Punct("="))) => {
                            let k = k.clone();
                            self.advance();
                            self.advance();
                            Some(k)
                        }
                        _ => None,
                    };
                    let arg = match (self.peek_tok(), self.peek_at(1)) {
                        (Some(Tok::Ident(id)), Some(Tok::Punct(")" | ",")))
                            if self.lookup_const(id).is_none() && id != "TRUE" && id != "FALSE" =>
                        {
                            let id = id.clone();
                            self.advance();
                            AnnotArg::Ident(id)
                        }
                        _ => AnnotArg::Value(self.const_expr()?),
                    };
                    args.push((key, arg));
                    if !self.eat_punct(",") && !self.is_punct(")") {
                        return Err(self.unexpected("`,` or `)`"));
                    }
                }
            }
            out.push(Annot { name, args, pos });
        }
        Ok(out)
    }

    fn skip_braces(&mut self) -> Result<(), IdlError> {
        self.expect_punct("{")?;
        let mut depth = 1usize;
        while depth > 0 {
            match self.peek_tok() {
                None => return Err(self.unexpected("`}`")),
                Some(Tok::Punct("{")) => depth += 1,
                Some(Tok::Punct("}")) => depth -= 1,
                _ => {}
            }
            self.advance();
        }
        Ok(())
    }

    fn definition(&mut self) -> Result<(), IdlError> {
        let annots = self.annotations()?;
        if self.peek_tok().is_none() {
            return Ok(());
        }
        let pos = self.pos();
        let kw = match self.peek_tok() {
            Some(Tok::Ident(s)) => s.clone(),
            Some(Tok::Punct(";")) => {
                self.advance();
                return Ok(());
            }
            _ => return Err(self.unexpected("a definition")),
        };
        self.advance();
        match kw.as_str() {
            "module" => {
                let name = self.ident()?;
                self.declare(&name, Entity::Module, pos)?;
                self.expect_punct("{")?;
                self.scope.push(name);
                while !self.eat_punct("}") {
                    if self.peek_tok().is_none() {
                        return Err(self.unexpected("`}`"));
                    }
                    self.definition()?;
                }
                self.scope.pop();
            }
            "struct" => self.struct_def(&annots, pos)?,
            "union" => self.union_def(&annots, pos)?,
            "enum" => self.enum_def(&annots)?,
            "typedef" => {
                let _ = self.annotations()?;
                let ty = self.type_spec()?;
                loop {
                    let dpos = self.pos();
                    let (name, ty) = self.declarator(ty.clone())?;
                    // rosidl repeats identical typedefs (`double__9`) in several files.
                    let same = match self.b.names.get(&self.qualify(&name)) {
                        Some(Entity::Type(id)) => matches!(
                            &self.b.defs[id.0 as usize],
                            Some(TypeDef::Alias { ty: old, .. }) if *old == ty
                        ),
                        _ => false,
                    };
                    if !same {
                        let (id, q) = self.type_slot(&name, dpos)?;
                        self.define(id, TypeDef::Alias { name: q, ty });
                    }
                    if !self.eat_punct(",") {
                        break;
                    }
                }
            }
            "const" => {
                let ty = self.type_spec()?;
                let name = self.ident()?;
                self.expect_punct("=")?;
                let vpos = self.pos();
                let v = self.const_expr()?;
                let v = self
                    .coerce_const(&ty, v)
                    .map_err(|m| IdlError::at(vpos, m))?;
                self.declare(&name, Entity::Const(v), pos)?;
            }
            "native" | "interface" | "abstract" | "local" | "exception" | "valuetype"
            | "eventtype" | "component" | "home" | "bitmask" | "bitset" | "porttype"
            | "connector" => {
                return Err(IdlError::at(
                    pos,
                    format!("`{kw}` declarations are not supported"),
                ));
            }
            other => {
                return Err(IdlError::at(
                    pos,
                    format!("expected a definition, found `{other}`"),
                ));
            }
        }
        self.expect_punct(";")
    }

    fn coerce_const(&self, ty: &Type, v: ConstValue) -> Result<ConstValue, String> {
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

    fn resolve_alias<'t>(&'t self, mut ty: &'t Type) -> &'t Type {
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

    fn extensibility(annots: &[Annot]) -> Result<Extensibility, IdlError> {
        let mut ext = Extensibility::Final;
        for a in annots {
            ext = match a.name.as_str() {
                "final" => Extensibility::Final,
                "appendable" => Extensibility::Appendable,
                "mutable" => Extensibility::Mutable,
                "extensibility" => match a.ident_arg().as_deref() {
                    Some("FINAL") => Extensibility::Final,
                    Some("APPENDABLE") => Extensibility::Appendable,
                    Some("MUTABLE") => Extensibility::Mutable,
                    _ => {
                        return Err(IdlError::at(
                            a.pos,
                            "@extensibility needs FINAL, APPENDABLE or MUTABLE",
                        ));
                    }
                },
                _ => continue,
            };
        }
        Ok(ext)
    }

    fn autoid(annots: &[Annot]) -> Result<AutoId, IdlError> {
        match find(annots, "autoid") {
            None => Ok(AutoId::Sequential),
            Some(a) => match a.ident_arg().as_deref() {
                None | Some("SEQUENTIAL") => Ok(AutoId::Sequential),
                Some("HASH") => Ok(AutoId::Hash),
                _ => Err(IdlError::at(a.pos, "@autoid needs SEQUENTIAL or HASH")),
            },
        }
    }

    /// The member id: `@id`, `@hashid`, or automatic.
    fn member_id(annots: &[Annot], name: &str, auto: AutoId, next: u32) -> Result<u32, IdlError> {
        if let Some(a) = find(annots, "id") {
            let v = a.int_arg()?;
            return u32::try_from(v)
                .ok()
                .filter(|v| *v <= 0x0FFF_FFFF)
                .ok_or_else(|| IdlError::at(a.pos, "@id must be between 0 and 0x0FFFFFFF"));
        }
        if let Some(a) = find(annots, "hashid") {
            let s = match a.args.first() {
                Some((_, AnnotArg::Value(ConstValue::String(s)))) => s.clone(),
                _ => name.to_owned(),
            };
            return Ok(hash_id(&s));
        }
        Ok(match auto {
            AutoId::Hash => hash_id(name),
            AutoId::Sequential => next,
        })
    }

    fn struct_def(&mut self, annots: &[Annot], pos: Pos) -> Result<(), IdlError> {
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

    fn union_def(&mut self, annots: &[Annot], pos: Pos) -> Result<(), IdlError> {
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

    fn enum_def(&mut self, annots: &[Annot]) -> Result<(), IdlError> {
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

    fn declarator(&mut self, ty: Type) -> Result<(String, Type), IdlError> {
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

    fn bound(&mut self) -> Result<Option<u32>, IdlError> {
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

/// XTypes hashed member id: the first 4 bytes of MD5(name), little endian,
/// masked to 28 bits.
pub(crate) fn hash_id(name: &str) -> u32 {
    let d = md5::compute(name.as_bytes());
    u32::from_le_bytes([d[0], d[1], d[2], d[3]]) & 0x0FFF_FFFF
}
