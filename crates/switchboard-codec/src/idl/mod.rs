//! IDL types at run time: parse OMG IDL 4.2 files (the subset DDS and ROS 2 use)
//! into a [`TypeRegistry`] the [`cdr`](crate::cdr) codec walks, without code
//! generation.
//!
//! Supported: nested `module`s (reopenable), `struct` with single inheritance,
//! `union` with `switch` on an integer, char, boolean or enum discriminator and
//! a `default` branch, `enum` (with `@value`, `@bit_bound`), `typedef`,
//! `const` (integer, float, string, char, boolean, and expressions of earlier
//! constants, usable in bounds, array dimensions and case labels),
//! `sequence<T>` / `sequence<T, N>`, `string` / `string<N>`, `wstring`,
//! multi-dimensional arrays, every primitive (`long double` is rejected),
//! forward declarations, and the annotations `@key`, `@optional`, `@id`,
//! `@hashid`, `@autoid`, `@final`, `@appendable`, `@mutable`,
//! `@extensibility`, `@must_understand`, `@bit_bound`, `@value`, `@default`
//! (the value of a member missing from input JSON); others (`@topic`, `@verbatim`, `@unit`, `@range`, `@nested`, ...) are
//! accepted and ignored. The preprocessor resolves `#include "f"` relative to
//! the including file (then the include directories), honours include guards,
//! `#pragma once` and `#pragma keylist TYPE member...`, and ignores other
//! pragmas. Every error names the file, line and column.
//!
//! ```
//! use switchboard_codec::idl::TypeRegistry;
//!
//! let reg = TypeRegistry::from_idl_str("sensors.idl", r#"
//!     module sensors {
//!         const long MAX_ID = 16;
//!         @topic @appendable
//!         struct Temperature {
//!             @key string<MAX_ID> id;
//!             double celsius;
//!         };
//!     };
//! "#)?;
//! let ty = reg.get("sensors::Temperature").expect("declared");
//! assert!(reg.struct_type(ty).is_some_and(|s| s.is_keyed()));
//! # Ok::<(), switchboard_codec::idl::IdlError>(())
//! ```

mod annot;
mod decls;
mod expr;
mod lexer;
mod parser;
mod preproc;
mod types;
mod typespec;

use std::collections::HashMap;
use std::path::{Path, PathBuf};

pub use types::{
    ConstValue, EnumType, Extensibility, Member, Primitive, StructType, Type, TypeDef, TypeId,
    UnionCase, UnionType,
};

use parser::{Builder, Entity, Parser};
use preproc::{Preprocessor, Source};

/// A position in an IDL source file (file index into the registry's file list).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Pos {
    pub(crate) file: u32,
    pub(crate) line: u32,
    pub(crate) col: u32,
}

/// An IDL file could not be read or parsed. Displays as `file:line:col: message`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{file}:{line}:{col}: {message}")]
pub struct IdlError {
    /// The file (as given or as found through `#include`).
    pub file: String,
    /// 1-based line (0 when the error concerns the whole file).
    pub line: u32,
    /// 1-based column (0 when the error concerns the whole file).
    pub col: u32,
    /// What is wrong.
    pub message: String,
    file_index: Option<u32>,
}

impl IdlError {
    pub(crate) fn at(pos: Pos, message: impl Into<String>) -> Self {
        IdlError {
            file: String::new(),
            line: pos.line,
            col: pos.col,
            message: message.into(),
            file_index: Some(pos.file),
        }
    }

    pub(crate) fn file(path: &Path, message: impl Into<String>) -> Self {
        IdlError {
            file: path.display().to_string(),
            line: 0,
            col: 0,
            message: message.into(),
            file_index: None,
        }
    }

    fn with_files(mut self, files: &[PathBuf]) -> Self {
        if let Some(i) = self.file_index.take()
            && let Some(f) = files.get(i as usize)
        {
            self.file = f.display().to_string();
        }
        self
    }
}

/// Every type and constant declared by a set of IDL files, by fully scoped name.
#[derive(Debug, Clone, Default)]
pub struct TypeRegistry {
    defs: Vec<TypeDef>,
    names: HashMap<String, TypeId>,
    consts: HashMap<String, ConstValue>,
    files: Vec<PathBuf>,
}

struct MemSource<'a> {
    name: &'a Path,
    text: &'a str,
}

impl Source for MemSource<'_> {
    fn read(&self, path: &Path) -> Result<String, String> {
        if path == self.name {
            Ok(self.text.to_owned())
        } else {
            Err("in-memory IDL cannot #include other files".to_owned())
        }
    }
    fn exists(&self, path: &Path) -> bool {
        path == self.name
    }
}

impl TypeRegistry {
    /// Parses `files` (in order, sharing one set of declarations), resolving
    /// `#include`s relative to each including file.
    pub fn from_idl_files<P: AsRef<Path>>(files: &[P]) -> Result<Self, IdlError> {
        Self::from_idl_files_with_includes(files, &[] as &[&Path])
    }

    /// Like [`from_idl_files`](Self::from_idl_files), also searching
    /// `include_dirs` for `#include`d files not found beside the includer.
    pub fn from_idl_files_with_includes<P: AsRef<Path>, D: AsRef<Path>>(
        files: &[P],
        include_dirs: &[D],
    ) -> Result<Self, IdlError> {
        let dirs = include_dirs
            .iter()
            .map(|d| d.as_ref().to_path_buf())
            .collect();
        Self::build(&preproc::Fs, dirs, files.iter().map(|f| f.as_ref()))
    }

