//! Replays every file of the codec fuzz corpora (fuzz/corpus/codec_*)
//! through the same functions the fuzz targets call, so CI catches
//! regressions without the fuzzer. `cargo test --test fuzz_corpus -- --ignored`
//! regenerates the seed files for the CDR targets.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};

use switchboard_codec::cdr::{self, Encoding};
use switchboard_codec::fuzzing;
use switchboard_codec::idl::TypeRegistry;

fn corpus(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../fuzz/corpus")
        .join(name)
}

fn replay(name: &str, f: fn(&[u8])) {
    let dir = corpus(name);
    let entries = std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
    let mut n = 0;
    for e in entries {
        let path = e.unwrap().path();
        let data = std::fs::read(&path).unwrap();
        f(&data);
        n += 1;
    }
    assert!(n > 0, "empty corpus {name}");
}

#[test]
fn idl_parser_corpus() {
    replay("codec_idl_parser", fuzzing::idl_parser);
}

#[test]
fn cdr_decode_corpus() {
    replay("codec_cdr_decode", fuzzing::cdr_decode);
}

#[test]
fn json_encode_corpus() {
    replay("codec_json_encode", fuzzing::json_encode);
}

#[test]
fn round_trip_corpus() {
    replay("codec_round_trip", fuzzing::round_trip);
}

#[test]
fn round_trip_many_generated() {
    // A cheap property test: pseudo-random generator input, every type.
    let mut x = 0x9e37_79b9_7f4a_7c15u64;
    for _ in 0..3000 {
        let mut buf = Vec::with_capacity(96);
        for _ in 0..96 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            buf.push(x as u8);
        }
        fuzzing::round_trip(&buf);
        fuzzing::cdr_decode(&buf);
    }
}

#[test]
fn flipped_bytes_never_panic() {
    let dir = corpus("codec_cdr_decode");
    for e in std::fs::read_dir(&dir).unwrap() {
        let data = std::fs::read(e.unwrap().path()).unwrap();
        for i in 1..data.len() {
            for bit in [0x01u8, 0x80, 0xff] {
                let mut d = data.clone();
                d[i] ^= bit;
                fuzzing::cdr_decode(&d);
            }
            fuzzing::cdr_decode(&data[..i]);
        }
    }
}

/// The checked-in seeds are what the generator below makes: the test fails
/// when they drift. `SWITCHBOARD_WRITE_CORPUS=1` rewrites them instead.
#[test]
fn seed_corpus_matches_its_generator() {
    let reg = TypeRegistry::from_idl_str("f.idl", fuzzing::FUZZ_IDL).unwrap();
    for d in [
        "codec_idl_parser",
        "codec_cdr_decode",
        "codec_json_encode",
        "codec_round_trip",
    ] {
        if writing() {
            std::fs::create_dir_all(corpus(d)).unwrap();
        }
    }
    emit(
        corpus("codec_idl_parser").join("fuzz_idl"),
        fuzzing::FUZZ_IDL,
    )
    .unwrap();
    let golden = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden/golden.idl");
    emit_copy(golden, corpus("codec_idl_parser").join("golden_idl")).unwrap();
    let imu =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/ros2/sensor_msgs/msg/Imu.idl");
    emit_copy(imu, corpus("codec_idl_parser").join("ros2_imu_idl")).unwrap();
    let names = [
        "f::Point", "f::Prims", "f::U", "f::AU", "f::Coll", "f::App", "f::Mut", "f::Opt",
    ];
    let mut x = 0x1234_5678_9abc_def1u64;
    for (sel, name) in names.iter().enumerate() {
        let ty = reg.get(name).unwrap();
        for (k, enc) in [
            Encoding::XCDR1_LE,
            Encoding::XCDR1_BE,
            Encoding::XCDR2_LE,
            Encoding::XCDR2_BE,
        ]
        .into_iter()
        .enumerate()
        {
            let mut gen_in = vec![sel as u8];
            for _ in 0..64 {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                gen_in.push(x as u8);
            }
            emit(
                corpus("codec_round_trip").join(format!("{sel}_{k}")),
                &gen_in,
            )
            .unwrap();
            // Build the value the generator makes, encode it for the other targets.
            let v = generated(&reg, &gen_in);
            let b = cdr::encode_from_json(&reg, ty, &v, enc).unwrap();
            let mut dec = vec![sel as u8];
            dec.extend_from_slice(&b);
            emit(corpus("codec_cdr_decode").join(format!("{sel}_{k}")), dec).unwrap();
            let mut js = vec![(sel + k * names.len()) as u8];
            js.extend_from_slice(v.to_string().as_bytes());
            emit(corpus("codec_json_encode").join(format!("{sel}_{k}")), js).unwrap();
        }
    }
}

/// The value `fuzzing::round_trip` generates for `input` (decoded back from XCDR2).
fn generated(reg: &TypeRegistry, input: &[u8]) -> serde_json::Value {
    // round_trip asserts internally; reproduce its value by encoding through it.
    fuzzing::round_trip(input);
    let names = [
        "f::Point", "f::Prims", "f::U", "f::AU", "f::Coll", "f::App", "f::Mut", "f::Opt",
    ];
    let ty = reg.get(names[input[0] as usize % names.len()]).unwrap();
    fuzzing::generate(reg, ty, &input[1..])
}

fn writing() -> bool {
    std::env::var_os("SWITCHBOARD_WRITE_CORPUS").is_some()
}

fn emit(path: impl AsRef<Path>, data: impl AsRef<[u8]>) -> std::io::Result<()> {
    let (path, data) = (path.as_ref(), data.as_ref());
    if writing() {
        return std::fs::write(path, data);
    }
    let have = std::fs::read(path)?;
    assert!(
        have == data,
        "{} differs from its generator (SWITCHBOARD_WRITE_CORPUS=1 rewrites it)",
        path.display()
    );
    Ok(())
}

fn emit_copy(from: impl AsRef<Path>, to: impl AsRef<Path>) -> std::io::Result<u64> {
    let data = std::fs::read(from)?;
    emit(to, &data)?;
    Ok(data.len() as u64)
}
