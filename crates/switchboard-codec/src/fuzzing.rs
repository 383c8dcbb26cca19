//! Bodies of the cargo-fuzz targets (`fuzz/fuzz_targets/codec_*.rs`), kept
//! here so that `tests/fuzz_corpus.rs` replays the checked-in corpus through
//! exactly the same code without the fuzzer. Each panics only on a real bug.

use serde_json::{Map, Value, json};

use crate::cdr::{self, Encoding};
use crate::idl::{Extensibility, Primitive, Type, TypeDef, TypeId, TypeRegistry};

/// The fixed set of types the CDR targets exercise: every construct.
pub const FUZZ_IDL: &str = r#"
module f {
    enum Color { RED, GREEN, BLUE };
    @bit_bound(8) enum Small { S0, S1 };
    @final struct Point { double x; float y; };
    @final struct Prims { boolean b; char c; wchar w; octet o; int8 i8; uint8 u8; short s;
        unsigned short us; long l; unsigned long ul; long long ll; unsigned long long ull; };
    union U switch (long) { case 1: Point p; case 2: case 3: string s; default: double d; };
    @appendable union AU switch (Color) { case RED: long r; case GREEN: sequence<short, 3> g; };
    @final struct Coll { sequence<long, 4> ints; sequence<octet> bytes; string<6> name;
        long m[2][2]; sequence<Point, 2> pts; sequence<Color, 3> colors; wstring<4> ws;
        sequence<string<3>, 2> strs; octet raw[3]; };
    @appendable struct App { @key string<8> id; @optional double maybe; Small small; AU au; Coll c; };
    @mutable struct Mut { @key long id; @optional string<5> s; @id(20) U u; sequence<double, 3> ds;
        @optional Point p; Prims prims; App app; };
    @final struct Opt { @optional long a; @optional Point p; long z; };
};
"#;

const TYPES: [&str; 8] = [
    "f::Point", "f::Prims", "f::U", "f::AU", "f::Coll", "f::App", "f::Mut", "f::Opt",
];
const ENCODINGS: [Encoding; 4] = [
    Encoding::XCDR1_LE,
    Encoding::XCDR1_BE,
    Encoding::XCDR2_LE,
    Encoding::XCDR2_BE,
];

fn registry() -> Option<&'static TypeRegistry> {
    static REG: std::sync::OnceLock<Option<TypeRegistry>> = std::sync::OnceLock::new();
    REG.get_or_init(|| TypeRegistry::from_idl_str("fuzz.idl", FUZZ_IDL).ok())
        .as_ref()
}

fn pick(reg: &TypeRegistry, b: u8) -> Option<TypeId> {
    reg.get(TYPES[b as usize % TYPES.len()])
}

/// IDL parser: any text parses or gives an error, never a panic.
pub fn idl_parser(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let _ = TypeRegistry::from_idl_str("fuzz.idl", &text);
}

/// CDR decoder: byte 0 picks the type, the rest is a whole sample (with
/// header). Both decoders agree; what decodes re-encodes and decodes equal.
pub fn cdr_decode(data: &[u8]) {
    let (Some(reg), Some((&sel, bytes))) = (registry(), data.split_first()) else {
        return;
    };
    let Some(ty) = pick(reg, sel) else { return };
    let v = cdr::decode_to_json(reg, ty, bytes);
    let t = cdr::decode_to_json_text(reg, ty, bytes);
    match (v, t) {
        (Ok(v), Ok(t)) => {
            let tv: Value = serde_json::from_slice(&t).unwrap_or(Value::Null);
            assert_eq!(v, tv, "value and text decoders disagree");
            if let Ok(enc) = cdr::Encoding::from_representation_id([bytes[0], bytes[1]])
                && let Ok(b2) = cdr::encode_from_json(reg, ty, &v, enc)
            {
                let v2 = cdr::decode_to_json(reg, ty, &b2);
                assert_eq!(
                    v2.as_ref().ok(),
                    Some(&v),
                    "re-encoded sample decodes differently"
                );
            }
        }
        (Err(_), Err(_)) => {}
        (a, b) => panic!("decoders disagree: {a:?} / {b:?}"),
    }
}

/// JSON -> CDR: byte 0 picks the type and encoding, the rest is JSON text.
/// What encodes decodes, and re-encoding the decoded value is byte-identical.
pub fn json_encode(data: &[u8]) {
    let (Some(reg), Some((&sel, json))) = (registry(), data.split_first()) else {
        return;
    };
    let Some(ty) = pick(reg, sel) else { return };
    let enc = ENCODINGS[(sel as usize / TYPES.len()) % 4];
    let Ok(v) = serde_json::from_slice::<Value>(json) else {
        return;
    };
    if let Ok(b) = cdr::encode_from_json(reg, ty, &v, enc) {
        let d = match cdr::decode_to_json(reg, ty, &b) {
            Ok(d) => d,
            Err(e) => panic!("our own bytes do not decode: {e}"),
        };
        let b2 = cdr::encode_from_json(reg, ty, &d, enc);
        assert_eq!(b2.as_ref().ok(), Some(&b), "decode/encode is not stable");
        let _ = cdr::key_of(reg, ty, &d);
        let _ = cdr::key_hash(reg, ty, &d);
    }
}

