#![allow(clippy::unwrap_used, clippy::expect_used)]
use super::*;
use serde_json::json;

const IDL: &str = r#"
module t {
    struct P { double x; double y; };
    struct Pose { P position; P orientation; };
    @final struct K { @key long id; @key string<4> name; double v; };
    struct Outer { @key P p; long other; };
    @final struct Bytes { sequence<octet, 4> b; octet fixed[2]; };
    @final struct Big { long long i; unsigned long long u; float f; double d; char c; wchar w; wstring ws; };
    enum E { A, B };
    union U switch (E) { case A: long a; case B: string b; };
    union D switch (octet) { case 1: long one; default: double other; };
    struct Deep { sequence<Deep> kids; };
    @mutable struct M { @key long id; @optional string s; };
};
"#;

fn reg() -> TypeRegistry {
    TypeRegistry::from_idl_str("t.idl", IDL).unwrap()
}

fn rt(r: &TypeRegistry, name: &str, v: serde_json::Value) {
    let ty = r.get(name).unwrap();
    for enc in [
        Encoding::XCDR1_LE,
        Encoding::XCDR1_BE,
        Encoding::XCDR2_LE,
        Encoding::XCDR2_BE,
    ] {
        let b = encode_from_json(r, ty, &v, enc).unwrap();
        assert_eq!(decode_to_json(r, ty, &b).unwrap(), v, "{name} {enc:?}");
        let text = decode_to_json_text(r, ty, &b).unwrap();
        let tv: serde_json::Value = serde_json::from_slice(&text).unwrap();
        assert_eq!(tv, v, "{name} {enc:?} text");
    }
}

#[test]
fn hand_checked_bytes() {
    let r = reg();
    let p = r.get("t::P").unwrap();
    let b = encode_from_json(&r, p, &json!({"x": 1.0, "y": -2.0}), Encoding::XCDR1_LE).unwrap();
    assert_eq!(b[..4], [0, 1, 0, 0]);
    assert_eq!(b[4..12], 1.0f64.to_le_bytes());
    let k = r.get("t::K").unwrap();
    // XCDR1: long, string (4-aligned), then the double aligned to 8.
    let b = encode_from_json(
        &r,
        k,
        &json!({"id": 7, "name": "ab", "v": 0.5}),
        Encoding::XCDR1_BE,
    )
    .unwrap();
    assert_eq!(
        b,
        [
            0, 0, 0, 0, 0, 0, 0, 7, 0, 0, 0, 3, b'a', b'b', 0, 0, 0, 0, 0, 0, 63, 224, 0, 0, 0, 0,
            0, 0
        ]
    );
    // XCDR2 aligns the double to 4 only.
    let b = encode_from_json(
        &r,
        k,
        &json!({"id": 7, "name": "ab", "v": 0.5}),
        Encoding::XCDR2_BE,
    )
    .unwrap();
    assert_eq!(
        b,
        [
            0, 6, 0, 0, 0, 0, 0, 7, 0, 0, 0, 3, b'a', b'b', 0, 0, 63, 224, 0, 0, 0, 0, 0, 0
        ]
    );
    let b = encode_from_json(
        &r,
        k,
        &json!({"id": 7, "name": "abc", "v": 0.5}),
        Encoding::XCDR2_BE,
    )
    .unwrap();
    assert_eq!(b.len(), 4 + 4 + 4 + 4 + 8);
}

#[test]
fn json_mapping_round_trips() {
    let r = reg();
    rt(
        &r,
        "t::Big",
        json!({"i": "-9007199254740993", "u": "18446744073709551615", "f": 0.1, "d": "NaN", "c": "é", "w": "€", "ws": "wide ☃"}),
    );
    rt(
        &r,
        "t::Big",
        json!({"i": 9007199254740992_i64, "u": 3, "f": "-Infinity", "d": 1e-300, "c": "a", "w": "b", "ws": ""}),
    );
    rt(&r, "t::U", json!({"b": "bee"}));
    rt(&r, "t::U", json!({"a": -1}));
    rt(&r, "t::D", json!({"other": 2.5}));
    rt(&r, "t::D", json!({"_d": 9, "other": 2.5}));
    rt(&r, "t::Bytes", json!({"b": [1, 2, 255], "fixed": [0, 9]}));
    rt(&r, "t::M", json!({"id": 1, "s": null}));
    rt(&r, "t::M", json!({"id": 1, "s": "x"}));
}

