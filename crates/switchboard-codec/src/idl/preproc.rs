//! The IDL preprocessor: `#include` (relative to the including file, then the
//! include directories), include guards (`#ifndef`/`#define`/`#endif`,
//! `#ifdef`, `#if defined(X)`, `#if 0/1`, `#else`, `#elif`), `#pragma once` and
//! `#pragma keylist`; other pragmas are ignored. Every file is read at most
//! once (an implicit `#pragma once`), so guard-less files may include each other. Macros are only tracked as
//! defined or not: IDL in DDS and ROS 2 practice uses them for guards only.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use super::lexer::{Tok, Token, lex};
use super::{IdlError, Pos};

/// How deep `#include` may nest.
const MAX_INCLUDE_DEPTH: usize = 64;

/// Where source text comes from: files on disk, or in-memory strings (tests).
pub(crate) trait Source {
    /// Reads `path`, or says why not.
    fn read(&self, path: &Path) -> Result<String, String>;
    /// Whether `path` exists.
    fn exists(&self, path: &Path) -> bool;
}

/// The file system.
pub(crate) struct Fs;

impl Source for Fs {
    fn read(&self, path: &Path) -> Result<String, String> {
        std::fs::read_to_string(path).map_err(|e| e.to_string())
    }
    fn exists(&self, path: &Path) -> bool {
        path.is_file()
    }
}

/// A `#pragma keylist TYPE member...` seen in the sources.
#[derive(Debug, Clone)]
pub(crate) struct Keylist {
    pub(crate) ty: String,
    pub(crate) members: Vec<String>,
    pub(crate) pos: Pos,
}

/// The output: every file's tokens spliced in include order.
pub(crate) struct Preprocessed {
    pub(crate) tokens: Vec<Token>,
    pub(crate) files: Vec<PathBuf>,
    pub(crate) keylists: Vec<Keylist>,
}

pub(crate) struct Preprocessor<'s> {
    src: &'s dyn Source,
    include_dirs: Vec<PathBuf>,
    defined: HashSet<String>,
    once: HashSet<PathBuf>,
    out: Preprocessed,
}

impl<'s> Preprocessor<'s> {
    pub(crate) fn new(src: &'s dyn Source, include_dirs: Vec<PathBuf>) -> Self {
        Preprocessor {
            src,
            include_dirs,
            defined: HashSet::new(),
            once: HashSet::new(),
            out: Preprocessed {
                tokens: Vec::new(),
                files: Vec::new(),
                keylists: Vec::new(),
            },
        }
    }

    /// Adds a top-level file.
    pub(crate) fn add_file(&mut self, path: &Path) -> Result<(), IdlError> {
        self.file(path, None, 0)
    }

    pub(crate) fn finish(self) -> Preprocessed {
        self.out
    }

    fn file(&mut self, path: &Path, from: Option<Pos>, depth: usize) -> Result<(), IdlError> {
        let canon = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
        // Each file is read once, as if it said `#pragma once`: rosidl's
        // files have no include guards, and a configuration may list a file
        // that another one also includes.
        if !self.once.insert(canon.clone()) {
            return Ok(());
        }
        if depth > MAX_INCLUDE_DEPTH {
            let pos = from.unwrap_or_default();
            return Err(IdlError::at(pos, "#include nested too deeply (a cycle?)"));
        }
        let text = self.src.read(path).map_err(|e| match from {
            Some(p) => IdlError::at(p, format!("cannot read {}: {e}", path.display())),
            None => IdlError::file(path, format!("cannot read: {e}")),
        })?;
        let idx = u32::try_from(self.out.files.len()).unwrap_or(u32::MAX);
        self.out.files.push(path.to_path_buf());
        let toks = lex(&text, idx)?;
        // Conditional stack: (this branch active, some branch taken, parent active).
        let mut conds: Vec<(bool, bool, bool)> = Vec::new();
        let active = |c: &Vec<(bool, bool, bool)>| c.last().is_none_or(|t| t.0);
        for t in toks {
            let Tok::Directive(d) = &t.tok else {
                if active(&conds) {
                    self.out.tokens.push(t);
                }
                continue;
            };
            let (name, rest) = d
                .split_once(char::is_whitespace)
                .unwrap_or((d.as_str(), ""));
            let rest = rest.trim();
            let on = active(&conds);
            match name {
                "ifndef" | "ifdef" => {
                    let def = self.defined.contains(rest);
                    let v = if name == "ifdef" { def } else { !def };
                    conds.push((on && v, v, on));
                }
                "if" => {
                    let v = self.eval_if(rest, t.pos)?;
                    conds.push((on && v, v, on));
                }
                "elif" => {
                    let Some(top) = conds.last_mut() else {
                        return Err(IdlError::at(t.pos, "#elif without #if"));
                    };
                    let taken = top.1;
                    let parent = top.2;
                    let v = !taken && self.eval_if(rest, t.pos)?;
                    if let Some(top) = conds.last_mut() {
                        *top = (parent && v, taken || v, parent);
                    }
                }
                "else" => {
                    let Some(top) = conds.last_mut() else {
                        return Err(IdlError::at(t.pos, "#else without #if"));
                    };
                    *top = (top.2 && !top.1, true, top.2);
                }
                "endif" => {
                    if conds.pop().is_none() {
                        return Err(IdlError::at(t.pos, "#endif without #if"));
                    }
                }
                _ if !on => {}
                "define" => {
                    let m = rest
                        .split(|c: char| c.is_whitespace() || c == '(')
                        .next()
                        .unwrap_or("");
                    self.defined.insert(m.to_owned());
                }
                "undef" => {
                    self.defined.remove(rest);
                }
                "include" => {
                    let target = include_target(rest).ok_or_else(|| {
                        IdlError::at(t.pos, "#include expects \"file\" or <file>")
                    })?;
                    let found = self.find_include(path, target).ok_or_else(|| {
                        IdlError::at(t.pos, format!("#include file not found: {target}"))
                    })?;
                    self.file(&found, Some(t.pos), depth + 1)?;
                }
                "pragma" => {
                    let mut words = rest.split_whitespace();
                    match words.next() {
                        Some("once") => {}
                        Some("keylist") => {
                            let ty = words.next().ok_or_else(|| {
                                IdlError::at(t.pos, "#pragma keylist needs a type")
                            })?;
                            self.out.keylists.push(Keylist {
                                ty: ty.to_owned(),
                                members: words
                                    .map(|w| w.trim_end_matches(',').to_owned())
                                    .collect(),
                                pos: t.pos,
                            });
                        }
                        _ => {}
                    }
                }
                "error" => return Err(IdlError::at(t.pos, format!("#error {rest}"))),
                "line" | "warning" | "" => {}
                other => {
                    return Err(IdlError::at(t.pos, format!("unknown directive #{other}")));
                }
            }
        }
        if !conds.is_empty() {
            return Err(IdlError::at(
                Pos {
                    file: idx,
                    line: 0,
                    col: 0,
                },
                "#if without #endif at end of file",
            ));
        }
        Ok(())
    }

