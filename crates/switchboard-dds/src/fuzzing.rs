//! Fuzz target bodies (see `fuzz/fuzz_targets/dds_*.rs`), also replayed over
//! the checked-in corpus by `tests/fuzz_corpus.rs`.

use std::sync::{Arc, OnceLock};

use bytes::Bytes;
use switchboard_codec::idl::TypeRegistry;
use switchboard_model::Format;

use crate::raw::{RawKey, RawSample};
use crate::typed::Typed;

const IDL: &str = "module test {
    @final struct Reading { long id; double value; string label; };
    @appendable struct AReading { long id; double value; string label; };
    @final struct Keyed { @key long id; double value; };
    @mutable struct M { @key string name; sequence<long, 4> v; @optional double o; };
};";

const TYPES: [&str; 4] = ["test::Reading", "test::AReading", "test::Keyed", "test::M"];

fn types() -> &'static [Typed] {
    static T: OnceLock<Vec<Typed>> = OnceLock::new();
    T.get_or_init(|| {
        let reg = match TypeRegistry::from_idl_str("fuzz.idl", IDL) {
            Ok(r) => Arc::new(r),
            Err(_) => return Vec::new(),
        };
        TYPES
            .iter()
            .filter_map(|t| Typed::lookup(&reg, t))
            .collect()
    })
}

/// What the adapter does with bytes from the network or from a delivery:
/// the first byte picks a type and a format, the rest is the payload. A
/// sample is split from its encapsulation and decoded with the type; a
/// JSON/CBOR payload is encoded to CDR; a key is parsed from its
/// encapsulated and hex forms. Nothing may panic.
pub fn dds_payload(data: &[u8]) {
    let Some((&sel, rest)) = data.split_first() else {
        return;
    };
    let types = types();
    let Some(t) = types.get(usize::from(sel & 3)) else {
        return;
    };
    let payload = Bytes::copy_from_slice(rest);
    match (sel >> 2) & 3 {
        0 => {
            if let Ok(s) = RawSample::from_encapsulated(&payload)
                && let Ok(d) = t.decode(&s)
            {
                let _ = t.dispose_key(&s.key);
                // What decodes must encode again.
                if let Ok(v) = Typed::parse(&d.json, &Format::Json) {
                    let _ = t.encode(&v);
                }
            }
        }
        1 => {
            if let Ok(v) = Typed::parse(rest, &Format::Json) {
                let _ = t.encode(&v);
                let _ = t.encode_key(&v);
            }
        }
        2 => {
            if let Ok(v) = Typed::parse(rest, &Format::Cbor) {
                let _ = t.encode(&v);
            }
        }
        _ => {
            let _ = RawKey::from_encapsulated(rest);
            if let Ok(s) = std::str::from_utf8(rest) {
                let _ = crate::mapping::unhex(s);
                let _ = crate::mapping::discovered_bridge_topic(s, true);
                let _ = crate::mapping::idl_type_name(s);
            }
        }
    }
}
