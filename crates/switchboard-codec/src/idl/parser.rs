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

pub(crate) struct Parser<'a> {
    pub(crate) toks: &'a [Token],
    pub(crate) i: usize,
    pub(crate) scope: Vec<String>,
    pub(crate) b: Builder,
    pub(crate) end: Pos,
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

    pub(crate) fn peek_at(&self, k: usize) -> Option<&Tok> {
        self.toks.get(self.i + k).map(|t| &t.tok)
    }

    pub(crate) fn advance(&mut self) {
        self.i += 1;
    }

    pub(crate) fn is_punct(&self, p: &str) -> bool {
        matches!(self.peek_tok(), Some(Tok::Punct(q)) if *q == p)
    }

    pub(crate) fn is_kw(&self, kw: &str) -> bool {
        matches!(self.peek_tok(), Some(Tok::Ident(s)) if s == kw)
    }

    pub(crate) fn eat_punct(&mut self, p: &str) -> bool {
        let y = self.is_punct(p);
        if y {
            self.advance();
        }
        y
    }

    pub(crate) fn eat_kw(&mut self, kw: &str) -> bool {
        let y = self.is_kw(kw);
        if y {
            self.advance();
        }
        y
    }

    pub(crate) fn unexpected(&self, wanted: &str) -> IdlError {
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

    pub(crate) fn ident(&mut self) -> Result<String, IdlError> {
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

    pub(crate) fn qualify(&self, name: &str) -> String {
        let mut q = self.scope.join("::");
        if !q.is_empty() {
            q.push_str("::");
        }
        q.push_str(name);
        q
    }

    pub(crate) fn lookup(&self, name: &str) -> Option<(&Entity, String)> {
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

    pub(crate) fn declare(&mut self, name: &str, e: Entity, pos: Pos) -> Result<String, IdlError> {
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
    pub(crate) fn type_slot(&mut self, name: &str, pos: Pos) -> Result<(TypeId, String), IdlError> {
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

    pub(crate) fn define(&mut self, id: TypeId, def: TypeDef) {
        self.b.defs[id.0 as usize] = Some(def);
    }

    // ----- definitions -----

    pub(crate) fn parse_all(&mut self) -> Result<(), IdlError> {
        while self.peek_tok().is_some() {
            self.definition()?;
        }
        Ok(())
    }

    pub(crate) fn definition(&mut self) -> Result<(), IdlError> {
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
}
