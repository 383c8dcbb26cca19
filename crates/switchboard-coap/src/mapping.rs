//! Pure mappings between CoAP and the model: Content-Format numbers <->
//! [`Format`], Uri-Path segments <-> [`Topic`], ETags.

use std::sync::Arc;

use switchboard_model::{Format, Topic};

/// Registered Content-Formats we map to MIME types other than the core ones.
const MIME_TABLE: &[(u16, &str)] = &[
    (16, "application/cose; cose-type=\"cose-encrypt0\""),
    (21, "image/gif"),
    (22, "image/jpeg"),
    (23, "image/png"),
    (40, "application/link-format"),
    (41, "application/xml"),
    (47, "application/exi"),
    (51, "application/json-patch+json"),
    (52, "application/merge-patch+json"),
    (61, "application/cwt"),
    (62, "application/multipart-core"),
    (63, "application/cbor-seq"),
    (110, "application/senml+json"),
    (111, "application/sensml+json"),
    (112, "application/senml+cbor"),
    (113, "application/sensml+cbor"),
    (432, "application/td+json"),
    (10000, "application/vnd.ocf+cbor"),
    (20000, "text/css"),
];

/// The CoAP Content-Format number of `text/plain; charset=utf-8`.
pub(crate) const CF_TEXT: u16 = 0;
/// `application/octet-stream`.
pub(crate) const CF_OCTETS: u16 = 42;
/// `application/json`.
pub(crate) const CF_JSON: u16 = 50;
/// `application/cbor`.
pub(crate) const CF_CBOR: u16 = 60;

/// The format of a Content-Format number; `None` for numbers we do not know
/// (a request carrying one gets 4.15).
pub fn format_of(cf: u16) -> Option<Format> {
    Some(match cf {
        CF_TEXT => Format::Text,
        CF_OCTETS => Format::Octets,
        CF_JSON => Format::Json,
        CF_CBOR => Format::Cbor,
        n => {
            let (_, mime) = MIME_TABLE.iter().find(|(c, _)| *c == n)?;
            Format::Mime(Arc::from(*mime))
        }
    })
}

/// The Content-Format number of a format; `None` when CoAP has none (the
/// option is then left out). CDR travels as octets.
pub fn content_format(f: &Format) -> Option<u16> {
    Some(match f {
        Format::Text => CF_TEXT,
        Format::Octets | Format::Cdr(_) => CF_OCTETS,
        Format::Json => CF_JSON,
        Format::Cbor => CF_CBOR,
        Format::Mime(m) => {
            if let Some((c, _)) = MIME_TABLE.iter().find(|(_, t)| t.eq_ignore_ascii_case(m)) {
                return Some(*c);
            }
            match Format::from_mime(m) {
                Format::Mime(_) => return None,
                other => return content_format(&other),
            }
        }
    })
}

/// Why Uri-Path options do not name a topic.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum PathError {
    /// No segments (the root).
    Empty,
    /// Not UTF-8, a segment containing `/`, or not a valid topic.
    Bad,
}

/// Joins Uri-Path segments into a topic: `["a","b"]` -> `a/b`.
pub(crate) fn topic_of_path<'a>(
    segments: impl IntoIterator<Item = &'a [u8]>,
) -> Result<Topic, PathError> {
    let mut s = String::new();
    for (i, seg) in segments.into_iter().enumerate() {
        let seg = std::str::from_utf8(seg).map_err(|_| PathError::Bad)?;
        if seg.contains('/') {
            return Err(PathError::Bad);
        }
        if i > 0 {
            s.push('/');
        }
        s.push_str(seg);
    }
    if s.is_empty() {
        return Err(PathError::Empty);
    }
    Topic::new(&s).map_err(|_| PathError::Bad)
}

/// An ETag for a payload and format: 8 bytes of FNV-1a.
pub(crate) fn etag(payload: &[u8], cf: Option<u16>) -> [u8; 8] {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in cf.unwrap_or(u16::MAX).to_be_bytes().iter().chain(payload) {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h.to_be_bytes()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn content_format_table() {
        let table: &[(u16, Format)] = &[
            (0, Format::Text),
            (42, Format::Octets),
            (50, Format::Json),
            (60, Format::Cbor),
            (40, Format::Mime("application/link-format".into())),
            (41, Format::Mime("application/xml".into())),
            (110, Format::Mime("application/senml+json".into())),
            (23, Format::Mime("image/png".into())),
        ];
        for (cf, f) in table {
            assert_eq!(format_of(*cf).as_ref(), Some(f), "cf {cf}");
            assert_eq!(content_format(f), Some(*cf), "format {f}");
        }
        for unknown in [1u16, 65000, 9999] {
            assert_eq!(format_of(unknown), None);
        }
        assert_eq!(content_format(&Format::Cdr(None)), Some(42));
        assert_eq!(
            content_format(&Format::Mime("application/x-nothing".into())),
            None
        );
        assert_eq!(
            content_format(&Format::Mime("application/ld+json".into())),
            Some(50)
        );
        assert_eq!(content_format(&Format::Mime("IMAGE/PNG".into())), Some(23));
    }

    #[test]
    fn paths_and_topics() {
        let ok: &[(&[&[u8]], &str)] = &[
            (&[b"a"], "a"),
            (&[b"a", b"b"], "a/b"),
            (&[b"sensors", b"kitchen", b"temp"], "sensors/kitchen/temp"),
        ];
        for (segs, t) in ok {
            assert_eq!(topic_of_path(segs.iter().copied()).unwrap().as_str(), *t);
        }
        assert_eq!(topic_of_path(std::iter::empty()), Err(PathError::Empty));

        assert_eq!(topic_of_path([&b"+"[..]]), Err(PathError::Bad));
        assert_eq!(topic_of_path([&b"#"[..]]), Err(PathError::Bad));
        assert_eq!(topic_of_path([&b"a/b"[..]]), Err(PathError::Bad));
        assert_eq!(topic_of_path([&[0xffu8][..]]), Err(PathError::Bad));
    }

    #[test]
    fn etags_differ() {
        assert_ne!(etag(b"1", Some(0)), etag(b"2", Some(0)));
        assert_ne!(etag(b"1", Some(0)), etag(b"1", Some(50)));
        assert_eq!(etag(b"1", None), etag(b"1", None));
    }
}