/// Round trip: bytes drive a generator of well-formed values; for every
/// encoding decode(encode(x)) == x.
pub fn round_trip(data: &[u8]) {
    let (Some(reg), Some((&sel, rest))) = (registry(), data.split_first()) else {
        return;
    };
    let Some(ty) = pick(reg, sel) else { return };
    let mut g = Gen {
        reg,
        data: rest,
        i: 0,
    };
    let x = g.value(&Type::Named(ty), 0);
    for enc in ENCODINGS {
        let b = match cdr::encode_from_json(reg, ty, &x, enc) {
            Ok(b) => b,
            Err(e) => panic!("generated value does not encode ({enc:?}): {e}\n{x}"),
        };
        let streamed = cdr::encode_from_json_text(reg, ty, x.to_string().as_bytes(), enc);
        assert_eq!(
            streamed.as_ref().ok(),
            Some(&b),
            "streamed encoder differs ({enc:?})"
        );
        match cdr::decode_to_json(reg, ty, &b) {
            Ok(d) => assert_eq!(d, x, "round trip differs ({enc:?})"),
            Err(e) => panic!("round trip decode failed ({enc:?}): {e}\n{x}"),
        }
    }
}

/// The well-formed value [`round_trip`] generates for type `ty` from `data`.
pub fn generate(reg: &TypeRegistry, ty: TypeId, data: &[u8]) -> Value {
    Gen { reg, data, i: 0 }.value(&Type::Named(ty), 0)
}

struct Gen<'r, 'd> {
    reg: &'r TypeRegistry,
    data: &'d [u8],
    i: usize,
}

impl Gen<'_, '_> {
    fn byte(&mut self) -> u8 {
        let b = self.data.get(self.i).copied().unwrap_or(0);
        self.i += 1;
        b
    }

    fn len(&mut self, bound: Option<u32>) -> usize {
        let max = bound.map_or(4, |b| b.min(4) as usize);
        self.byte() as usize % (max + 1)
    }

    fn text(&mut self, n: usize) -> String {
        (0..n)
            .map(|_| char::from(b'a' + self.byte() % 26))
            .collect()
    }

    fn value(&mut self, ty: &Type, depth: usize) -> Value {
        match ty {
            Type::Primitive(p) => self.prim(*p),
            Type::String { bound, .. } => {
                let n = self.len(*bound);
                Value::String(self.text(n))
            }
            Type::Sequence { elem, bound } => {
                let n = self.len(*bound);
                Value::Array((0..n).map(|_| self.value(elem, depth + 1)).collect())
            }
            Type::Array { elem, dims } => self.dims(elem, dims, depth),
            Type::Named(id) => match self.reg.def(*id) {
                TypeDef::Alias { ty, .. } => self.value(ty, depth),
                TypeDef::Enum(e) => {
                    let k = self.byte() as usize % e.enumerators.len().max(1);
                    e.enumerators
                        .get(k)
                        .map_or(Value::Null, |x| Value::String(x.0.clone()))
                }
                TypeDef::Struct(st) => {
                    let mut m = Map::new();
                    for mem in &st.members {
                        let v = if mem.optional && self.byte().is_multiple_of(2) {
                            Value::Null
                        } else {
                            self.value(&mem.ty, depth + 1)
                        };
                        m.insert(mem.name.clone(), v);
                    }
                    let _ = st.extensibility == Extensibility::Final;
                    Value::Object(m)
                }
                TypeDef::Union(u) => {
                    let k = self.byte() as usize % u.cases.len().max(1);
                    match u.cases.get(k) {
                        Some(c) => json!({ c.name.clone(): self.value(&c.ty, depth + 1) }),
                        None => Value::Null,
                    }
                }
            },
        }
    }

    fn dims(&mut self, elem: &Type, dims: &[u32], depth: usize) -> Value {
        let n = dims.first().copied().unwrap_or(1);
        Value::Array(
            (0..n)
                .map(|_| {
                    if dims.len() <= 1 {
                        self.value(elem, depth + 1)
                    } else {
                        self.dims(elem, &dims[1..], depth)
                    }
                })
                .collect(),
        )
    }

    fn prim(&mut self, p: Primitive) -> Value {
        use Primitive::*;
        let b = self.byte();
        let wide = |g: &mut Self| {
            let mut a = [0u8; 8];
            for x in &mut a {
                *x = g.byte();
            }
            a
        };
        match p {
            Bool => Value::Bool(b % 2 == 1),
            Char | WChar => Value::String(char::from(b'A' + b % 26).to_string()),
            Octet | UInt8 => json!(b),
            Int8 => json!(b as i8),
            Int16 => json!(i16::from_le_bytes([b, self.byte()])),
            UInt16 => json!(u16::from_le_bytes([b, self.byte()])),
            Int32 => json!(i32::from_le_bytes([
                b,
                self.byte(),
                self.byte(),
                self.byte()
            ])),
            UInt32 => json!(u32::from_le_bytes([
                b,
                self.byte(),
                self.byte(),
                self.byte()
            ])),
            Int64 => {
                let v = i64::from_le_bytes(wide(self));
                if v.unsigned_abs() <= 1 << 53 {
                    json!(v)
                } else {
                    json!(v.to_string())
                }
            }
            UInt64 => {
                let v = u64::from_le_bytes(wide(self));
                if v <= 1 << 53 {
                    json!(v)
                } else {
                    json!(v.to_string())
                }
            }
            Float32 | Float64 => match b {
                255 => json!("NaN"),
                254 => json!("Infinity"),
                _ => json!(f64::from(b) * 0.5 - 64.0),
            },
        }
    }
}
