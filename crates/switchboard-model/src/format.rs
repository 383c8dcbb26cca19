//! Payload formats and quality of service.

use std::fmt;
use std::sync::Arc;

use serde::Serialize;

/// The content format of a payload.
#[derive(Clone, PartialEq, Eq, Hash, Debug, Default)]
pub enum Format {
    /// JSON text (`application/json`).
    Json,
    /// CBOR (`application/cbor`).
    Cbor,
    /// UTF-8 text (`text/plain`).
    Text,
    /// Opaque bytes (`application/octet-stream`); the default.
    #[default]
    Octets,
    /// OMG CDR with its 4-byte encapsulation header, and the DDS type name when known.
    Cdr(Option<Arc<str>>),
    /// Any other MIME type, as given.
    Mime(Arc<str>),
}

/// The MIME type used for CDR payloads.
pub const CDR_MIME: &str = "application/x-cdr";

impl Format {
    /// Parses a configuration name: `json`, `cbor`, `text`, `octets`, `cdr`.
    pub fn from_name(name: &str) -> Option<Format> {
        Some(match name {
            "json" => Format::Json,
            "cbor" => Format::Cbor,
            "text" => Format::Text,
            "octets" => Format::Octets,
            "cdr" => Format::Cdr(None),
            _ => return None,
        })
    }

    /// The short name of the format (`json`, ..., or the MIME type).
    pub fn name(&self) -> &str {
        match self {
            Format::Json => "json",
            Format::Cbor => "cbor",
            Format::Text => "text",
            Format::Octets => "octets",
            Format::Cdr(_) => "cdr",
            Format::Mime(m) => m,
        }
    }

    /// The MIME type for this format (as used in `Content-Type`).
    pub fn mime(&self) -> String {
        match self {
            Format::Json => "application/json".into(),
            Format::Cbor => "application/cbor".into(),
            Format::Text => "text/plain; charset=utf-8".into(),
            Format::Octets => "application/octet-stream".into(),
            Format::Cdr(None) => CDR_MIME.into(),
            Format::Cdr(Some(t)) => format!("{CDR_MIME}; type={t}"),
            Format::Mime(m) => m.to_string(),
        }
    }

    /// Maps a MIME type (a `Content-Type` value) to a format. Parameters other
    /// than a CDR `type=` are ignored; `+json` and `+cbor` suffixes count.
    pub fn from_mime(mime: &str) -> Format {
        let mut parts = mime.split(';');
        let essence = parts.next().unwrap_or("").trim().to_ascii_lowercase();
        match essence.as_str() {
            "application/json" | "text/json" => Format::Json,
            "application/cbor" => Format::Cbor,
            "text/plain" => Format::Text,
            "application/octet-stream" => Format::Octets,
            CDR_MIME => {
                let ty = parts.find_map(|p| {
                    let (k, v) = p.split_once('=')?;
                    (k.trim() == "type").then(|| Arc::from(v.trim().trim_matches('"')))
                });
                Format::Cdr(ty)
            }
            e if e.ends_with("+json") => Format::Json,
            e if e.ends_with("+cbor") => Format::Cbor,
            "" => Format::Octets,
            _ => Format::Mime(Arc::from(mime.trim())),
        }
    }

    /// Whether payloads of this format are text a person can read as is.
    pub fn is_textual(&self) -> bool {
        matches!(self, Format::Json | Format::Text)
    }
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl Serialize for Format {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.name())
    }
}

/// Delivery guarantee, mapped to each protocol's own.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, Default, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Qos {
    /// MQTT 0, DDS best effort, CoAP NON.
    #[default]
    AtMostOnce,
    /// MQTT 1, DDS reliable, CoAP CON.
    AtLeastOnce,
    /// MQTT 2.
    ExactlyOnce,
}

impl Qos {
    /// From MQTT's QoS number.
    pub fn from_u8(n: u8) -> Option<Qos> {
        Some(match n {
            0 => Qos::AtMostOnce,
            1 => Qos::AtLeastOnce,
            2 => Qos::ExactlyOnce,
            _ => return None,
        })
    }

    /// MQTT's QoS number.
    pub fn as_u8(self) -> u8 {
        match self {
            Qos::AtMostOnce => 0,
            Qos::AtLeastOnce => 1,
            Qos::ExactlyOnce => 2,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mime_round_trip() {
        for f in [
            Format::Json,
            Format::Cbor,
            Format::Text,
            Format::Octets,
            Format::Cdr(None),
        ] {
            assert_eq!(Format::from_mime(&f.mime()), f);
        }
        assert_eq!(
            Format::from_mime("application/x-cdr; type=sensors::Temp"),
            Format::Cdr(Some("sensors::Temp".into()))
        );
        assert_eq!(Format::from_mime("application/ld+json"), Format::Json);
        assert_eq!(
            Format::from_mime("image/png"),
            Format::Mime("image/png".into())
        );
        assert_eq!(
            Format::from_mime("Application/JSON; charset=utf-8"),
            Format::Json
        );
    }
}
