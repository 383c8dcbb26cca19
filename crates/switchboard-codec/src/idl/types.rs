//! The run-time type model: what the IDL files declared, with every scoped
//! name resolved, constants evaluated, typedefs kept as aliases and struct
//! inheritance flattened (base members first).

/// A handle to a declared type in a [`TypeRegistry`](super::TypeRegistry).
/// Cheap to copy; only meaningful with the registry that issued it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct TypeId(pub(crate) u32);

/// A primitive IDL type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Primitive {
    /// `boolean`: one byte, 0 or 1.
    Bool,
    /// `char`: one byte.
    Char,
    /// `wchar`: two bytes, UTF-16 code unit.
    WChar,
    /// `octet` (and `uint8` / `int8` are separate).
    Octet,
    /// `int8`.
    Int8,
    /// `uint8`.
    UInt8,
    /// `short` / `int16`.
    Int16,
    /// `unsigned short` / `uint16`.
    UInt16,
    /// `long` / `int32`.
    Int32,
    /// `unsigned long` / `uint32`.
    UInt32,
    /// `long long` / `int64`.
    Int64,
    /// `unsigned long long` / `uint64`.
    UInt64,
    /// `float`.
    Float32,
    /// `double`.
    Float64,
}

impl Primitive {
    /// Size in bytes on the wire (also the natural alignment).
    pub fn size(self) -> usize {
        use Primitive::*;
        match self {
            Bool | Char | Octet | Int8 | UInt8 => 1,
            WChar | Int16 | UInt16 => 2,
            Int32 | UInt32 | Float32 => 4,
            Int64 | UInt64 | Float64 => 8,
        }
    }

    /// The IDL spelling.
    pub fn idl_name(self) -> &'static str {
        use Primitive::*;
        match self {
            Bool => "boolean",
            Char => "char",
            WChar => "wchar",
            Octet => "octet",
            Int8 => "int8",
            UInt8 => "uint8",
            Int16 => "short",
            UInt16 => "unsigned short",
            Int32 => "long",
            UInt32 => "unsigned long",
            Int64 => "long long",
            UInt64 => "unsigned long long",
            Float32 => "float",
            Float64 => "double",
        }
    }

    /// Whether this is `octet` or `uint8`: the element types whose sequences
    /// and arrays are copied in bulk and also accept base64 text on input.
    pub fn is_byte(self) -> bool {
        matches!(self, Primitive::Octet | Primitive::UInt8)
    }
}

/// A type as used by a member, element, typedef or discriminator.
#[derive(Debug, Clone, PartialEq)]
pub enum Type {
    /// A primitive.
    Primitive(Primitive),
    /// `string` / `string<N>` (`wide`: `wstring`).
    String {
        /// Maximum length in characters, if bounded.
        bound: Option<u32>,
        /// `wstring` (UTF-16 on the wire).
        wide: bool,
    },
    /// `sequence<T>` / `sequence<T, N>`.
    Sequence {
        /// Element type.
        elem: Box<Type>,
        /// Maximum length, if bounded.
        bound: Option<u32>,
    },
    /// `T name[D1][D2]...`: a (multi-dimensional) array, row-major.
    Array {
        /// Element type (never itself an array written with brackets).
        elem: Box<Type>,
        /// Dimensions, outermost first; each at least 1.
        dims: Vec<u32>,
    },
    /// A declared struct, union, enum or typedef.
    Named(TypeId),
}

/// The extensibility kind of a struct or union (XTypes).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Extensibility {
    /// `@final` (the default): plain members.
    #[default]
    Final,
    /// `@appendable`: XCDR2 adds a DHEADER.
    Appendable,
    /// `@mutable`: members carry ids (PL_CDR / PL_CDR2).
    Mutable,
}

