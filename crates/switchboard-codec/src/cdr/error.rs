//! [`CdrError`]: what went wrong, and at which member path.

use std::fmt;

/// What kind of problem a [`CdrError`] reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CdrErrorKind {
    /// The CDR bytes end before the value does.
    Truncated,
    /// The CDR bytes are malformed (bad header, bad boolean, bad UTF-8,
    /// DHEADER or parameter length inconsistent, ...).
    Malformed,
    /// A sequence or string is longer than its IDL bound.
    BoundExceeded,
    /// The JSON value does not have the shape the type needs.
    JsonShape,
    /// Something this codec does not support (or a type/handle mismatch).
    Unsupported,
    /// Nesting deeper than [`MAX_DEPTH`](super::MAX_DEPTH).
    TooDeep,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Seg {
    Field(String),
    Index(usize),
}

/// A CDR sample could not be decoded, or a JSON value could not be encoded.
/// Displays as `member.path[3].x: message` (the path is empty at the top).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CdrError {
    kind: CdrErrorKind,
    message: String,
    /// Innermost segment first (pushed while unwinding).
    rev_path: Vec<Seg>,
}

impl CdrError {
    pub(crate) fn new(kind: CdrErrorKind, message: impl Into<String>) -> Self {
        CdrError {
            kind,
            message: message.into(),
            rev_path: Vec::new(),
        }
    }

    pub(crate) fn truncated(needed: usize, left: usize) -> Self {
        Self::new(
            CdrErrorKind::Truncated,
            format!("truncated: need {needed} more bytes, {left} left"),
        )
    }

    pub(crate) fn malformed(message: impl Into<String>) -> Self {
        Self::new(CdrErrorKind::Malformed, message)
    }

    pub(crate) fn json(message: impl Into<String>) -> Self {
        Self::new(CdrErrorKind::JsonShape, message)
    }

    pub(crate) fn in_field(mut self, name: &str) -> Self {
        self.rev_path.push(Seg::Field(name.to_owned()));
        self
    }

    pub(crate) fn at_index(mut self, i: usize) -> Self {
        self.rev_path.push(Seg::Index(i));
        self
    }

    /// The kind of problem.
    pub fn kind(&self) -> CdrErrorKind {
        self.kind
    }

    /// The problem without the path.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// The member path, e.g. `pose.position.x` or `points[3]` (empty at top level).
    pub fn path(&self) -> String {
        let mut s = String::new();
        for seg in self.rev_path.iter().rev() {
            match seg {
                Seg::Field(f) => {
                    if !s.is_empty() {
                        s.push('.');
                    }
                    s.push_str(f);
                }
                Seg::Index(i) => {
                    s.push('[');
                    s.push_str(&i.to_string());
                    s.push(']');
                }
            }
        }
        s
    }
}

impl fmt::Display for CdrError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let p = self.path();
        if p.is_empty() {
            f.write_str(&self.message)
        } else {
            write!(f, "{p}: {}", self.message)
        }
    }
}

impl std::error::Error for CdrError {}
