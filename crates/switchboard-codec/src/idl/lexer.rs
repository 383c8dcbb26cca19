//! IDL tokens: identifiers, literals and punctuation with their source position.
//!
//! The lexer works on one file's text; preprocessor directives (lines starting
//! with `#`) are handed back whole as [`Tok::Directive`] for the preprocessor.

use super::{IdlError, Pos};

/// One token of IDL source.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Tok {
    Ident(String),
    Int(u128),
    Float(f64),
    Str(String),
    Char(char),
    /// Punctuation, including the two-character `::`, `<<` and `>>`.
    Punct(&'static str),
    /// A whole preprocessor line without the `#` (continuation lines joined).
    Directive(String),
}

impl std::fmt::Display for Tok {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Tok::Ident(s) => write!(f, "`{s}`"),
            Tok::Int(i) => write!(f, "`{i}`"),
            Tok::Float(x) => write!(f, "`{x}`"),
            Tok::Str(s) => write!(f, "string {s:?}"),
            Tok::Char(c) => write!(f, "char {c:?}"),
            Tok::Punct(p) => write!(f, "`{p}`"),
            Tok::Directive(d) => write!(f, "`#{d}`"),
        }
    }
}

/// A token and where it starts.
#[derive(Debug, Clone)]
pub(crate) struct Token {
    pub(crate) tok: Tok,
    pub(crate) pos: Pos,
}

const PUNCT2: [&str; 3] = ["::", "<<", ">>"];
const PUNCT1: &str = "{}()[]<>;,:=+-*/%&|^~@";

/// Splits `src` (the text of file number `file`) into tokens.
pub(crate) fn lex(src: &str, file: u32) -> Result<Vec<Token>, IdlError> {
    let mut lx = Lexer {
        s: src.as_bytes(),
        src,
        i: 0,
        line: 1,
        col: 1,
        file,
        line_start: true,
    };
    let mut out = Vec::new();
    while let Some(t) = lx.next()? {
        out.push(t);
    }
    Ok(out)
}

struct Lexer<'a> {
    s: &'a [u8],
    src: &'a str,
    i: usize,
    line: u32,
    col: u32,
    file: u32,
    line_start: bool,
}