#[test]
fn lenient_inputs() {
    let r = reg();
    let ty = r.get("t::Bytes").unwrap();
    let b = encode_from_json(
        &r,
        ty,
        &json!({"b": "AQL/", "fixed": "AAk="}),
        Encoding::XCDR2_LE,
    )
    .unwrap();
    assert_eq!(
        decode_to_json(&r, ty, &b).unwrap(),
        json!({"b": [1, 2, 255], "fixed": [0, 9]})
    );
    let big = r.get("t::Big").unwrap();
    let b = encode_from_json(&r, big, &json!({"i": "5", "u": 5.0}), Encoding::XCDR2_LE).unwrap();
    let v = decode_to_json(&r, big, &b).unwrap();
    assert_eq!(v["i"], json!(5));
    assert_eq!(v["ws"], json!(""));
    let u = r.get("t::U").unwrap();
    let b = encode_from_json(&r, u, &json!({"_d": "B"}), Encoding::XCDR1_LE).unwrap();
    assert_eq!(decode_to_json(&r, u, &b).unwrap(), json!({"b": ""}));
}

#[test]
fn errors_name_the_member_path() {
    let r = reg();
    let pose = r.get("t::Pose").unwrap();
    let e = encode_from_json(
        &r,
        pose,
        &json!({"position": {"x": "up"}}),
        Encoding::XCDR2_LE,
    )
    .unwrap_err();
    assert_eq!(
        e.to_string(),
        "position.x: expected number, found string \"up\""
    );
    let e =
        encode_from_json(&r, pose, &json!({"position": {"z": 1}}), Encoding::XCDR2_LE).unwrap_err();
    assert_eq!(e.to_string(), "position.z: unknown member");
    let bytes = r.get("t::Bytes").unwrap();
    let e = encode_from_json(
        &r,
        bytes,
        &json!({"b": [1, 2, 3, 4, 5]}),
        Encoding::XCDR2_LE,
    )
    .unwrap_err();
    assert_eq!(e.kind(), CdrErrorKind::BoundExceeded);
    assert_eq!(e.path(), "b");
    let e = encode_from_json(&r, bytes, &json!({"b": [1, 256]}), Encoding::XCDR2_LE).unwrap_err();
    assert_eq!(e.to_string(), "b[1]: 256 is out of range for octet");
    let k = r.get("t::K").unwrap();
    let e = encode_from_json(&r, k, &json!({"name": "toolong"}), Encoding::XCDR2_LE).unwrap_err();
    assert_eq!(e.path(), "name");
    let u = r.get("t::U").unwrap();
    assert!(encode_from_json(&r, u, &json!({"a": 1, "b": "x"}), Encoding::XCDR2_LE).is_err());
    assert!(encode_from_json(&r, u, &json!({"_d": "A", "b": "x"}), Encoding::XCDR2_LE).is_err());
    assert!(encode_from_json(&r, u, &json!({}), Encoding::XCDR2_LE).is_err());
}

#[test]
fn bad_cdr_is_an_error_not_a_panic() {
    let r = reg();
    let k = r.get("t::K").unwrap();
    let good = encode_from_json(
        &r,
        k,
        &json!({"id": 1, "name": "ab", "v": 1.0}),
        Encoding::XCDR2_LE,
    )
    .unwrap();
    for n in 0..good.len() {
        let e = decode_to_json(&r, k, &good[..n]).unwrap_err();
        assert!(
            matches!(e.kind(), CdrErrorKind::Truncated | CdrErrorKind::Malformed),
            "{n}: {e}"
        );
    }
    // A string length far past the end: an error before any allocation.
    let mut bad = good.clone();
    bad[8..12].copy_from_slice(&u32::MAX.to_le_bytes());
    let e = decode_to_json(&r, k, &bad).unwrap_err();
    assert_eq!(e.path(), "name");
    // Bound exceeded on input.
    let mut long = encode_from_json(
        &r,
        r.get("t::Bytes").unwrap(),
        &json!({"b": [1, 2, 3, 4]}),
        Encoding::XCDR2_LE,
    )
    .unwrap();
    long[4] = 5;
    long.push(0);
    let e = decode_to_json(&r, r.get("t::Bytes").unwrap(), &long).unwrap_err();
    assert_eq!(e.kind(), CdrErrorKind::BoundExceeded);
    // Unknown representation id.
    assert!(decode_to_json(&r, k, &[0, 0x10, 0, 0]).is_err());
    // Recursion is bounded.
    let deep = r.get("t::Deep").unwrap();
    let mut v = json!({"kids": []});
    for _ in 0..200 {
        v = json!({"kids": [v]});
    }
    assert_eq!(
        encode_from_json(&r, deep, &v, Encoding::XCDR2_LE)
            .unwrap_err()
            .kind(),
        CdrErrorKind::TooDeep
    );
    let mut b = vec![0, 1, 0, 0];
    for _ in 0..1000 {
        b.extend_from_slice(&1u32.to_le_bytes());
    }
    assert_eq!(
        decode_to_json(&r, deep, &b).unwrap_err().kind(),
        CdrErrorKind::TooDeep
    );
    // A huge sequence count with no bytes behind it.
    let mut b = vec![0, 1, 0, 0];
    b.extend_from_slice(&0x7fff_ffffu32.to_le_bytes());
    assert_eq!(
        decode_to_json(&r, deep, &b).unwrap_err().kind(),
        CdrErrorKind::Truncated
    );
}

