//! CDR -> JSON: walks a resolved type over the bytes, emitting into a [`Sink`].
//! Every length is checked against the bytes left before anything is sized
//! from it; nesting is limited to [`MAX_DEPTH`].

use super::error::{CdrError, CdrErrorKind};
use super::reader::Reader;
use super::sink::Sink;
use super::{MAX_DEPTH, enum_wire_size, prim_of};
use crate::idl::{Extensibility, Member, Primitive, StructType, Type, TypeDef, TypeRegistry};

pub(crate) struct Decoder<'r, 'a, S> {
    pub(crate) reg: &'r TypeRegistry,
    pub(crate) r: Reader<'a>,
    pub(crate) s: S,
    pub(crate) v2: bool,
    pub(crate) depth: usize,
}

impl<'r, 'a, S: Sink> Decoder<'r, 'a, S> {
    pub(crate) fn new(reg: &'r TypeRegistry, r: Reader<'a>, s: S, v2: bool) -> Self {
        Decoder {
            reg,
            r,
            s,
            v2,
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

    pub(crate) fn value(&mut self, ty: &Type) -> Result<(), CdrError> {
        match ty {
            Type::Primitive(p) => self.primitive(*p),
            Type::String { bound, wide: false } => self.string(*bound),
            Type::String { bound, wide: true } => self.wstring(*bound),
            Type::Sequence { elem, bound } => self.sequence(elem, *bound),
            Type::Array { elem, dims } => self.array(elem, dims),
            Type::Named(id) => {
                let reg = self.reg;
                match reg.def(*id) {
                    TypeDef::Alias { ty, .. } => self.value(ty),
                    TypeDef::Struct(st) => self.struct_(st),
                    TypeDef::Union(u) => self.union_(u),
                    TypeDef::Enum(e) => {
                        let v = self.enum_wire(e.bit_bound)?;
                        match e.name_of(v) {
                            Some(n) => self.s.str(n),
                            None => self.s.i64(i64::from(v)),
                        }
                        Ok(())
                    }
                }
            }
        }
    }

    pub(crate) fn enum_wire(&mut self, bit_bound: u8) -> Result<i32, CdrError> {
        Ok(match enum_wire_size(bit_bound, self.v2) {
            1 => i32::from(self.r.u8()? as i8),
            2 => i32::from(self.r.u16()? as i16),
            _ => self.r.u32()? as i32,
        })
    }

    pub(crate) fn primitive(&mut self, p: Primitive) -> Result<(), CdrError> {
        use Primitive::*;
        let r = &mut self.r;
        match p {
            Bool => {
                let b = r.u8()?;
                if b > 1 {
                    return Err(CdrError::malformed(format!(
                        "boolean byte {b} is not 0 or 1"
                    )));
                }
                self.s.bool(b == 1);
            }
            Char => {
                let c = char::from(r.u8()?);
                self.s.str(c.encode_utf8(&mut [0; 4]));
            }
            WChar => {
                let u = r.u16()?;
                let c = char::from_u32(u32::from(u)).ok_or_else(|| {
                    CdrError::malformed(format!("wchar {u:#x} is a lone surrogate"))
                })?;
                self.s.str(c.encode_utf8(&mut [0; 4]));
            }
            Octet | UInt8 => self.s.u64(u64::from(r.u8()?)),
            Int8 => self.s.i64(i64::from(r.u8()? as i8)),
            Int16 => self.s.i64(i64::from(r.u16()? as i16)),
            UInt16 => self.s.u64(u64::from(r.u16()?)),
            Int32 => self.s.i64(i64::from(r.u32()? as i32)),
            UInt32 => self.s.u64(u64::from(r.u32()?)),
            Int64 => self.s.i64(r.u64()? as i64),
            UInt64 => self.s.u64(r.u64()?),
            Float32 => self.s.f32(f32::from_bits(r.u32()?)),
            Float64 => self.s.f64(f64::from_bits(r.u64()?)),
        }
        Ok(())
    }

    /// `n` contiguous primitives, already aligned and bounds-checked by the caller.
    pub(crate) fn primitives(&mut self, p: Primitive, n: usize) -> Result<(), CdrError> {
        use Primitive::*;
        let bytes = self.r.take(n * p.size())?;
        if p.is_byte() {
            self.s.bytes(bytes);
            return Ok(());
        }
        let be = self.r.big_endian;
        self.s.begin_array(n);
        macro_rules! each {
            ($t:ty, $n:expr, |$v:ident| $emit:expr) => {
                for c in bytes.chunks_exact($n) {
                    let mut a = [0u8; $n];
                    a.copy_from_slice(c);
                    let $v = if be {
                        <$t>::from_be_bytes(a)
                    } else {
                        <$t>::from_le_bytes(a)
                    };
                    $emit;
                }
            };
        }
        let s = &mut self.s;
        match p {
            Bool => {
                for (i, &b) in bytes.iter().enumerate() {
                    if b > 1 {
                        return Err(
                            CdrError::malformed(format!("boolean byte {b} is not 0 or 1"))
                                .at_index(i),
                        );
                    }
                    s.bool(b == 1);
                }
            }
            Char => {
                for &b in bytes {
                    s.str(char::from(b).encode_utf8(&mut [0; 4]));
                }
            }
            Int8 => {
                for &b in bytes {
                    s.i64(i64::from(b as i8));
                }
            }
            Octet | UInt8 => {}
            WChar => {
                for (i, c) in bytes.chunks_exact(2).enumerate() {
                    let u = if be {
                        u16::from_be_bytes([c[0], c[1]])
                    } else {
                        u16::from_le_bytes([c[0], c[1]])
                    };
                    let ch = char::from_u32(u32::from(u)).ok_or_else(|| {
                        CdrError::malformed("lone surrogate in wchar").at_index(i)
                    })?;
                    s.str(ch.encode_utf8(&mut [0; 4]));
                }
            }
            Int16 => each!(i16, 2, |v| s.i64(i64::from(v))),
            UInt16 => each!(u16, 2, |v| s.u64(u64::from(v))),
            Int32 => each!(i32, 4, |v| s.i64(i64::from(v))),
            UInt32 => each!(u32, 4, |v| s.u64(u64::from(v))),
            Int64 => each!(i64, 8, |v| s.i64(v)),
            UInt64 => each!(u64, 8, |v| s.u64(v)),
            Float32 => each!(u32, 4, |v| s.f32(f32::from_bits(v))),
            Float64 => each!(u64, 8, |v| s.f64(f64::from_bits(v))),
        }
        self.s.end_array();
        Ok(())
    }

    pub(crate) fn string(&mut self, bound: Option<u32>) -> Result<(), CdrError> {
        let n = self.r.u32()? as usize;
        if n == 0 {
            self.s.str("");
            return Ok(());
        }
        let b = self.r.take(n)?;
        let (body, nul) = b.split_at(n - 1);
        if nul != [0] {
            return Err(CdrError::malformed("string is not NUL-terminated"));
        }
        check_bound(body.len(), bound)?;
        let s = std::str::from_utf8(body)
            .map_err(|e| CdrError::malformed(format!("string is not UTF-8: {e}")))?;
        self.s.str(s);
        Ok(())
    }

    pub(crate) fn wstring(&mut self, bound: Option<u32>) -> Result<(), CdrError> {
        let n = self.r.u32()? as usize;
        if !n.is_multiple_of(2) {
            return Err(CdrError::malformed("wstring byte length is odd"));
        }
        let b = self.r.take(n)?;
        check_bound(n / 2, bound)?;
        let be = self.r.big_endian;
        let units = b.chunks_exact(2).map(|c| {
            if be {
                u16::from_be_bytes([c[0], c[1]])
            } else {
                u16::from_le_bytes([c[0], c[1]])
            }
        });
        let s: String = char::decode_utf16(units)
            .collect::<Result<_, _>>()
            .map_err(|_| CdrError::malformed("wstring is not valid UTF-16"))?;
        self.s.str(&s);
        Ok(())
    }

    /// Runs `f` inside the region of a DHEADER when `delimited`.
    pub(crate) fn delimited<T>(
        &mut self,
        delimited: bool,
        f: impl FnOnce(&mut Self) -> Result<T, CdrError>,
    ) -> Result<T, CdrError> {
        if !delimited {
            return f(self);
        }
        let end = self.r.dheader()?;
        let saved = self.r.end;
        self.r.end = end;
        let out = f(self);
        self.r.end = saved;
        let out = out?;
        self.r.pos = end;
        Ok(out)
    }

    pub(crate) fn sequence(&mut self, elem: &Type, bound: Option<u32>) -> Result<(), CdrError> {
        self.enter()?;
        let p = prim_of(self.reg, elem);
        self.delimited(self.v2 && p.is_none(), |d| {
            let n = d.r.count(p.map_or(1, Primitive::size))?;
            check_bound(n, bound)?;
            match p {
                Some(p) => {
                    if n > 0 {
                        d.r.align(p.size())?;
                    }
                    d.primitives(p, n)
                }
                None => {
                    d.s.begin_array(n);
                    for i in 0..n {
                        d.value(elem).map_err(|e| e.at_index(i))?;
                    }
                    d.s.end_array();
                    Ok(())
                }
            }
        })?;
        self.depth -= 1;
        Ok(())
    }

    pub(crate) fn array(&mut self, elem: &Type, dims: &[u32]) -> Result<(), CdrError> {
        self.enter()?;
        let p = prim_of(self.reg, elem);
        let total = dims
            .iter()
            .try_fold(1usize, |a, d| a.checked_mul(*d as usize))
            .ok_or_else(|| CdrError::new(CdrErrorKind::Unsupported, "array too large"))?;
        self.delimited(self.v2 && p.is_none(), |d| {
            let need = total.saturating_mul(p.map_or(1, Primitive::size));
            if let Some(p) = p {
                d.r.align(p.size())?;
            }
            if need > d.r.remaining() {
                return Err(CdrError::truncated(need, d.r.remaining()));
            }
            d.array_dims(elem, p, dims)
        })?;
        self.depth -= 1;
        Ok(())
    }

    pub(crate) fn array_dims(
        &mut self,
        elem: &Type,
        p: Option<Primitive>,
        dims: &[u32],
    ) -> Result<(), CdrError> {
        let n = dims.first().copied().unwrap_or(1) as usize;
        if dims.len() <= 1
            && let Some(p) = p
        {
            return self.primitives(p, n);
        }
        self.s.begin_array(n);
        for i in 0..n {
            let r = if dims.len() <= 1 {
                self.value(elem)
            } else {
                self.array_dims(elem, p, &dims[1..])
            };
            r.map_err(|e| e.at_index(i))?;
        }
        self.s.end_array();
        Ok(())
    }

    pub(crate) fn struct_(&mut self, st: &StructType) -> Result<(), CdrError> {
        self.enter()?;
        match (st.extensibility, self.v2) {
            (Extensibility::Mutable, false) => self.mutable_v1(st)?,
            (Extensibility::Mutable, true) => self.delimited(true, |d| d.mutable_v2(st))?,
            (Extensibility::Appendable, true) => {
                self.delimited(true, |d| d.members_in_order(st, true))?
            }
            _ => self.members_in_order(st, false)?,
        }
        self.depth -= 1;
        Ok(())
    }

    pub(crate) fn members_in_order(
        &mut self,
        st: &StructType,
        delimited: bool,
    ) -> Result<(), CdrError> {
        self.s.begin_object();
        for m in &st.members {
            self.s.key(&m.name);
            if delimited && self.r.remaining() == 0 {
                // An older writer's sample: the member is not there.
                self.default_member(m)?;
                continue;
            }
            self.member(m).map_err(|e| e.in_field(&m.name))?;
        }
        self.s.end_object();
        Ok(())
    }

    pub(crate) fn member(&mut self, m: &Member) -> Result<(), CdrError> {
        if !m.optional {
            return self.value(&m.ty);
        }
        if self.v2 {
            return match self.r.u8()? {
                0 => {
                    self.s.null();
                    Ok(())
                }
                1 => self.value(&m.ty),
                b => Err(CdrError::malformed(format!(
                    "optional flag {b} is not 0 or 1"
                ))),
            };
        }
        // XCDR1: a parameter header, then the value with alignment reset.
        self.r.align(4)?;
        let pid = self.r.u16()?;
        let mut len = usize::from(self.r.u16()?);
        if pid & 0x3fff == 0x3f01 {
            let _id = self.r.u32()?;
            len = self.r.u32()? as usize;
        }
        if len == 0 {
            self.s.null();
            return Ok(());
        }
        self.in_param(self.r.pos, len, |d| d.value(&m.ty))
    }

    /// Decodes a value that occupies `[start, start+len)` with XCDR1
    /// alignment reset to `start`, then continues after it.
    pub(crate) fn in_param<T>(
        &mut self,
        start: usize,
        len: usize,
        f: impl FnOnce(&mut Self) -> Result<T, CdrError>,
    ) -> Result<T, CdrError> {
        if len > self.r.end.saturating_sub(start) {
            return Err(CdrError::malformed(format!(
                "parameter length {len} runs past the end"
            )));
        }
        let (so, se, sp) = (self.r.origin, self.r.end, self.r.pos);
        self.r.pos = start;
        self.r.end = start + len;
        if !self.v2 {
            self.r.origin = start;
        }
        let out = f(self);
        self.r.origin = so;
        self.r.end = se;
        self.r.pos = sp.max(start + len);
        out
    }

    pub(crate) fn mutable_v1(&mut self, st: &StructType) -> Result<(), CdrError> {
        let mut found: Vec<Option<(usize, usize)>> = vec![None; st.members.len()];
        loop {
            self.r.align(4)?;
            let pid = self.r.u16()?;
            let short_len = usize::from(self.r.u16()?);
            let (id, len, mu) = match pid & 0x3fff {
                0x3f02 => break,
                0x3f01 => {
                    let h = self.r.u32()?;
                    let l = self.r.u32()? as usize;
                    (h & 0x0fff_ffff, l, h & (1 << 30) != 0)
                }
                short => (u32::from(short), short_len, pid & 0x4000 != 0),
            };
            if len > self.r.remaining() {
                return Err(CdrError::malformed(format!(
                    "parameter {id} length {len} runs past the end"
                )));
            }
            let start = self.r.pos;
            self.r.pos += len;
            record(st, &mut found, id, start, len, mu)?;
        }
        let after = self.r.pos;
        self.emit_found(st, &found)?;
        self.r.pos = after;
        Ok(())
    }

    pub(crate) fn mutable_v2(&mut self, st: &StructType) -> Result<(), CdrError> {
        let mut found: Vec<Option<(usize, usize)>> = vec![None; st.members.len()];
        while self.r.remaining() > 0 {
            self.r.align(4)?;
            let h = self.r.u32()?;
            let mu = h >> 31 == 1;
            let lc = (h >> 28) & 7;
            let id = h & 0x0fff_ffff;
            let (start, len) = match lc {
                0..=3 => (self.r.pos, 1usize << lc),
                4 => {
                    let n = self.r.u32()? as usize;
                    (self.r.pos, n)
                }
                _ => {
                    let start = self.r.pos;
                    let n = self.r.u32()? as usize;
                    let mul = match lc {
                        5 => 1usize,
                        6 => 4,
                        _ => 8,
                    };
                    (start, n.saturating_mul(mul).saturating_add(4))
                }
            };
            if start.saturating_add(len) > self.r.end {
                return Err(CdrError::malformed(format!(
                    "member {id} length {len} runs past the end"
                )));
            }
            self.r.pos = start + len;
            record(st, &mut found, id, start, len, mu)?;
        }
        self.emit_found(st, &found)
    }

    pub(crate) fn emit_found(
        &mut self,
        st: &StructType,
        found: &[Option<(usize, usize)>],
    ) -> Result<(), CdrError> {
        self.s.begin_object();
        for (m, f) in st.members.iter().zip(found) {
            self.s.key(&m.name);
            match f {
                Some((start, len)) => self
                    .in_param(*start, *len, |d| d.value(&m.ty))
                    .map_err(|e| e.in_field(&m.name))?,
                None if m.key => {
                    return Err(CdrError::malformed("key member missing").in_field(&m.name));
                }
                None => self.default_member(m)?,
            }
        }
        self.s.end_object();
        Ok(())
    }

    pub(crate) fn default_member(&mut self, m: &Member) -> Result<(), CdrError> {
        if m.optional {
            self.s.null();
            Ok(())
        } else {
            super::defaults::member(self.reg, m, &mut self.s, 0).map_err(|e| e.in_field(&m.name))
        }
    }
}

fn record(
    st: &StructType,
    found: &mut [Option<(usize, usize)>],
    id: u32,
    start: usize,
    len: usize,
    mu: bool,
) -> Result<(), CdrError> {
    match st.members.iter().position(|m| m.id == id) {
        Some(i) => {
            if found[i].is_some() {
                return Err(CdrError::malformed(format!("member id {id} appears twice")));
            }
            found[i] = Some((start, len));
            Ok(())
        }
        None if mu => Err(CdrError::malformed(format!(
            "unknown must-understand member id {id}"
        ))),
        None => Ok(()),
    }
}

pub(crate) fn check_bound(n: usize, bound: Option<u32>) -> Result<(), CdrError> {
    match bound {
        Some(b) if n > b as usize => Err(CdrError::new(
            CdrErrorKind::BoundExceeded,
            format!("length {n} exceeds bound {b}"),
        )),
        _ => Ok(()),
    }
}