    /// Parses IDL text held in memory; `name` is used in error messages.
    /// `#include` is not available here.
    pub fn from_idl_str(name: &str, text: &str) -> Result<Self, IdlError> {
        let path = Path::new(name);
        Self::build(
            &MemSource { name: path, text },
            Vec::new(),
            std::iter::once(path),
        )
    }

    fn build<'p>(
        src: &dyn Source,
        dirs: Vec<PathBuf>,
        files: impl Iterator<Item = &'p Path>,
    ) -> Result<Self, IdlError> {
        let mut pp = Preprocessor::new(src, dirs);
        let mut err = None;
        for f in files {
            if let Err(e) = pp.add_file(f) {
                err = Some(e);
                break;
            }
        }
        let pre = pp.finish();
        if let Some(e) = err {
            return Err(e.with_files(&pre.files));
        }
        let files = pre.files;
        let mut p = Parser::new(&pre.tokens, Builder::default());
        p.parse_all().map_err(|e| e.with_files(&files))?;
        let Builder {
            defs,
            def_pos,
            names,
        } = p.b;
        let mut out_defs = Vec::with_capacity(defs.len());
        for (i, d) in defs.into_iter().enumerate() {
            match d {
                Some(d) => out_defs.push(d),
                None => {
                    let pos = def_pos.get(i).copied().unwrap_or_default();
                    return Err(IdlError::at(pos, "forward-declared type is never defined")
                        .with_files(&files));
                }
            }
        }
        let mut reg = TypeRegistry {
            defs: out_defs,
            names: HashMap::new(),
            consts: HashMap::new(),
            files,
        };
        for (n, e) in names {
            match e {
                Entity::Type(id) => {
                    reg.names.insert(n, id);
                }
                Entity::Const(v) => {
                    reg.consts.insert(n, v);
                }
                Entity::Module => {}
            }
        }
        for kl in pre.keylists {
            let Some(id) = reg.get(&kl.ty) else {
                return Err(IdlError::at(
                    kl.pos,
                    format!("#pragma keylist: unknown type `{}`", kl.ty),
                )
                .with_files(&reg.files));
            };
            let Some(TypeDef::Struct(s)) = reg.defs.get_mut(id.0 as usize) else {
                return Err(
                    IdlError::at(kl.pos, "#pragma keylist needs a struct").with_files(&reg.files)
                );
            };
            for k in &kl.members {
                match s.members.iter_mut().find(|m| &m.name == k) {
                    Some(m) => m.key = true,
                    None => {
                        return Err(IdlError::at(
                            kl.pos,
                            format!("#pragma keylist: no member `{k}`"),
                        )
                        .with_files(&reg.files));
                    }
                }
            }
        }
        Ok(reg)
    }

    /// Looks a type up by fully scoped name: `sensors::Temperature`, with or
    /// without a leading `::`; `/` and `.` are accepted as separators
    /// (`std_msgs/msg/String`), and a ROS 2 DDS type name
    /// (`std_msgs::msg::dds_::String_`) finds `std_msgs::msg::String`.
    pub fn get(&self, name: &str) -> Option<TypeId> {
        let n = name.trim_start_matches("::");
        if let Some(id) = self.names.get(n) {
            return Some(*id);
        }
        let n = n.replace(['/', '.'], "::");
        if let Some(id) = self.names.get(&n) {
            return Some(*id);
        }
        if n.contains("::dds_::") && n.ends_with('_') {
            let n = n.replacen("::dds_::", "::", 1);
            return self.names.get(&n[..n.len() - 1]).copied();
        }
        None
    }

    /// The declaration behind `id`.
    ///
    /// # Panics
    /// If `id` comes from another registry with more types (a programming error).
    pub fn def(&self, id: TypeId) -> &TypeDef {
        &self.defs[id.0 as usize]
    }

    /// The struct behind `id` (through typedefs), if it is one.
    pub fn struct_type(&self, id: TypeId) -> Option<&StructType> {
        match self.resolve(&Type::Named(id)) {
            Type::Named(r) => match self.def(*r) {
                TypeDef::Struct(s) => Some(s),
                _ => None,
            },
            _ => None,
        }
    }

    /// Follows typedefs until a non-alias type.
    pub fn resolve<'a>(&'a self, mut ty: &'a Type) -> &'a Type {
        while let Type::Named(id) = ty {
            match self.def(*id) {
                TypeDef::Alias { ty: t, .. } => ty = t,
                _ => break,
            }
        }
        ty
    }

    /// Every declared type with its id, in declaration order.
    pub fn types(&self) -> impl Iterator<Item = (TypeId, &TypeDef)> {
        self.defs
            .iter()
            .enumerate()
            .map(|(i, d)| (TypeId(i as u32), d))
    }

    /// A constant (or enumerator) by fully scoped name.
    pub fn constant(&self, name: &str) -> Option<&ConstValue> {
        self.consts.get(name.trim_start_matches("::"))
    }

    /// The files read, in the order first read (includes included).
    pub fn files(&self) -> &[PathBuf] {
        &self.files
    }
}

#[cfg(test)]
mod tests;