impl Lexer<'_> {
    fn pos(&self) -> Pos {
        Pos {
            file: self.file,
            line: self.line,
            col: self.col,
        }
    }

    fn peek(&self, k: usize) -> u8 {
        self.s.get(self.i + k).copied().unwrap_or(0)
    }

    fn bump(&mut self) -> u8 {
        let c = self.peek(0);
        self.i += 1;
        if c == b'\n' {
            self.line += 1;
            self.col = 1;
            self.line_start = true;
        } else if c & 0xC0 != 0x80 {
            self.col += 1;
        }
        c
    }

    fn err(&self, pos: Pos, msg: impl Into<String>) -> IdlError {
        IdlError::at(pos, msg)
    }

    fn skip_ws_comments(&mut self) -> Result<(), IdlError> {
        loop {
            match self.peek(0) {
                b' ' | b'\t' | b'\r' | b'\n' | 0x0c => {
                    self.bump();
                }
                b'/' if self.peek(1) == b'/' => {
                    while self.i < self.s.len() && self.peek(0) != b'\n' {
                        self.bump();
                    }
                }
                b'/' if self.peek(1) == b'*' => {
                    let start = self.pos();
                    self.bump();
                    self.bump();
                    loop {
                        if self.i >= self.s.len() {
                            return Err(self.err(start, "unterminated comment"));
                        }
                        if self.peek(0) == b'*' && self.peek(1) == b'/' {
                            self.bump();
                            self.bump();
                            break;
                        }
                        self.bump();
                    }
                }
                _ => return Ok(()),
            }
        }
    }

    fn next(&mut self) -> Result<Option<Token>, IdlError> {
        let was_line_start = self.line_start;
        self.skip_ws_comments()?;
        let at_line_start = was_line_start || self.line_start;
        if self.i >= self.s.len() {
            return Ok(None);
        }
        let pos = self.pos();
        self.line_start = false;
        let c = self.peek(0);
        let tok = match c {
            b'#' if at_line_start => {
                self.bump();
                Tok::Directive(self.directive())
            }
            b'L' if self.peek(1) == b'"' || self.peek(1) == b'\'' => {
                self.bump();
                self.quoted(pos)?
            }
            b'"' | b'\'' => self.quoted(pos)?,
            b'0'..=b'9' => self.number(pos)?,
            b'.' if self.peek(1).is_ascii_digit() => self.number(pos)?,
            c if c.is_ascii_alphabetic() || c == b'_' => {
                let st = self.i;
                while self.peek(0).is_ascii_alphanumeric() || self.peek(0) == b'_' {
                    self.bump();
                }
                Tok::Ident(self.src[st..self.i].to_owned())
            }
            _ => {
                if let Some(p) = PUNCT2
                    .iter()
                    .find(|p| self.s[self.i..].starts_with(p.as_bytes()))
                {
                    self.bump();
                    self.bump();
                    Tok::Punct(p)
                } else if let Some(k) = PUNCT1.bytes().position(|p| p == c) {
                    self.bump();
                    Tok::Punct(&PUNCT1[k..=k])
                } else {
                    let ch = self.src[self.i..].chars().next().unwrap_or('?');
                    return Err(self.err(pos, format!("unexpected character {ch:?}")));
                }
            }
        };
        Ok(Some(Token { tok, pos }))
    }

    fn directive(&mut self) -> String {
        let mut out = String::new();
        let mut st = self.i;
        loop {
            if self.i >= self.s.len() || self.peek(0) == b'\n' {
                out.push_str(&self.src[st..self.i]);
                break;
            }
            if self.peek(0) == b'\\'
                && (self.peek(1) == b'\n' || (self.peek(1) == b'\r' && self.peek(2) == b'\n'))
            {
                out.push_str(&self.src[st..self.i]);
                out.push(' ');
                while self.bump() != b'\n' {}
                st = self.i;
                continue;
            }
            if self.peek(0) == b'/' && self.peek(1) == b'/' {
                out.push_str(&self.src[st..self.i]);
                while self.i < self.s.len() && self.peek(0) != b'\n' {
                    self.bump();
                }
                break;
            }
            self.bump();
        }
        out.trim().to_owned()
    }

    fn quoted(&mut self, pos: Pos) -> Result<Tok, IdlError> {
        let q = self.bump();
        let mut s = String::new();
        loop {
            if self.i >= self.s.len() || self.peek(0) == b'\n' {
                return Err(self.err(pos, "unterminated literal"));
            }
            let c = self.peek(0);
            if c == q {
                self.bump();
                break;
            }
            if c == b'\\' {
                self.bump();
                let e = self.bump();
                let ch = match e {
                    b'n' => '\n',
                    b't' => '\t',
                    b'r' => '\r',
                    b'0'..=b'7' => {
                        let mut v = u32::from(e - b'0');
                        for _ in 0..2 {
                            if (b'0'..=b'7').contains(&self.peek(0)) {
                                v = v * 8 + u32::from(self.bump() - b'0');
                            }
                        }
                        char::from_u32(v).unwrap_or('\u{fffd}')
                    }
                    b'x' => {
                        let mut v = 0u32;
                        for _ in 0..2 {
                            if self.peek(0).is_ascii_hexdigit() {
                                v = v * 16 + (self.bump() as char).to_digit(16).unwrap_or(0);
                            }
                        }
                        char::from_u32(v).unwrap_or('\u{fffd}')
                    }
                    b'u' => {
                        let mut v = 0u32;
                        for _ in 0..4 {
                            if self.peek(0).is_ascii_hexdigit() {
                                v = v * 16 + (self.bump() as char).to_digit(16).unwrap_or(0);
                            }
                        }
                        char::from_u32(v).unwrap_or('\u{fffd}')
                    }
                    b'v' => '\u{b}',
                    b'b' => '\u{8}',
                    b'f' => '\u{c}',
                    b'a' => '\u{7}',
                    b'\\' | b'\'' | b'"' | b'?' => e as char,
                    _ => return Err(self.err(pos, "unknown escape sequence")),
                };
                s.push(ch);
                continue;
            }
            let ch = self.src[self.i..].chars().next().unwrap_or('\u{fffd}');
            for _ in 0..ch.len_utf8() {
                self.bump();
            }
            s.push(ch);
        }
        if q == b'\'' {
            let mut it = s.chars();
            match (it.next(), it.next()) {
                (Some(c), None) => Ok(Tok::Char(c)),
                _ => Err(self.err(pos, "a character literal holds exactly one character")),
            }
        } else {
            Ok(Tok::Str(s))
        }
    }

    fn number(&mut self, pos: Pos) -> Result<Tok, IdlError> {
        let st = self.i;
        if self.peek(0) == b'0' && (self.peek(1) | 0x20) == b'x' {
            self.bump();
            self.bump();
            let hs = self.i;
            while self.peek(0).is_ascii_hexdigit() {
                self.bump();
            }
            let v = u128::from_str_radix(&self.src[hs..self.i], 16)
                .map_err(|_| self.err(pos, "bad hexadecimal literal"))?;
            self.int_suffix();
            return Ok(Tok::Int(v));
        }
        let mut is_float = false;
        while self.peek(0).is_ascii_digit() {
            self.bump();
        }
        if self.peek(0) == b'.' {
            is_float = true;
            self.bump();
            while self.peek(0).is_ascii_digit() {
                self.bump();
            }
        }
        if (self.peek(0) | 0x20) == b'e' {
            is_float = true;
            self.bump();
            if self.peek(0) == b'+' || self.peek(0) == b'-' {
                self.bump();
            }
            while self.peek(0).is_ascii_digit() {
                self.bump();
            }
        }
        let text = &self.src[st..self.i];
        if is_float {
            let v: f64 = text
                .parse()
                .map_err(|_| self.err(pos, format!("bad floating-point literal `{text}`")))?;
            if matches!(self.peek(0) | 0x20, b'f' | b'd') {
                self.bump();
            }
            return Ok(Tok::Float(v));
        }
        let v = if text.len() > 1 && text.starts_with('0') {
            u128::from_str_radix(&text[1..], 8)
        } else {
            text.parse::<u128>()
        }
        .map_err(|_| self.err(pos, format!("bad integer literal `{text}`")))?;
        self.int_suffix();
        Ok(Tok::Int(v))
    }

    fn int_suffix(&mut self) {
        while matches!(self.peek(0) | 0x20, b'u' | b'l') {
            self.bump();
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn toks(s: &str) -> Vec<Tok> {
        lex(s, 0).unwrap().into_iter().map(|t| t.tok).collect()
    }

    #[test]
    fn lexes_literals_and_punct() {
        assert_eq!(
            toks("a::b 0x1F 017 1.5e2 \"x\\n\" 'c' << /* c */ // x\n;"),
            vec![
                Tok::Ident("a".into()),
                Tok::Punct("::"),
                Tok::Ident("b".into()),
                Tok::Int(31),
                Tok::Int(15),
                Tok::Float(150.0),
                Tok::Str("x\n".into()),
                Tok::Char('c'),
                Tok::Punct("<<"),
                Tok::Punct(";"),
            ]
        );
    }

    #[test]
    fn directives_and_positions() {
        let t = lex("#ifndef X\n  #define X \\\n 1\nstruct", 0).unwrap();
        assert_eq!(t[0].tok, Tok::Directive("ifndef X".into()));
        assert_eq!(t[1].tok, Tok::Directive("define X   1".into()));
        assert_eq!(t[2].pos.line, 4);
        assert!(lex("/* never", 0).is_err());
        assert!(lex("a $", 0).is_err());
    }
}
