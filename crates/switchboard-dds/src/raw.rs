//! Raw samples: serialized payloads kept as received, with their
//! representation identifier, and the rustdds (de)serializer adapters that
//! move them without decoding.
//!
//! rustdds has no raw API; its adapter traits are the one place where the
//! serialized bytes and the representation identifier are visible. The
//! deserializer accepts every CDR flavour (XCDR1 plain and parameter-list,
//! XCDR2 plain, delimited and parameter-list, both byte orders) and keeps the
//! bytes. A writer's output encoding is static in rustdds, so
//! [`RawSer`] is const-generic over the representation identifier: one writer
//! type per encoding, chosen by the sample's own identifier.
//!
//! A [`RawSample`] payload as a bridge [`Message`](switchboard_model::Message)
//! is the full CDR encapsulation: the 2-byte representation identifier, 2 option
//! bytes, then the body (what SPEC section 1 calls `cdr`).

use std::marker::PhantomData;

use bytes::{BufMut, Bytes, BytesMut};
use rustdds::cdr_encoding_size::{CdrEncodingMaxSize, CdrEncodingSize};
use rustdds::dds::key::KeyHash;
use rustdds::{Key, Keyed, RepresentationIdentifier};

/// Representation identifiers accepted by raw readers.
pub const ACCEPTED: &[RepresentationIdentifier] = &[
    RepresentationIdentifier::CDR_LE,
    RepresentationIdentifier::CDR_BE,
    RepresentationIdentifier::PL_CDR_LE,
    RepresentationIdentifier::PL_CDR_BE,
    RepresentationIdentifier::XCDR2_LE,
    RepresentationIdentifier::XCDR2_BE,
    RepresentationIdentifier::D_CDR2_LE,
    RepresentationIdentifier::D_CDR2_BE,
    RepresentationIdentifier::PL_XCDR2_LE,
    RepresentationIdentifier::PL_XCDR2_BE,
];

/// The numeric value of a representation identifier (`0x0001` for CDR_LE).
pub fn rep_id_u16(r: RepresentationIdentifier) -> u16 {
    u16::from_be_bytes(r.to_bytes())
}

/// Whether an identifier is one of XCDR2's (`0x0006..=0x000b`).
pub fn is_xcdr2(rep: u16) -> bool {
    (0x0006..=0x000b).contains(&rep)
}

/// Whether an identifier is accepted by raw readers and writable by raw writers.
pub fn is_supported(rep: u16) -> bool {
    matches!(rep, 0x0000..=0x0003 | 0x0006..=0x000b)
}

/// The instance key of a raw sample: the key members serialized in
/// representation `rep`, and a 16-byte key hash.
///
/// Without a type that names the key members the key of a data sample is
/// empty (one instance per topic); disposes carry the serialized key the
/// writer sent, in the writer's representation.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default, serde::Serialize)]
pub struct RawKey {
    /// Representation identifier of `bytes`.
    pub rep: u16,
    /// Serialized key members (may be empty).
    pub bytes: Vec<u8>,
    /// The key hash.
    #[serde(skip)]
    pub hash: [u8; 16],
}

impl RawKey {
    /// A key from its serialized members, hashed as DDS-RTPS 9.6.3.8 says:
    /// zero-padded when 16 bytes or less, MD5 otherwise.
    pub fn from_bytes(rep: u16, bytes: Vec<u8>) -> Self {
        let hash = hash_key_bytes(&bytes);
        RawKey { rep, bytes, hash }
    }

    /// The key as a full encapsulation (identifier, options, members): what
    /// the `dds.key` property carries, in hex.
    pub fn to_encapsulated(&self) -> Vec<u8> {
        let mut v = Vec::with_capacity(4 + self.bytes.len());
        v.extend_from_slice(&self.rep.to_be_bytes());
        v.extend_from_slice(&[0, 0]);
        v.extend_from_slice(&self.bytes);
        v
    }

