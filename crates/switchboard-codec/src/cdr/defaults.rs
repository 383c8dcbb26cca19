//! Default values (zero, empty, first enumerator) for members a sample does
//! not carry: the tail of an older appendable writer's sample, members absent
//! from a mutable sample, and members missing from input JSON.

use super::error::{CdrError, CdrErrorKind};
use super::sink::Sink;
use super::{MAX_DEPTH, canonical_discriminator};
use crate::idl::{Primitive, Type, TypeDef, TypeRegistry};

pub(crate) fn emit<S: Sink>(
    reg: &TypeRegistry,
    ty: &Type,
    s: &mut S,
    depth: usize,
) -> Result<(), CdrError> {
    if depth > MAX_DEPTH {
        return Err(CdrError::new(CdrErrorKind::TooDeep, "nesting too deep"));
    }
    match ty {
        Type::Primitive(p) => match p {
            Primitive::Bool => s.bool(false),
            Primitive::Char | Primitive::WChar => s.str("\0"),
            Primitive::Float32 | Primitive::Float64 => s.f64(0.0),
            _ => s.u64(0),
        },
        Type::String { .. } => s.str(""),
        Type::Sequence { .. } => {
            s.begin_array(0);
            s.end_array();
        }
        Type::Array { elem, dims } => array(reg, elem, dims, s, depth)?,
        Type::Named(id) => match reg.def(*id) {
            TypeDef::Alias { ty, .. } => emit(reg, ty, s, depth + 1)?,
            TypeDef::Enum(e) => match e.enumerators.first() {
                Some((n, _)) => s.str(n),
                None => s.u64(0),
            },
            TypeDef::Struct(st) => {
                s.begin_object();
                for m in &st.members {
                    s.key(&m.name);
                    if m.optional {
                        s.null();
                    } else {
                        emit(reg, &m.ty, s, depth + 1)?;
                    }
                }
                s.end_object();
            }
            TypeDef::Union(u) => {
                s.begin_object();
                if let Some(c) = u.cases.first() {
                    let _ = canonical_discriminator(reg, u, c);
                    s.key(&c.name);
                    emit(reg, &c.ty, s, depth + 1)?;
                }
                s.end_object();
            }
        },
    }
    Ok(())
}

fn array<S: Sink>(
    reg: &TypeRegistry,
    elem: &Type,
    dims: &[u32],
    s: &mut S,
    depth: usize,
) -> Result<(), CdrError> {
    let n = dims.first().copied().unwrap_or(1) as usize;
    s.begin_array(n);
    for _ in 0..n {
        if dims.len() <= 1 {
            emit(reg, elem, s, depth + 1)?;
        } else {
            array(reg, elem, &dims[1..], s, depth + 1)?;
        }
    }
    s.end_array();
    Ok(())
}
