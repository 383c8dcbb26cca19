//! JSON -> CDR: walks a resolved type over a [`serde_json::Value`], writing
//! the XCDR1 or XCDR2 stream the way Cyclone DDS does (so that the bytes are
//! equal to Cyclone's where the encoding is canonical).

use base64::Engine;
use serde_json::Value;

use super::decode::check_bound;
use super::error::{CdrError, CdrErrorKind};
use super::sink::ValueSink;
use super::writer::Writer;
use super::{MAX_DEPTH, enum_wire_size, prim_of};
use crate::idl::{
    EnumType, Extensibility, Member, Primitive, StructType, Type, TypeDef, TypeRegistry,
};

/// What [`Encoder::end_struct`] must finish.
#[derive(Clone, Copy)]
pub(crate) enum StructState {
    Plain,
    ParamList,
    Delimited(usize),
}

/// What [`Encoder::end_member`] must finish.
#[derive(Clone, Copy, Default)]
pub(crate) struct MemberState {
    len_at: Option<usize>,
    origin: Option<usize>,
    pad: bool,
}

pub(crate) struct Encoder<'r> {
    pub(crate) reg: &'r TypeRegistry,
    pub(crate) w: Writer,
    pub(crate) v2: bool,
    /// Only key members (for key serialization).
    pub(crate) keys_only: bool,
    pub(crate) depth: usize,
}

pub(crate) fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

pub(crate) fn expected(what: &str, v: &Value) -> CdrError {
    CdrError::json(format!("expected {what}, found {}", kind(v)))
}

/// A JSON number or numeric string as an integer.
pub(crate) fn json_int(v: &Value) -> Result<i128, CdrError> {
    match v {
        Value::Number(n) => {
            if let Some(i) = n.as_i64() {
                Ok(i128::from(i))
            } else if let Some(u) = n.as_u64() {
                Ok(i128::from(u))
            } else {
                let f = n.as_f64().unwrap_or(f64::NAN);
                if f.fract() == 0.0 && f.abs() < 1.8e19 {
                    Ok(f as i128)
                } else {
                    Err(CdrError::json(format!("expected integer, found {n}")))
                }
            }
        }
        Value::String(s) => s
            .trim()
            .parse::<i128>()
            .map_err(|_| CdrError::json(format!("expected integer, found string {s:?}"))),
        other => Err(expected("integer", other)),
    }
}

pub(crate) fn json_float(v: &Value) -> Result<f64, CdrError> {
    match v {
        Value::Number(n) => n.as_f64().ok_or_else(|| CdrError::json("bad number")),
        Value::String(s) => match s.trim() {
            "NaN" | "nan" => Ok(f64::NAN),
            "Infinity" | "inf" | "+Infinity" => Ok(f64::INFINITY),
            "-Infinity" | "-inf" => Ok(f64::NEG_INFINITY),
            t => t
                .parse::<f64>()
                .map_err(|_| CdrError::json(format!("expected number, found string {s:?}"))),
        },
        other => Err(expected("number", other)),
    }
}

pub(crate) fn json_char(v: &Value, max: u32) -> Result<u32, CdrError> {
    let Value::String(s) = v else {
        return Err(expected("one-character string", v));
    };
    let mut it = s.chars();
    match (it.next(), it.next()) {
        (Some(c), None) if u32::from(c) <= max => Ok(u32::from(c)),
        (Some(c), None) => Err(CdrError::json(format!("character {c:?} does not fit"))),
        _ => Err(CdrError::json("expected a one-character string")),
    }
}

pub(crate) fn ranged(v: &Value, lo: i128, hi: i128, name: &str) -> Result<i128, CdrError> {
    let i = json_int(v)?;
    if i < lo || i > hi {
        return Err(CdrError::json(format!("{i} is out of range for {name}")));
    }
    Ok(i)
}

impl<'r> Encoder<'r> {
    pub(crate) fn new(reg: &'r TypeRegistry, w: Writer, v2: bool) -> Self {
        Encoder {
            reg,
            w,
            v2,
            keys_only: false,
            depth: 0,
        }
    }

