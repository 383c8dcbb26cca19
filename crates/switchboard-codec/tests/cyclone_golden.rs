//! Proof against Cyclone DDS: golden vectors generated live by Cyclone's
//! Python binding (tests/golden/cyclone_golden.py) for the types of
//! tests/golden/golden.idl, in XCDR1 and XCDR2, little and big endian.
//!
//! For every sample and encoding: our decoder turns Cyclone's bytes into the
//! expected JSON (as a Value and as text); our encoder's bytes equal
//! Cyclone's; and Cyclone's deserializer accepts our bytes and reads back the
//! same value. (Cyclone Python 11.0.1's `serialize_key` returns no key bytes,
//! so key serialization is tested by hand in the unit tests instead.)
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use serde_json::Value;
use switchboard_codec::cdr::{self, Encoding};
use switchboard_codec::idl::TypeRegistry;

fn python() -> PathBuf {
    std::env::var_os("SWITCHBOARD_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(std::env::var("HOME").unwrap_or_default())
                .join(".cache/switchboard/venv/bin/python")
        })
}

fn golden_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden")
}

fn run_py(mode: &str, input: Option<&str>) -> Value {
    let py = python();
    let mut child = Command::new(&py)
        .arg(golden_dir().join("cyclone_golden.py"))
        .arg(mode)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| {
            panic!(
                "cannot run {} ({e}): install Cyclone DDS Python with scripts/install.d/20-cyclonedds-python.sh \
                 or set SWITCHBOARD_PYTHON",
                py.display()
            )
        });
    let mut stdin = child.stdin.take().unwrap();
    if let Some(i) = input {
        stdin.write_all(i.as_bytes()).unwrap();
    }
    drop(stdin);
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "cyclone_golden.py {mode} failed (is `cyclonedds` installed in the venv?): {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// JSON equality with numbers compared by value (Python writes 1 for 1.0).
fn json_eq(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => {
            match (x.as_i64(), y.as_i64(), x.as_u64(), y.as_u64()) {
                (Some(p), Some(q), _, _) => p == q,
                (_, _, Some(p), Some(q)) => p == q,
                _ => x.as_f64() == y.as_f64(),
            }
        }
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(p, q)| json_eq(p, q))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len()
                && x.iter()
                    .all(|(k, v)| y.get(k).is_some_and(|w| json_eq(v, w)))
        }
        _ => a == b,
    }
}

fn encoding(name: &str) -> Encoding {
    match name {
        "xcdr1_le" => Encoding::XCDR1_LE,
        "xcdr1_be" => Encoding::XCDR1_BE,
        "xcdr2_le" => Encoding::XCDR2_LE,
        "xcdr2_be" => Encoding::XCDR2_BE,
        other => panic!("unknown encoding {other}"),
    }
}

fn unhex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

#[test]
fn golden_vectors_match_cyclone_both_ways() {
    let reg = TypeRegistry::from_idl_files(&[golden_dir().join("golden.idl")]).unwrap();
    let vectors = run_py("emit", None);
    let vectors = vectors.as_array().unwrap();
    assert!(vectors.len() >= 15, "too few golden vectors");
    let mut failures = Vec::new();
    let mut checks = 0usize;
    let mut ours = String::new();
    let mut seen_ids = std::collections::BTreeSet::new();
    for (i, v) in vectors.iter().enumerate() {
        let tname = v["type"].as_str().unwrap();
        let ty = reg
            .get(tname)
            .unwrap_or_else(|| panic!("{tname} not in golden.idl"));
        let expected = &v["json"];
        let preferred = cdr::preferred_encoding(&reg, ty, false);
        if (preferred.version == cdr::XcdrVersion::Xcdr2)
            != (v["default_xcdr2"] == Value::Bool(true))
        {
            failures.push(format!(
                "#{i} {tname}: preferred encoding {preferred:?} differs from Cyclone's default"
            ));
        }
        for (enc_name, h) in v["enc"].as_object().unwrap() {
            let bytes = unhex(h.as_str().unwrap());
            seen_ids.insert(hex(&bytes[..2]));
            let enc = encoding(enc_name);
            // Cyclone -> us.
            match cdr::decode_to_json(&reg, ty, &bytes) {
                Ok(j) if json_eq(&j, expected) => {}
                Ok(j) => failures.push(format!(
                    "#{i} {tname} {enc_name}: decoded {j}\n   expected {expected}"
                )),
                Err(e) => failures.push(format!("#{i} {tname} {enc_name}: decode error {e}")),
            }
            match cdr::decode_to_json_text(&reg, ty, &bytes) {
                Ok(t) => {
                    let j: Value = serde_json::from_slice(&t).unwrap();
                    if !json_eq(&j, expected) {
                        failures.push(format!("#{i} {tname} {enc_name}: text decode {j}"));
                    }
                }
                Err(e) => failures.push(format!("#{i} {tname} {enc_name}: text decode error {e}")),
            }
            // Us -> bytes equal to Cyclone's.
            match cdr::encode_from_json(&reg, ty, expected, enc) {
                Ok(b) if b == bytes => {}
                Ok(b) => failures.push(format!(
                    "#{i} {tname} {enc_name}: encoded\n   ours    {}\n   cyclone {}",
                    hex(&b),
                    hex(&bytes)
                )),
                Err(e) => failures.push(format!("#{i} {tname} {enc_name}: encode error {e}")),
            }
            match cdr::encode_from_json_text(&reg, ty, expected.to_string().as_bytes(), enc) {
                Ok(b) if b == bytes => {}
                Ok(b) => failures.push(format!(
                    "#{i} {tname} {enc_name}: streamed encode {}",
                    hex(&b)
                )),
                Err(e) => failures.push(format!(
                    "#{i} {tname} {enc_name}: streamed encode error {e}"
                )),
            }
            if let Ok(b) = cdr::encode_from_json(&reg, ty, expected, enc) {
                ours.push_str(
                    &serde_json::json!({"index": i, "enc": enc_name, "hex": hex(&b)}).to_string(),
                );
                ours.push('\n');
            }
            checks += 3;
        }
    }
    // Cyclone deserializes our bytes to the same value.
    let back = run_py("check", Some(&ours));
    for r in back.as_array().unwrap() {
        let i = r["index"].as_u64().unwrap() as usize;
        let enc_name = r["enc"].as_str().unwrap();
        checks += 1;
        if r["ok"] != Value::Bool(true) {
            failures.push(format!(
                "#{i} {enc_name}: Cyclone rejected our bytes: {}",
                r["error"]
            ));
        } else if !json_eq(&r["json"], &vectors[i]["json"]) {
            failures.push(format!("#{i} {enc_name}: Cyclone read back {}", r["json"]));
        }
    }
    eprintln!("{checks} checks against Cyclone, representation ids seen: {seen_ids:?}");
    assert!(
        failures.is_empty(),
        "{} failures:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