#[test]
fn keys() {
    let r = reg();
    let k = r.get("t::K").unwrap();
    let v = json!({"id": 3, "name": "ab", "v": 9.0});
    assert_eq!(key_of(&r, k, &v).unwrap(), json!({"id": 3, "name": "ab"}));
    assert_eq!(
        key_cdr(&r, k, &v, Encoding::XCDR2_BE).unwrap(),
        [0, 0, 0, 3, 0, 0, 0, 3, b'a', b'b', 0]
    );
    // Bounded key of at most 16 bytes: the hash is the padded serialization.
    assert_eq!(
        key_hash(&r, k, &v).unwrap(),
        [0, 0, 0, 3, 0, 0, 0, 3, b'a', b'b', 0, 0, 0, 0, 0, 0]
    );
    let o = r.get("t::Outer").unwrap();
    let v = json!({"p": {"x": 1.0, "y": 2.0}, "other": 5});
    assert_eq!(
        key_of(&r, o, &v).unwrap(),
        json!({"p": {"x": 1.0, "y": 2.0}})
    );
    let m = r.get("t::M").unwrap();
    assert_eq!(key_hash(&r, m, &json!({"id": 1})).unwrap().len(), 16);
    let p = r.get("t::P").unwrap();
    assert_eq!(
        key_of(&r, p, &json!({"x": 1.0, "y": 2.0})).unwrap(),
        json!({})
    );
}

