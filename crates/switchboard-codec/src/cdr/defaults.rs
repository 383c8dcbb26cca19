//! Default values (zero, empty, first enumerator) for members a sample does
//! not carry: the tail of an older appendable writer's sample, members absent
//! from a mutable sample, and members missing from input JSON.

use super::error::{CdrError, CdrErrorKind};
use super::sink::Sink;
use super::{MAX_DEPTH, canonical_discriminator};
use crate::idl::{ConstValue, Member, Primitive, Type, TypeDef, TypeRegistry};

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
                        member(reg, m, s, depth + 1)?;
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

/// A member's default: its `@default` value when it has one that fits,
/// else the type's default.
pub(crate) fn member<S: Sink>(
    reg: &TypeRegistry,
    m: &Member,
    s: &mut S,
    depth: usize,
) -> Result<(), CdrError> {
    let ty = reg.resolve(&m.ty);
    match (&m.default, ty) {
        (Some(ConstValue::Int(i)), Type::Primitive(p))
            if !matches!(p, Primitive::Bool | Primitive::Char | Primitive::WChar) =>
        {
            if matches!(p, Primitive::Float32 | Primitive::Float64) {
                s.f64(*i as f64);
            } else if *i < 0 {
                s.i64(i64::try_from(*i).unwrap_or(0));
            } else {
                s.u64(u64::try_from(*i).unwrap_or(0));
            }
        }
        (Some(ConstValue::Float(f)), Type::Primitive(Primitive::Float32 | Primitive::Float64)) => {
            s.f64(*f)
        }
        (Some(ConstValue::Bool(b)), Type::Primitive(Primitive::Bool)) => s.bool(*b),
        (Some(ConstValue::String(v)), Type::String { .. }) => s.str(v),
        (Some(ConstValue::Char(c)), Type::Primitive(Primitive::Char | Primitive::WChar)) => {
            s.str(c.encode_utf8(&mut [0; 4]))
        }
        _ => emit(reg, &m.ty, s, depth)?,
    }
    Ok(())
}
