//! Pure mappings between HTTP and the message model: request paths to topics,
//! query strings to patterns, messages to the JSON envelope of SSE events.

use base64::Engine as _;
use percent_encoding::percent_decode_str;
use serde_json::{Value, json};
use switchboard_model::{Format, Message, ModelError, Pattern, Topic};

/// The topic named by the rest of a `/topics/...` path: each level is
/// percent-decoded; wildcards are refused.
pub fn path_to_topic(rest: &str) -> Result<Topic, String> {
    let decoded = decode_levels(rest)?;
    Topic::new(&decoded).map_err(|e: ModelError| e.to_string())
}

fn decode_levels(rest: &str) -> Result<String, String> {
    let mut out = String::with_capacity(rest.len());
    for (i, level) in rest.split('/').enumerate() {
        if i > 0 {
            out.push('/');
        }
        let l = percent_decode_str(level)
            .decode_utf8()
            .map_err(|_| "topic is not valid UTF-8".to_owned())?;
        out.push_str(&l);
    }
    Ok(out)
}

/// Every value of `key` in a query string, percent-decoded (`+` is kept as
/// is: it is MQTT's wildcard, not a space).
pub fn query_values(query: Option<&str>, key: &str) -> Result<Vec<String>, String> {
    let mut out = Vec::new();
    for pair in query.unwrap_or("").split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        if k == key {
            let v = percent_decode_str(v)
                .decode_utf8()
                .map_err(|_| format!("`{key}` is not valid UTF-8"))?;
            out.push(v.into_owned());
        }
    }
    Ok(out)
}

/// The patterns of `?topic=...` (default `#`).
pub fn query_patterns(query: Option<&str>) -> Result<Vec<Pattern>, String> {
    let vals = query_values(query, "topic")?;
    if vals.is_empty() {
        return Pattern::new("#")
            .map(|p| vec![p])
            .map_err(|e| e.to_string());
    }
    vals.iter()
        .map(|v| Pattern::new(v).map_err(|e| e.to_string()))
        .collect()
}

/// A payload as a JSON value: JSON payloads as themselves, text as a string,
/// anything else (or invalid JSON/text) as a base64 string. The second value
/// says whether base64 was used.
pub fn payload_json(msg: &Message) -> (Value, bool) {
    match msg.format {
        Format::Json => {
            if let Ok(v) = serde_json::from_slice::<Value>(&msg.payload) {
                return (v, false);
            }
        }
        Format::Text => {
            if let Ok(s) = std::str::from_utf8(&msg.payload) {
                return (Value::String(s.to_owned()), false);
            }
        }
        _ => {}
    }
    (
        Value::String(base64::engine::general_purpose::STANDARD.encode(&msg.payload)),
        true,
    )
}

/// The JSON envelope of a message (SSE `data:`, and the WebSocket `msg` op).
pub fn envelope(adapter: &str, msg: &Message) -> Value {
    let (payload, b64) = payload_json(msg);
    let mut v = json!({
        "topic": msg.topic.as_str(),
        "address": format!("{adapter}:{}", msg.topic),
        "payload": payload,
        "format": msg.format.name(),
        "qos": msg.qos.as_u8(),
        "retain": msg.retain,
        "origin": &*msg.origin.adapter,
        "ts": msg.timestamp.duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64),
    });
    if b64 {
        v["encoding"] = Value::String("base64".into());
    }
    v
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn paths() {
        assert_eq!(path_to_topic("a/b").unwrap().as_str(), "a/b");
        assert_eq!(path_to_topic("a%20b/c").unwrap().as_str(), "a b/c");
        assert_eq!(path_to_topic("caf%C3%A9").unwrap().as_str(), "café");
        assert!(path_to_topic("a/%2B").is_err());
        assert!(path_to_topic("a/%23").is_err());
        assert!(path_to_topic("").is_err());
        assert!(path_to_topic("%FF").is_err());
        assert!(path_to_topic("a%00").is_err());
    }

    #[test]
    fn queries() {
        let p = query_patterns(Some("topic=sensors/%23&x=1&topic=a/+/b")).unwrap();
        assert_eq!(
            p.iter().map(Pattern::as_str).collect::<Vec<_>>(),
            vec!["sensors/#", "a/+/b"]
        );
        assert_eq!(query_patterns(None).unwrap()[0].as_str(), "#");
        assert!(query_patterns(Some("topic=a/#/b")).is_err());
    }

    #[test]
    fn envelopes() {
        let m = Message::json("http:a", r#"{"x":1}"#).unwrap();
        assert_eq!(envelope("http", &m)["payload"]["x"], 1);
        let m = Message::octets("http:a", vec![0xffu8]).unwrap();
        let e = envelope("http", &m);
        assert_eq!(e["payload"], "/w==");
        assert_eq!(e["encoding"], "base64");
    }
}