/// A struct member.
#[derive(Debug, Clone, PartialEq)]
pub struct Member {
    /// Member name (also its JSON key).
    pub name: String,
    /// Member type.
    pub ty: Type,
    /// Member id (`@id`, else sequential from 0, continuing after the base).
    pub id: u32,
    /// `@key`.
    pub key: bool,
    /// `@optional`.
    pub optional: bool,
    /// `@must_understand`.
    pub must_understand: bool,
    /// `@default(value)` / `@default(value=...)`: used when input JSON
    /// omits the member (rosidl writes these, e.g. a Quaternion's `w = 1.0`).
    pub default: Option<ConstValue>,
}

/// A struct, with inherited members first.
#[derive(Debug, Clone, PartialEq)]
pub struct StructType {
    /// Fully scoped name (`a::b::C`).
    pub name: String,
    /// Extensibility kind.
    pub extensibility: Extensibility,
    /// All members, base members first.
    pub members: Vec<Member>,
    /// The base struct, if any.
    pub base: Option<TypeId>,
}

impl StructType {
    /// Whether any member is a key.
    pub fn is_keyed(&self) -> bool {
        self.members.iter().any(|m| m.key)
    }
}

/// An enum.
#[derive(Debug, Clone, PartialEq)]
pub struct EnumType {
    /// Fully scoped name.
    pub name: String,
    /// Enumerators in declaration order with their values.
    pub enumerators: Vec<(String, i32)>,
    /// `@bit_bound` (default 32): 1..=8 is one byte in XCDR2, 9..=16 two.
    pub bit_bound: u8,
}

impl EnumType {
    /// The enumerator named `name`.
    pub fn value_of(&self, name: &str) -> Option<i32> {
        self.enumerators.iter().find(|e| e.0 == name).map(|e| e.1)
    }
    /// The name of the enumerator with `value`.
    pub fn name_of(&self, value: i32) -> Option<&str> {
        self.enumerators
            .iter()
            .find(|e| e.1 == value)
            .map(|e| e.0.as_str())
    }
}

/// A union branch.
#[derive(Debug, Clone, PartialEq)]
pub struct UnionCase {
    /// Branch member name.
    pub name: String,
    /// Branch type.
    pub ty: Type,
    /// Discriminator values selecting this branch (enumerators as their values,
    /// booleans as 0/1, chars as their code).
    pub labels: Vec<i64>,
    /// Whether this branch is the `default:` one.
    pub is_default: bool,
    /// Member id (`@id`, else sequential).
    pub id: u32,
}

/// A discriminated union.
#[derive(Debug, Clone, PartialEq)]
pub struct UnionType {
    /// Fully scoped name.
    pub name: String,
    /// Extensibility kind.
    pub extensibility: Extensibility,
    /// Discriminator type (integer, char, boolean or enum).
    pub discriminator: Type,
    /// Branches in declaration order.
    pub cases: Vec<UnionCase>,
}

impl UnionType {
    /// The branch selected by discriminator value `d`.
    pub fn case_for(&self, d: i64) -> Option<&UnionCase> {
        self.cases
            .iter()
            .find(|c| c.labels.contains(&d))
            .or_else(|| self.cases.iter().find(|c| c.is_default))
    }
}

/// A named declaration.
#[derive(Debug, Clone, PartialEq)]
pub enum TypeDef {
    /// `struct`.
    Struct(StructType),
    /// `union`.
    Union(UnionType),
    /// `enum`.
    Enum(EnumType),
    /// `typedef` (also each declarator of a multi-declarator typedef).
    Alias {
        /// Fully scoped name.
        name: String,
        /// The aliased type.
        ty: Type,
    },
}

impl TypeDef {
    /// Fully scoped name.
    pub fn name(&self) -> &str {
        match self {
            TypeDef::Struct(s) => &s.name,
            TypeDef::Union(u) => &u.name,
            TypeDef::Enum(e) => &e.name,
            TypeDef::Alias { name, .. } => name,
        }
    }
}

/// The value of an IDL `const`.
#[derive(Debug, Clone, PartialEq)]
pub enum ConstValue {
    /// Integer constants (also enumerators and octets).
    Int(i128),
    /// Floating-point constants.
    Float(f64),
    /// String constants.
    String(String),
    /// Character constants.
    Char(char),
    /// Boolean constants.
    Bool(bool),
}