#[test]
fn representation_ids() {
    let r = reg();
    let m = r.get("t::M").unwrap();
    assert_eq!(representation_id(&r, m, Encoding::XCDR1_LE), [0, 3]);
    assert_eq!(representation_id(&r, m, Encoding::XCDR2_BE), [0, 0x0a]);
    assert_eq!(
        Encoding::from_representation_id([0, 9]).unwrap(),
        Encoding::XCDR2_LE
    );
    assert_eq!(preferred_encoding(&r, m, false), Encoding::XCDR2_LE);
    let b = encode_from_json(&r, m, &json!({"id": 1}), Encoding::XCDR2_LE).unwrap();
    let x = transcode(&r, m, &b, Encoding::XCDR1_BE).unwrap();
    assert_eq!(&x[..2], &[0, 2]);
    let body = encode_body_from_json(&r, m, &json!({"id": 1}), Encoding::XCDR2_LE).unwrap();
    assert_eq!(body, b[4..]);
    let body2 = encode_body_from_json_text(&r, m, br#"{"id":1}"#, Encoding::XCDR2_LE).unwrap();
    assert_eq!(body2, b[4..]);
}

#[test]
fn streamed_encoder_matches_value_encoder() {
    let r = reg();
    let cases = [
        (
            "t::Pose",
            r#"{"orientation":{"y":2,"x":1},"position":{"x":0.5,"y":-1}}"#,
        ),
        ("t::K", r#"{"v":1.5,"name":"ab","id":3}"#),
        ("t::Bytes", r#"{"fixed":"AAk=","b":[1,2]}"#),
        ("t::M", r#"{"s":null,"id":4}"#),
        ("t::M", r#"{"s":"hey","id":4}"#),
        ("t::U", r#"{"b":"x"}"#),
        (
            "t::Big",
            r#"{"ws":"w","u":"18446744073709551615","d":"-Infinity"}"#,
        ),
    ];
    for (name, text) in cases {
        let ty = r.get(name).unwrap();
        let v: serde_json::Value = serde_json::from_str(text).unwrap();
        for enc in [Encoding::XCDR1_LE, Encoding::XCDR2_BE] {
            assert_eq!(
                encode_from_json_text(&r, ty, text.as_bytes(), enc).unwrap(),
                encode_from_json(&r, ty, &v, enc).unwrap(),
                "{name} {text}"
            );
        }
    }
    let pose = r.get("t::Pose").unwrap();
    let e = encode_from_json_text(&r, pose, br#"{"position":{"x":"up"}}"#, Encoding::XCDR2_LE)
        .unwrap_err();
    assert_eq!(
        e.to_string(),
        "position.x: expected number, found string \"up\""
    );
    let e = encode_from_json_text(&r, pose, br#"{"position":{"q":1}}"#, Encoding::XCDR2_LE)
        .unwrap_err();
    assert_eq!(e.to_string(), "position.q: unknown member");
    let bytes = r.get("t::Bytes").unwrap();
    let e =
        encode_from_json_text(&r, bytes, br#"{"b":[1,2,3,4,5]}"#, Encoding::XCDR2_LE).unwrap_err();
    assert_eq!(e.path(), "b");
    let e =
        encode_from_json_text(&r, bytes, br#"{"fixed":[1,300]}"#, Encoding::XCDR2_LE).unwrap_err();
    assert_eq!(e.to_string(), "fixed[1]: 300 is out of range for octet");
    assert!(encode_from_json_text(&r, bytes, br#"{"b":[1]} x"#, Encoding::XCDR2_LE).is_err());
    assert!(encode_from_json_text(&r, bytes, br#"{"b":[1],"b":[2]}"#, Encoding::XCDR2_LE).is_err());
}

#[test]
fn decoder_accepts_other_legal_forms() {
    let r = TypeRegistry::from_idl_str(
        "t.idl",
        "@mutable struct M { @key long id; @optional string s; double d; };
         @appendable struct A { long a; long b; };",
    )
    .unwrap();
    let m = r.get("M").unwrap();
    // PL_CDR_LE with short parameter headers (must-understand flag on the key),
    // members out of order, `d` missing (default), then the sentinel.
    let mut b = vec![0, 3, 0, 0];
    b.extend_from_slice(&[0x01, 0x00, 8, 0]); // id 1 (s), 8 bytes
    b.extend_from_slice(&[2, 0, 0, 0, b'h', 0, 0, 0]); // "h" + padding
    b.extend_from_slice(&[0x00, 0x40, 4, 0]); // id 0 (id), must understand, 4 bytes
    b.extend_from_slice(&7i32.to_le_bytes());
    b.extend_from_slice(&[0x99, 0x00, 0, 0]); // unknown id 0x99, empty, optional to understand
    b.extend_from_slice(&[0x02, 0x3f, 0, 0]); // sentinel
    assert_eq!(
        decode_to_json(&r, m, &b).unwrap(),
        json!({"id": 7, "s": "h", "d": 0.0})
    );
    // An unknown must-understand member is refused.
    let mut bad = b.clone();
    bad[28..32].copy_from_slice(&[0x99, 0x40, 0, 0]);
    assert!(decode_to_json(&r, m, &bad).is_err());
    // PL_CDR2_LE with LC 4 (NEXTINT) for a 4-byte primitive instead of LC 2.
    let mut b = vec![0, 0x0b, 0, 0, 12, 0, 0, 0];
    b.extend_from_slice(&(0x4000_0000u32).to_le_bytes()); // LC 4, id 0
    b.extend_from_slice(&4u32.to_le_bytes());
    b.extend_from_slice(&9i32.to_le_bytes());
    assert_eq!(
        decode_to_json(&r, m, &b).unwrap(),
        json!({"id": 9, "s": null, "d": 0.0})
    );
    // A key member missing from a mutable sample is an error.
    assert!(decode_to_json(&r, m, &[0, 0x0b, 0, 0, 0, 0, 0, 0]).is_err());
    // Appendable: an older writer's shorter sample, and a newer writer's longer one.
    let a = r.get("A").unwrap();
    let old = [0, 9, 0, 0, 4, 0, 0, 0, 1, 0, 0, 0];
    assert_eq!(
        decode_to_json(&r, a, &old).unwrap(),
        json!({"a": 1, "b": 0})
    );
    let new = [0, 9, 0, 0, 12, 0, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0, 3, 0, 0, 0];
    assert_eq!(
        decode_to_json(&r, a, &new).unwrap(),
        json!({"a": 1, "b": 2})
    );
    // Trailing padding announced in the options is fine.
    let mut padded = encode_from_json(&r, a, &json!({"a": 1, "b": 2}), Encoding::XCDR1_LE).unwrap();
    padded.extend_from_slice(&[0, 0, 0]);
    padded[3] = 3;
    assert_eq!(
        decode_to_json(&r, a, &padded).unwrap(),
        json!({"a": 1, "b": 2})
    );
}