    /// Beside the includer, then the include directories, then each ancestor
    /// of the includer's directory (so that rosidl's `#include
    /// "pkg/msg/X.idl"` resolves from `share/other_pkg/msg/Y.idl`).
    fn find_include(&self, including: &Path, target: &str) -> Option<PathBuf> {
        let here = including.parent().map(|p| p.join(target));
        let ancestors = including.ancestors().skip(2).map(|a| a.join(target));
        here.into_iter()
            .chain(self.include_dirs.iter().map(|d| d.join(target)))
            .chain(ancestors)
            .find(|p| self.src.exists(p))
    }

    /// `#if` supports `defined(X)`, `defined X`, `!`, integers, `&&`, `||`.
    fn eval_if(&self, expr: &str, pos: Pos) -> Result<bool, IdlError> {
        let bad = || IdlError::at(pos, format!("unsupported #if expression `{expr}`"));
        let mut any = false;
        for alt in expr.split("||") {
            let mut all = true;
            for term in alt.split("&&") {
                let mut t = term.trim();
                let mut neg = false;
                while let Some(r) = t.strip_prefix('!') {
                    neg = !neg;
                    t = r.trim();
                }
                let v = if let Some(r) = t.strip_prefix("defined") {
                    let name = r
                        .trim()
                        .trim_start_matches('(')
                        .trim_end_matches(')')
                        .trim();
                    self.defined.contains(name)
                } else if let Ok(n) = t.parse::<i64>() {
                    n != 0
                } else {
                    return Err(bad());
                };
                all &= v != neg;
            }
            any |= all;
        }
        Ok(any)
    }
}

fn include_target(rest: &str) -> Option<&str> {
    let r = rest.trim();
    if let Some(x) = r.strip_prefix('"') {
        x.split_once('"').map(|p| p.0)
    } else if let Some(x) = r.strip_prefix('<') {
        x.split_once('>').map(|p| p.0)
    } else {
        None
    }
}

#[cfg(test)]
pub(crate) mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use std::collections::HashMap;

    /// In-memory files for tests.
    pub(crate) struct Mem(pub(crate) HashMap<PathBuf, String>);

    impl Source for Mem {
        fn read(&self, path: &Path) -> Result<String, String> {
            self.0
                .get(path)
                .cloned()
                .ok_or_else(|| "no such file".to_owned())
        }
        fn exists(&self, path: &Path) -> bool {
            self.0.contains_key(path)
        }
    }

    fn run(files: &[(&str, &str)]) -> Result<Vec<Tok>, IdlError> {
        let mem = Mem(files
            .iter()
            .map(|(p, s)| (PathBuf::from(p), s.to_string()))
            .collect());
        let mut pp = Preprocessor::new(&mem, vec![PathBuf::from("inc")]);
        pp.add_file(Path::new(files[0].0))?;
        Ok(pp.finish().tokens.into_iter().map(|t| t.tok).collect())
    }

    #[test]
    fn guards_and_includes() {
        let toks = run(&[
            (
                "d/a.idl",
                "#include \"b.idl\"\n#include <b.idl>\n#include \"c.idl\"\nA",
            ),
            (
                "d/b.idl",
                "#ifndef B_IDL\n#define B_IDL\nB\n#else\n#endif\n",
            ),
            (
                "inc/c.idl",
                "#pragma once\n#if 0\nY\n#elif defined(B_IDL)\nC\n#endif\n",
            ),
        ])
        .unwrap();
        let names: Vec<String> = toks
            .into_iter()
            .map(|t| match t {
                Tok::Ident(s) => s,
                other => format!("{other}"),
            })
            .collect();
        assert_eq!(names, ["B", "C", "A"]);
    }

    #[test]
    fn errors() {
        assert!(run(&[("a.idl", "#include \"zz.idl\"\n")]).is_err());
        assert!(run(&[("a.idl", "#ifdef X\n")]).is_err());
        assert!(
            run(&[("a.idl", "#include \"a.idl\"\n")]).is_ok(),
            "a file is read once"
        );
        assert!(run(&[("a.idl", "#bogus\n")]).is_err());
    }
}