    pub(crate) fn enter(&mut self) -> Result<(), CdrError> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(CdrError::new(CdrErrorKind::TooDeep, "nesting too deep"));
        }
        Ok(())
    }

    pub(crate) fn value(&mut self, ty: &Type, v: &Value) -> Result<(), CdrError> {
        match ty {
            Type::Primitive(p) => self.primitive(*p, v),
            Type::String { bound, wide } => self.string(*bound, *wide, v),
            Type::Sequence { elem, bound } => self.sequence(elem, *bound, v),
            Type::Array { elem, dims } => self.array(elem, dims, v),
            Type::Named(id) => {
                let reg = self.reg;
                match reg.def(*id) {
                    TypeDef::Alias { ty, .. } => self.value(ty, v),
                    TypeDef::Struct(st) => self.struct_(st, v),
                    TypeDef::Union(u) => self.union_(u, v),
                    TypeDef::Enum(e) => {
                        let x = enum_value(e, v)?;
                        self.enum_wire(e.bit_bound, x);
                        Ok(())
                    }
                }
            }
        }
    }

    pub(crate) fn enum_wire(&mut self, bit_bound: u8, x: i32) {
        match enum_wire_size(bit_bound, self.v2) {
            1 => self.w.u8(x as u8),
            2 => self.w.u16(x as u16),
            _ => self.w.u32(x as u32),
        }
    }

    /// Fast path for an integer JSON number into a numeric primitive;
    /// `Ok(false)` when `p` is not one (the caller falls back to `primitive`).
    pub(crate) fn int_fast(&mut self, p: Primitive, i: i128) -> Result<bool, CdrError> {
        use Primitive::*;
        let range = |lo: i128, hi: i128, name: &str| {
            if i < lo || i > hi {
                Err(CdrError::json(format!("{i} is out of range for {name}")))
            } else {
                Ok(i)
            }
        };
        let w = &mut self.w;
        match p {
            Octet | UInt8 => w.u8(range(0, 255, "octet")? as u8),
            Int8 => w.u8(range(-128, 127, "int8")? as i8 as u8),
            Int16 => w.u16(range(i16::MIN.into(), i16::MAX.into(), "int16")? as i16 as u16),
            UInt16 => w.u16(range(0, u16::MAX.into(), "uint16")? as u16),
            Int32 => w.u32(range(i32::MIN.into(), i32::MAX.into(), "int32")? as i32 as u32),
            UInt32 => w.u32(range(0, u32::MAX.into(), "uint32")? as u32),
            Int64 => w.u64(range(i64::MIN.into(), i64::MAX.into(), "int64")? as i64 as u64),
            UInt64 => w.u64(range(0, u64::MAX.into(), "uint64")? as u64),
            Float32 => w.u32((i as f32).to_bits()),
            Float64 => w.u64((i as f64).to_bits()),
            Bool | Char | WChar => return Ok(false),
        }
        Ok(true)
    }

    pub(crate) fn primitive(&mut self, p: Primitive, v: &Value) -> Result<(), CdrError> {
        use Primitive::*;
        let w = &mut self.w;
        match p {
            Bool => match v {
                Value::Bool(b) => w.u8(u8::from(*b)),
                other => return Err(expected("boolean", other)),
            },
            Char => w.u8(json_char(v, 0xff)? as u8),
            WChar => w.u16(json_char(v, 0xffff)? as u16),
            Octet | UInt8 => w.u8(ranged(v, 0, 255, "octet")? as u8),
            Int8 => w.u8(ranged(v, -128, 127, "int8")? as i8 as u8),
            Int16 => w.u16(ranged(v, i16::MIN.into(), i16::MAX.into(), "int16")? as i16 as u16),
            UInt16 => w.u16(ranged(v, 0, u16::MAX.into(), "uint16")? as u16),
            Int32 => w.u32(ranged(v, i32::MIN.into(), i32::MAX.into(), "int32")? as i32 as u32),
            UInt32 => w.u32(ranged(v, 0, u32::MAX.into(), "uint32")? as u32),
            Int64 => w.u64(ranged(v, i64::MIN.into(), i64::MAX.into(), "int64")? as i64 as u64),
            UInt64 => w.u64(ranged(v, 0, u64::MAX.into(), "uint64")? as u64),
            Float32 => w.u32((json_float(v)? as f32).to_bits()),
            Float64 => w.u64(json_float(v)?.to_bits()),
        }
        Ok(())
    }

    pub(crate) fn string(
        &mut self,
        bound: Option<u32>,
        wide: bool,
        v: &Value,
    ) -> Result<(), CdrError> {
        let Value::String(s) = v else {
            return Err(expected("string", v));
        };
        self.str_value(bound, wide, s)
    }

    /// Writes a string or wstring.
    pub(crate) fn str_value(
        &mut self,
        bound: Option<u32>,
        wide: bool,
        s: &str,
    ) -> Result<(), CdrError> {
        if wide {
            let units: Vec<u16> = s.encode_utf16().collect();
            check_bound(units.len(), bound)?;
            self.w.u32(
                u32::try_from(units.len() * 2).map_err(|_| CdrError::json("string too long"))?,
            );
            for u in units {
                self.w.u16(u);
            }
        } else {
            if s.contains('\0') {
                return Err(CdrError::json("string contains a NUL character"));
            }
            check_bound(s.len(), bound)?;
            self.w
                .u32(u32::try_from(s.len() + 1).map_err(|_| CdrError::json("string too long"))?);
            self.w.buf.extend_from_slice(s.as_bytes());
            self.w.u8(0);
        }
        Ok(())
    }

    /// Writes a DHEADER around `f` when `delimited`.
    pub(crate) fn delimited(
        &mut self,
        delimited: bool,
        f: impl FnOnce(&mut Self) -> Result<(), CdrError>,
    ) -> Result<(), CdrError> {
        if !delimited {
            return f(self);
        }
        let at = self.w.reserve_u32();
        f(self)?;
        self.w.patch_len(at);
        Ok(())
    }

    pub(crate) fn sequence(
        &mut self,
        elem: &Type,
        bound: Option<u32>,
        v: &Value,
    ) -> Result<(), CdrError> {
        self.enter()?;
        let p = prim_of(self.reg, elem);
        if let (Some(p), Value::String(s)) = (p, v)
            && p.is_byte()
        {
            let bytes = decode_base64(s)?;
            check_bound(bytes.len(), bound)?;
            self.w
                .u32(u32::try_from(bytes.len()).map_err(|_| CdrError::json("too long"))?);
            self.w.buf.extend_from_slice(&bytes);
            self.depth -= 1;
            return Ok(());
        }
        let Value::Array(items) = v else {
            return Err(expected("array", v));
        };
        check_bound(items.len(), bound)?;
        self.delimited(self.v2 && p.is_none(), |e| {
            e.w.u32(u32::try_from(items.len()).map_err(|_| CdrError::json("too long"))?);
            if let Some(p) = p
                && !items.is_empty()
            {
                e.w.align(p.size());
            }
            e.items(elem, p, items)
        })?;
        self.depth -= 1;
        Ok(())
    }

    pub(crate) fn items(
        &mut self,
        elem: &Type,
        p: Option<Primitive>,
        items: &[Value],
    ) -> Result<(), CdrError> {
        if let Some(p) = p {
            self.w.buf.reserve(items.len() * p.size());
        }
        for (i, it) in items.iter().enumerate() {
            match p {
                Some(p) => self.primitive(p, it),
                None => self.value(elem, it),
            }
            .map_err(|e| e.at_index(i))?;
        }
        Ok(())
    }

    pub(crate) fn array(&mut self, elem: &Type, dims: &[u32], v: &Value) -> Result<(), CdrError> {
        self.enter()?;
        let p = prim_of(self.reg, elem);
        self.delimited(self.v2 && p.is_none(), |e| {
            if let Some(p) = p {
                e.w.align(p.size());
            }
            e.array_dims(elem, p, dims, v)
        })?;
        self.depth -= 1;
        Ok(())
    }

    pub(crate) fn array_dims(
        &mut self,
        elem: &Type,
        p: Option<Primitive>,
        dims: &[u32],
        v: &Value,
    ) -> Result<(), CdrError> {
        let n = dims.first().copied().unwrap_or(1) as usize;
        if let (Some(p), Value::String(s), 1) = (p, v, dims.len())
            && p.is_byte()
        {
            let bytes = decode_base64(s)?;
            if bytes.len() != n {
                return Err(CdrError::json(format!(
                    "expected {n} bytes, found {}",
                    bytes.len()
                )));
            }
            self.w.buf.extend_from_slice(&bytes);
            return Ok(());
        }
        let Value::Array(items) = v else {
            return Err(expected("array", v));
        };
        if items.len() != n {
            return Err(CdrError::json(format!(
                "expected an array of {n} elements, found {}",
                items.len()
            )));
        }
        if dims.len() <= 1 {
            return self.items(elem, p, items);
        }
        for (i, it) in items.iter().enumerate() {
            self.array_dims(elem, p, &dims[1..], it)
                .map_err(|e| e.at_index(i))?;
        }
        Ok(())
    }

    pub(crate) fn struct_(&mut self, st: &StructType, v: &Value) -> Result<(), CdrError> {
        self.enter()?;
        let Value::Object(obj) = v else {
            return Err(expected("object", v));
        };
        let keyed = self.keys_only && st.is_keyed();
        let mut seen = 0usize;
        let ss = self.begin_struct(st);
        for m in st.members.iter().filter(|m| !keyed || m.key) {
            seen += usize::from(obj.contains_key(&m.name));
            let mv = present(self.reg, obj.get(&m.name), m)?;
            self.member(st, m, mv.as_deref())?;
        }
        self.end_struct(ss);
        if seen < obj.len()
            && !self.keys_only
            && let Some(k) = obj
                .keys()
                .find(|k| !st.members.iter().any(|m| &m.name == *k))
        {
            return Err(CdrError::json("unknown member").in_field(k));
        }
        self.depth -= 1;
        Ok(())
    }

    /// Writes member `m` of `st` with value `v` (`None`: an absent optional).
    pub(crate) fn member(
        &mut self,
        st: &StructType,
        m: &Member,
        v: Option<&Value>,
    ) -> Result<(), CdrError> {
        let Some(ms) = self.begin_member(st, m, v.is_some()) else {
            return Ok(());
        };
        if let Some(v) = v {
            let r = self.value(&m.ty, v).map_err(|e| e.in_field(&m.name));
            self.end_member(ms);
            r?;
        } else {
            self.end_member(ms);
        }
        Ok(())
    }

    /// Writes what precedes a struct's members (a DHEADER placeholder in
    /// XCDR2 for appendable and mutable structs).
    pub(crate) fn begin_struct(&mut self, st: &StructType) -> StructState {
        match (st.extensibility, self.v2) {
            (Extensibility::Mutable, false) => StructState::ParamList,
            (Extensibility::Final, _) | (Extensibility::Appendable, false) => StructState::Plain,
            (_, true) => StructState::Delimited(self.w.reserve_u32()),
        }
    }

    pub(crate) fn end_struct(&mut self, ss: StructState) {
        match ss {
            StructState::Plain => {}
            StructState::ParamList => {
                self.w.align(4);
                self.w.u16(0x3f02 | 0x4000);
                self.w.u16(0);
            }
            StructState::Delimited(at) => self.w.patch_len(at),
        }
    }

    /// Writes what precedes a member's value: parameter header (XCDR1
    /// mutable, XCDR1 optional), EMHEADER (XCDR2 mutable), presence flag
    /// (XCDR2 optional). `None` when nothing at all is written (an absent
    /// member of a mutable struct).
    pub(crate) fn begin_member(
        &mut self,
        st: &StructType,
        m: &Member,
        present: bool,
    ) -> Option<MemberState> {
        let mut ms = MemberState::default();
        match (st.extensibility, self.v2) {
            (Extensibility::Mutable, _) if !present => return None,
            (Extensibility::Mutable, false) => {
                self.w.align(4);
                self.w.u16(0x3f01 | 0x4000);
                self.w.u16(8);
                self.w.u32((u32::from(m.must_understand) << 30) | m.id);
                ms.len_at = Some(self.w.reserve_u32());
                ms.origin = Some(self.w.origin);
                self.w.origin = self.w.buf.len();
                ms.pad = true;
            }
            (Extensibility::Mutable, true) => {
                self.w.align(4);
                let lc = self.length_code(&m.ty);
                self.w
                    .u32((u32::from(m.must_understand) << 31) | (lc << 28) | m.id);
                if lc == 4 {
                    ms.len_at = Some(self.w.reserve_u32());
                }
            }
            (_, true) if m.optional => self.w.u8(u8::from(present)),
            (_, false) if m.optional => {
                self.w.align(4);
                self.w.u16(0x3f01 | 0x4000);
                self.w.u16(8);
                self.w.u32((u32::from(m.must_understand) << 31) | m.id);
                ms.len_at = Some(self.w.reserve_u32());
                ms.origin = Some(self.w.origin);
                self.w.origin = self.w.buf.len();
            }
            _ => {}
        }
        Some(ms)
    }

    pub(crate) fn end_member(&mut self, ms: MemberState) {
        if let Some(o) = ms.origin {
            self.w.origin = o;
        }
        if ms.pad {
            self.w.align(4);
        }
        if let Some(at) = ms.len_at {
            self.w.patch_len(at);
        }
    }

    /// The EMHEADER length code Cyclone uses for a member of type `ty`.
    pub(crate) fn length_code(&self, ty: &Type) -> u32 {
        match self.reg.resolve(ty) {
            Type::Primitive(p) => match p.size() {
                1 => 0,
                2 => 1,
                4 => 2,
                _ => 3,
            },
            Type::Named(id) => match self.reg.def(*id) {
                TypeDef::Enum(e) => match enum_wire_size(e.bit_bound, true) {
                    1 => 0,
                    2 => 1,
                    _ => 2,
                },
                _ => 4,
            },
            Type::String { .. } => 5,
            Type::Sequence { elem, .. } => match prim_of(self.reg, elem).map(Primitive::size) {
                Some(1) | None => 5,
                Some(4) => 6,
                Some(8) => 7,
                Some(_) => 4,
            },
            Type::Array { elem, .. } => {
                if prim_of(self.reg, elem).is_some() {
                    4
                } else {
                    5
                }
            }
        }
    }
}

