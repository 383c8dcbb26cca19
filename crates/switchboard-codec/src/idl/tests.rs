#![allow(clippy::unwrap_used, clippy::expect_used)]
use super::*;

fn reg(src: &str) -> TypeRegistry {
    TypeRegistry::from_idl_str("t.idl", src).unwrap()
}

fn err(src: &str) -> IdlError {
    TypeRegistry::from_idl_str("t.idl", src).unwrap_err()
}

#[test]
fn modules_consts_and_scopes() {
    let r = reg(r#"
        module a {
            const long N = 2 * (3 + 1);
            const string S = "x" "y";
            module b {
                const unsigned long M = N << 1;
                struct P { double x; double y; };
                typedef P Pts[N][2];
            };
            struct Q : b::P { @key long id; sequence<b::P, b::M> s; string<N> n; };
        };
        module a { struct R { ::a::Q q; a::b::Pts pts; }; };
    "#);
    assert_eq!(reg_const(&r, "a::N"), ConstValue::Int(8));
    assert_eq!(reg_const(&r, "a::b::M"), ConstValue::Int(16));
    assert_eq!(reg_const(&r, "a::S"), ConstValue::String("xy".into()));
    let q = r.struct_type(r.get("a::Q").unwrap()).unwrap();
    let names: Vec<_> = q.members.iter().map(|m| (m.name.as_str(), m.id)).collect();
    assert_eq!(names, [("x", 0), ("y", 1), ("id", 2), ("s", 3), ("n", 4)]);
    assert!(q.is_keyed());
    assert_eq!(
        q.members[3].ty,
        Type::Sequence {
            elem: Box::new(Type::Named(r.get("a::b::P").unwrap())),
            bound: Some(16)
        }
    );
    assert!(r.get("::a::R").is_some());
    assert!(r.get("a/b/P").is_some());
}

fn reg_const(r: &TypeRegistry, n: &str) -> ConstValue {
    r.constant(n).cloned().unwrap()
}

#[test]
fn unions_enums_annotations() {
    let r = reg(r#"
        @bit_bound(8) enum Color { RED, @value(5) GREEN, BLUE };
        @appendable union U switch (Color) {
            case RED: case GREEN: long a;
            case BLUE: string b;
        };
        union V switch (short) { case 1: long a; default: double d; };
        @mutable struct S {
            @id(10) long a;
            @optional string b;
            Color c;
            @key(FALSE) long d;
        };
        @extensibility(APPENDABLE) struct T { long x; };
        @autoid(HASH) @mutable struct H { long x; };
    "#);
    let TypeDef::Enum(e) = r.def(r.get("Color").unwrap()) else {
        panic!()
    };
    assert_eq!(
        e.enumerators,
        vec![("RED".into(), 0), ("GREEN".into(), 5), ("BLUE".into(), 6)]
    );
    assert_eq!(e.bit_bound, 8);
    let TypeDef::Union(u) = r.def(r.get("U").unwrap()) else {
        panic!()
    };
    assert_eq!(u.cases[0].labels, vec![0, 5]);
    assert_eq!(u.extensibility, Extensibility::Appendable);
    let TypeDef::Union(v) = r.def(r.get("V").unwrap()) else {
        panic!()
    };
    assert_eq!(v.case_for(7).unwrap().name, "d");
    let s = r.struct_type(r.get("S").unwrap()).unwrap();
    assert_eq!(s.extensibility, Extensibility::Mutable);
    assert_eq!(
        s.members.iter().map(|m| m.id).collect::<Vec<_>>(),
        [10, 11, 12, 13]
    );
    assert!(s.members[1].optional);
    assert!(!s.members[3].key);
    assert_eq!(
        r.struct_type(r.get("T").unwrap()).unwrap().extensibility,
        Extensibility::Appendable
    );
    let h = r.struct_type(r.get("H").unwrap()).unwrap();
    assert_eq!(h.members[0].id, annot::hash_id("x"));
}

#[test]
fn errors_name_position() {
    let e = err("struct A {\n  long double x;\n};");
    assert_eq!((e.file.as_str(), e.line, e.col), ("t.idl", 2, 3));
    assert!(e.to_string().starts_with("t.idl:2:3: `long double`"), "{e}");
    assert!(
        err("struct A { Unknown x; };")
            .message
            .contains("unknown type")
    );
    assert!(
        err("struct A { long x; long x; };")
            .message
            .contains("duplicate")
    );
    assert!(err("struct A { long x[0]; };").message.contains("positive"));
    assert!(err("struct A { long x; }").message.contains("`;`"));
    assert!(err("struct A;").message.contains("never defined"));
    assert!(err("const octet X = 300;").message.contains("out of range"));
    assert!(
        err("struct A { map<long,long> m; };")
            .message
            .contains("not supported")
    );
    assert!(
        err("union U switch (double) { case 1: long a; };")
            .message
            .contains("discriminator")
    );
}

#[test]
fn forward_declaration_and_recursion() {
    let r = reg("struct Node; typedef sequence<Node> Nodes; struct Node { long v; Nodes kids; };");
    assert!(r.struct_type(r.get("Node").unwrap()).is_some());
}

#[test]
fn pragma_keylist_and_ros2_names() {
    let r = reg(
        "module pkg { module msg { struct T_ { long k; long v; }; struct T { long k; }; }; };\n#pragma keylist pkg::msg::T k\n",
    );
    assert!(
        r.struct_type(r.get("pkg::msg::T").unwrap())
            .unwrap()
            .members[0]
            .key
    );
    assert_eq!(r.get("pkg::msg::dds_::T_"), r.get("pkg::msg::T"));
}

#[test]
fn files_and_includes() {
    let dir = std::env::temp_dir().join(format!("sb-idl-{}", std::process::id()));
    std::fs::create_dir_all(dir.join("sub")).unwrap();
    std::fs::write(
        dir.join("sub/base.idl"),
        "#ifndef BASE\n#define BASE\nmodule m { struct B { long x; }; };\n#endif\n",
    )
    .unwrap();
    std::fs::write(dir.join("top.idl"), "#include \"sub/base.idl\"\n#include \"sub/base.idl\"\nmodule m { struct C : B { long y; }; };\n").unwrap();
    std::fs::write(
        dir.join("bad.idl"),
        "#include \"sub/base.idl\"\nmodule m { struct D { B x }; };\n",
    )
    .unwrap();
    let r = TypeRegistry::from_idl_files(&[dir.join("top.idl")]).unwrap();
    assert_eq!(
        r.struct_type(r.get("m::C").unwrap()).unwrap().members.len(),
        2
    );
    let e = TypeRegistry::from_idl_files(&[dir.join("bad.idl")]).unwrap_err();
    assert!(e.file.ends_with("bad.idl") && e.line == 2, "{e}");
    let e = TypeRegistry::from_idl_files(&[dir.join("nope.idl")]).unwrap_err();
    assert!(e.file.ends_with("nope.idl"), "{e}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn registry_is_shareable() {
    fn assert_send_sync<T: Send + Sync + 'static>() {}
    assert_send_sync::<TypeRegistry>();
    assert_send_sync::<crate::cdr::CdrError>();
}