    /// Parses [`RawKey::to_encapsulated`]'s form.
    pub fn from_encapsulated(v: &[u8]) -> Result<RawKey, RawError> {
        if v.len() < 4 {
            return Err(RawError::Short(v.len()));
        }
        let rep = u16::from_be_bytes([v[0], v[1]]);
        if !is_supported(rep) {
            return Err(RawError::Representation(rep));
        }
        Ok(RawKey::from_bytes(rep, v[4..].to_vec()))
    }
}

/// The key hash of serialized (big-endian CDR) key members.
pub fn hash_key_bytes(bytes: &[u8]) -> [u8; 16] {
    let mut h = [0u8; 16];
    if bytes.len() <= 16 {
        h[..bytes.len()].copy_from_slice(bytes);
    } else {
        h = md5_digest(bytes);
    }
    h
}

fn md5_digest(bytes: &[u8]) -> [u8; 16] {
    md5::compute(bytes).0
}

impl CdrEncodingSize for RawKey {
    fn cdr_encoding_max_size() -> CdrEncodingMaxSize {
        CdrEncodingMaxSize::Unbounded
    }
}

impl Key for RawKey {
    fn hash_key(&self, _force_md5: bool) -> KeyHash {
        // KeyHash has no public constructor from bytes other than this one.
        KeyHash::from_pl_cdr_bytes(self.hash.to_vec()).unwrap_or_else(|_| KeyHash::zero())
    }
}

/// One serialized sample as received or to be written.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RawSample {
    /// Representation identifier (`0x0001` = XCDR1 little-endian, ...).
    pub rep: u16,
    /// The serialized body, after the 4-byte encapsulation header.
    pub body: Bytes,
    /// The instance key (empty for keyless topics).
    pub key: RawKey,
}

impl RawSample {
    /// The full encapsulation: identifier, two zero option bytes, body.
    pub fn to_encapsulated(&self) -> Bytes {
        let mut b = BytesMut::with_capacity(4 + self.body.len());
        b.put_u16(self.rep);
        b.put_u16(0);
        b.put_slice(&self.body);
        b.freeze()
    }

    /// Splits a full encapsulation (as carried in a `cdr` message) into a sample.
    pub fn from_encapsulated(payload: &Bytes) -> Result<RawSample, RawError> {
        if payload.len() < 4 {
            return Err(RawError::Short(payload.len()));
        }
        let rep = u16::from_be_bytes([payload[0], payload[1]]);
        if !is_supported(rep) {
            return Err(RawError::Representation(rep));
        }
        Ok(RawSample {
            rep,
            body: payload.slice(4..),
            key: RawKey::default(),
        })
    }
}

impl Keyed for RawSample {
    type K = RawKey;
    fn key(&self) -> RawKey {
        self.key.clone()
    }
}

/// Why raw bytes were refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RawError {
    /// Fewer than the 4 bytes of an encapsulation header.
    #[error("CDR payload of {0} bytes has no encapsulation header")]
    Short(usize),
    /// An identifier that is not CDR.
    #[error("unsupported representation identifier 0x{0:04x}")]
    Representation(u16),
}

/// The raw deserializer adapter (for keyed and keyless readers).
#[derive(Debug)]
pub struct RawDe;

/// The decoder behind [`RawDe`].
#[derive(Clone, Copy, Debug)]
pub struct RawDecoder;

impl rustdds::no_key::DeserializerAdapter<RawSample> for RawDe {
    type Error = RawError;
    type Decoded = RawSample;

    fn supported_encodings() -> &'static [RepresentationIdentifier] {
        ACCEPTED
    }

    fn transform_decoded(decoded: RawSample) -> RawSample {
        decoded
    }
}

impl rustdds::no_key::DefaultDecoder<RawSample> for RawDe {
    type Decoder = RawDecoder;
    const DECODER: RawDecoder = RawDecoder;
}

impl<'de> rustdds::no_key::Decode<'de, RawSample> for RawDecoder {
    type Error = RawError;