/// The value to encode for member `m`: the JSON value, or its default when
/// missing; `None` for an absent optional.
pub(crate) fn present<'v>(
    reg: &TypeRegistry,
    v: Option<&'v Value>,
    m: &Member,
) -> Result<Option<std::borrow::Cow<'v, Value>>, CdrError> {
    match v {
        Some(Value::Null) if m.optional => Ok(None),
        Some(v) => Ok(Some(std::borrow::Cow::Borrowed(v))),
        None if m.optional => Ok(None),
        None => default_member_json(reg, m)
            .map(|d| Some(std::borrow::Cow::Owned(d)))
            .map_err(|e| e.in_field(&m.name)),
    }
}

pub(crate) fn enum_value(e: &EnumType, v: &Value) -> Result<i32, CdrError> {
    match v {
        Value::String(s) => e
            .value_of(s)
            .or_else(|| s.rsplit("::").next().and_then(|n| e.value_of(n)))
            .ok_or_else(|| CdrError::json(format!("{s:?} is not an enumerator of {}", e.name))),
        Value::Number(_) => {
            let i = json_int(v)?;
            i32::try_from(i)
                .ok()
                .filter(|x| e.name_of(*x).is_some())
                .ok_or_else(|| CdrError::json(format!("{i} is not a value of {}", e.name)))
        }
        other => Err(expected("enumerator name", other)),
    }
}

/// The default of member `m` (its `@default`, else its type's) as JSON.
pub(crate) fn default_member_json(reg: &TypeRegistry, m: &Member) -> Result<Value, CdrError> {
    let mut s = ValueSink::default();
    super::defaults::member(reg, m, &mut s, 0)?;
    Ok(s.finish())
}

pub(crate) fn default_json(reg: &TypeRegistry, ty: &Type) -> Result<Value, CdrError> {
    let mut s = ValueSink::default();
    super::defaults::emit(reg, ty, &mut s, 0)?;
    Ok(s.finish())
}

pub(crate) fn decode_base64(s: &str) -> Result<Vec<u8>, CdrError> {
    let e = &base64::engine::general_purpose::STANDARD;
    e.decode(s)
        .or_else(|_| base64::engine::general_purpose::STANDARD_NO_PAD.decode(s))
        .map_err(|err| CdrError::json(format!("expected an array of bytes or base64 text: {err}")))
}
