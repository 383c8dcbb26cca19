//! Annotations: parsing `@name(args)`, and what the ones we honour mean
//! (extensibility, member ids, flags).

use super::lexer::Tok;
use super::parser::Parser;
use super::types::*;
use super::{IdlError, Pos};

#[derive(Debug, Clone)]
pub(crate) enum AnnotArg {
    Value(ConstValue),
    Ident(String),
}

#[derive(Debug, Clone)]
pub(crate) struct Annot {
    pub(crate) name: String,
    pub(crate) args: Vec<(Option<String>, AnnotArg)>,
    pub(crate) pos: Pos,
}

impl Annot {
    pub(crate) fn int_arg(&self) -> Result<i128, IdlError> {
        match self.args.first() {
            Some((_, AnnotArg::Value(ConstValue::Int(v)))) => Ok(*v),
            _ => Err(IdlError::at(
                self.pos,
                format!("@{} needs an integer argument", self.name),
            )),
        }
    }
    /// `@key`, `@key(TRUE)`, `@key(FALSE)`.
    pub(crate) fn flag(&self) -> bool {
        !matches!(
            self.args.first(),
            Some((_, AnnotArg::Value(ConstValue::Bool(false))))
        ) && !matches!(self.args.first(), Some((_, AnnotArg::Ident(s))) if s.eq_ignore_ascii_case("false"))
    }
    pub(crate) fn ident_arg(&self) -> Option<String> {
        match self.args.first() {
            Some((_, AnnotArg::Ident(s))) => Some(s.to_ascii_uppercase()),
            Some((_, AnnotArg::Value(ConstValue::String(s)))) => Some(s.to_ascii_uppercase()),
            _ => None,
        }
    }
}

pub(crate) fn find<'a>(annots: &'a [Annot], name: &str) -> Option<&'a Annot> {
    annots.iter().rev().find(|a| a.name == name)
}

/// How the member ids of a struct or union are assigned.
#[derive(Clone, Copy, PartialEq)]
pub(crate) enum AutoId {
    Sequential,
    Hash,
}

impl Parser<'_> {
    pub(crate) fn annotations(&mut self) -> Result<Vec<Annot>, IdlError> {
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

    pub(crate) fn skip_braces(&mut self) -> Result<(), IdlError> {
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

    pub(crate) fn extensibility(annots: &[Annot]) -> Result<Extensibility, IdlError> {
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

    pub(crate) fn autoid(annots: &[Annot]) -> Result<AutoId, IdlError> {
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
    pub(crate) fn member_id(
        annots: &[Annot],
        name: &str,
        auto: AutoId,
        next: u32,
    ) -> Result<u32, IdlError> {
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
}

/// XTypes hashed member id: the first 4 bytes of MD5(name), little endian,
/// masked to 28 bits.
pub(crate) fn hash_id(name: &str) -> u32 {
    let d = md5::compute(name.as_bytes());
    u32::from_le_bytes([d[0], d[1], d[2], d[3]]) & 0x0FFF_FFFF
}