    fn decode_bytes(
        self,
        input: &'de [u8],
        encoding: RepresentationIdentifier,
    ) -> Result<RawSample, RawError> {
        // The one copy per sample: rustdds lends the bytes only for this call.
        Ok(RawSample {
            rep: rep_id_u16(encoding),
            body: Bytes::copy_from_slice(input),
            key: RawKey::default(),
        })
    }
}

impl rustdds::with_key::DeserializerAdapter<RawSample> for RawDe {
    type DecodedKey = RawKey;

    fn transform_decoded_key(decoded_key: RawKey) -> RawKey {
        decoded_key
    }
}

impl rustdds::with_key::DefaultDecoder<RawSample> for RawDe {
    type Decoder = RawDecoder;
    const DECODER: RawDecoder = RawDecoder;
}

impl<'de> rustdds::with_key::Decode<'de, RawSample, RawKey> for RawDecoder {
    fn decode_key_bytes(
        self,
        input: &'de [u8],
        encoding: RepresentationIdentifier,
    ) -> Result<RawKey, RawError> {
        Ok(RawKey::from_bytes(rep_id_u16(encoding), input.to_vec()))
    }
}

/// The raw serializer adapter writing encoding `REP` (the sample must carry
/// the same identifier; the writer set picks the writer by it).
#[derive(Debug)]
pub struct RawSer<const REP: u16>(PhantomData<()>);

impl<const REP: u16> rustdds::no_key::SerializerAdapter<RawSample> for RawSer<REP> {
    type Error = RawError;

    fn output_encoding() -> RepresentationIdentifier {
        let b = REP.to_be_bytes();
        RepresentationIdentifier::from_bytes(&b).unwrap_or(RepresentationIdentifier::CDR_LE)
    }

    fn to_bytes(value: &RawSample) -> Result<Bytes, RawError> {
        Ok(value.body.clone())
    }
}

impl<const REP: u16> rustdds::with_key::SerializerAdapter<RawSample> for RawSer<REP> {
    fn key_to_bytes(value: &RawKey) -> Result<Bytes, RawError> {
        Ok(Bytes::copy_from_slice(&value.bytes))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encapsulation_round_trip() {
        let s = RawSample {
            rep: 0x0009,
            body: Bytes::from_static(&[1, 2, 3]),
            key: RawKey::default(),
        };
        let e = s.to_encapsulated();
        assert_eq!(&e[..], &[0, 9, 0, 0, 1, 2, 3]);
        assert_eq!(RawSample::from_encapsulated(&e), Ok(s));
        assert_eq!(
            RawSample::from_encapsulated(&Bytes::from_static(&[0, 1])),
            Err(RawError::Short(2))
        );
        assert_eq!(
            RawSample::from_encapsulated(&Bytes::from_static(&[0, 4, 0, 0])),
            Err(RawError::Representation(4))
        );
    }

    #[test]
    fn key_hash_rules() {
        let short = RawKey::from_bytes(0, vec![0, 0, 0, 7]);
        assert_eq!(short.to_encapsulated(), [0, 0, 0, 0, 0, 0, 0, 7]);
        assert_eq!(
            RawKey::from_encapsulated(&short.to_encapsulated()),
            Ok(short.clone())
        );
        assert_eq!(short.hash[..4], [0, 0, 0, 7]);
        assert_eq!(short.hash[4..], [0u8; 12]);
        let long = RawKey::from_bytes(1, vec![1u8; 20]);
        assert_eq!(long.hash, md5::compute([1u8; 20]).0);
    }

    #[test]
    fn rep_ids() {
        assert_eq!(rep_id_u16(RepresentationIdentifier::D_CDR2_LE), 0x0009);
        assert!(is_xcdr2(0x0009) && !is_xcdr2(0x0001));
        for r in ACCEPTED {
            assert!(is_supported(rep_id_u16(*r)));
        }
    }
}
