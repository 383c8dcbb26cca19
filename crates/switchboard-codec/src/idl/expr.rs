//! Constant expressions: integer, floating, string, char and boolean literals,
//! references to earlier `const`s and enumerators, and the IDL operators
//! `| ^ & << >> + - * / % ~` with their usual precedence.

use super::IdlError;
use super::lexer::Tok;
use super::parser::Parser;
use super::types::ConstValue;

impl Parser<'_> {
    /// Parses and evaluates a constant expression.
    pub(crate) fn const_expr(&mut self) -> Result<ConstValue, IdlError> {
        self.binary(0)
    }

    /// A constant expression that must be a positive integer (bounds, dims).
    pub(crate) fn positive_int(&mut self, what: &str) -> Result<u32, IdlError> {
        let pos = self.pos();
        match self.const_expr()? {
            ConstValue::Int(v) if (1..=i128::from(u32::MAX)).contains(&v) => Ok(v as u32),
            other => Err(IdlError::at(
                pos,
                format!("{what} must be a positive integer, not {other:?}"),
            )),
        }
    }

    fn binary(&mut self, level: usize) -> Result<ConstValue, IdlError> {
        const LEVELS: [&[&str]; 6] = [
            &["|"],
            &["^"],
            &["&"],
            &["<<", ">>"],
            &["+", "-"],
            &["*", "/", "%"],
        ];
        if level == LEVELS.len() {
            return self.unary();
        }
        let mut lhs = self.binary(level + 1)?;
        loop {
            let op = match self.peek_tok() {
                Some(Tok::Punct(p)) if LEVELS[level].contains(p) => *p,
                _ => return Ok(lhs),
            };
            let pos = self.pos();
            self.advance();
            let rhs = self.binary(level + 1)?;
            lhs = apply(op, lhs, rhs).map_err(|m| IdlError::at(pos, m))?;
        }
    }

    fn unary(&mut self) -> Result<ConstValue, IdlError> {
        let pos = self.pos();
        match self.peek_tok() {
            Some(Tok::Punct("-")) => {
                self.advance();
                match self.unary()? {
                    ConstValue::Int(v) => Ok(ConstValue::Int(-v)),
                    ConstValue::Float(v) => Ok(ConstValue::Float(-v)),
                    _ => Err(IdlError::at(pos, "`-` needs a number")),
                }
            }
            Some(Tok::Punct("+")) => {
                self.advance();
                self.unary()
            }
            Some(Tok::Punct("~")) => {
                self.advance();
                match self.unary()? {
                    ConstValue::Int(v) => Ok(ConstValue::Int(!v)),
                    _ => Err(IdlError::at(pos, "`~` needs an integer")),
                }
            }
            _ => self.primary(),
        }
    }

    fn primary(&mut self) -> Result<ConstValue, IdlError> {
        let pos = self.pos();
        let Some(tok) = self.peek_tok().cloned() else {
            return Err(IdlError::at(
                pos,
                "expected an expression, found end of input",
            ));
        };
        match tok {
            Tok::Int(v) => {
                self.advance();
                i128::try_from(v)
                    .map(ConstValue::Int)
                    .map_err(|_| IdlError::at(pos, "integer literal too large"))
            }
            Tok::Float(v) => {
                self.advance();
                Ok(ConstValue::Float(v))
            }
            Tok::Str(mut s) => {
                self.advance();
                // Adjacent string literals concatenate.
                while let Some(Tok::Str(more)) = self.peek_tok() {
                    s.push_str(more);
                    self.advance();
                }
                Ok(ConstValue::String(s))
            }
            Tok::Char(c) => {
                self.advance();
                Ok(ConstValue::Char(c))
            }
            Tok::Punct("(") => {
                self.advance();
                let v = self.const_expr()?;
                self.expect_punct(")")?;
                Ok(v)
            }
            Tok::Ident(ref id) if id == "TRUE" => {
                self.advance();
                Ok(ConstValue::Bool(true))
            }
            Tok::Ident(ref id) if id == "FALSE" => {
                self.advance();
                Ok(ConstValue::Bool(false))
            }
            Tok::Ident(_) | Tok::Punct("::") => {
                let name = self.scoped_name()?;
                self.lookup_const(&name)
                    .ok_or_else(|| IdlError::at(pos, format!("unknown constant `{name}`")))
            }
            other => Err(IdlError::at(
                pos,
                format!("expected an expression, found {other}"),
            )),
        }
    }
}

fn apply(op: &str, a: ConstValue, b: ConstValue) -> Result<ConstValue, String> {
    use ConstValue::*;
    match (a, b) {
        (Int(x), Int(y)) => {
            let r = match op {
                "|" => Some(x | y),
                "^" => Some(x ^ y),
                "&" => Some(x & y),
                "<<" => u32::try_from(y)
                    .ok()
                    .filter(|s| *s < 64)
                    .and_then(|s| x.checked_shl(s)),
                ">>" => u32::try_from(y).ok().filter(|s| *s < 128).map(|s| x >> s),
                "+" => x.checked_add(y),
                "-" => x.checked_sub(y),
                "*" => x.checked_mul(y),
                "/" => x.checked_div(y),
                "%" => x.checked_rem(y),
                _ => None,
            };
            r.map(Int)
                .ok_or_else(|| format!("integer overflow or division by zero in `{op}`"))
        }
        (Float(x), Float(y)) => float_op(op, x, y),
        (Int(x), Float(y)) => float_op(op, x as f64, y),
        (Float(x), Int(y)) => float_op(op, x, y as f64),
        (a, b) => Err(format!("cannot apply `{op}` to {a:?} and {b:?}")),
    }
}

fn float_op(op: &str, x: f64, y: f64) -> Result<ConstValue, String> {
    Ok(ConstValue::Float(match op {
        "+" => x + y,
        "-" => x - y,
        "*" => x * y,
        "/" => x / y,
        _ => return Err(format!("`{op}` needs integers")),
    }))
}
