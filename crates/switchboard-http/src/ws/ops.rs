//! The WebSocket JSON protocol, sans-IO: parsing client requests and writing
//! server replies. No sockets here, so it is fuzzed and unit-tested alone.
//!
//! ```text
//! client -> {"op":"sub","topic":"sensors/#","retained":true,"binary":false,"ref":1}
//! client -> {"op":"unsub","topic":"sensors/#"}
//! client -> {"op":"pub","topic":"a/b","payload":<JSON value>,"qos":1,"retain":false}
//! client -> {"op":"pub","topic":"a/b","format":"text","payload":"hello"}
//! client -> {"op":"pub","topic":"a/b","format":"octets","payload":"<base64>"}
//! client -> {"op":"pub","topic":"a/b","binary":true}   then one binary frame: the payload
//! client -> {"op":"ping"}
//! server -> {"op":"ok","ref":...}
//! server -> {"op":"error","reason":"...","ref":...}
//! server -> {"op":"msg","topic":"a/b","payload":<JSON value or base64 string>,"format":"json",...}
//! ```

use base64::Engine as _;
use bytes::Bytes;
use serde::Deserialize;
use serde_json::{Value, json};
use switchboard_model::{Format, Pattern, Qos, Topic};

/// The most deeply nested JSON a request may hold.
pub const MAX_JSON_DEPTH: usize = 64;

/// A parsed client request.
#[derive(Debug, Clone, PartialEq)]
pub enum Op {
    /// Subscribe to a pattern.
    Sub {
        /// The pattern.
        topic: Pattern,
        /// First send the current last values of matching topics.
        retained: bool,
        /// Deliver non-JSON payloads as binary frames (after a `msg` op with
        /// `"binary":true`) instead of base64.
        binary: bool,
    },
    /// Unsubscribe from a pattern.
    Unsub {
        /// The pattern, as subscribed.
        topic: Pattern,
    },
    /// Publish a message.
    Pub {
        /// The topic.
        topic: Topic,
        /// The payload, unless it follows as a binary frame.
        payload: Option<(Bytes, Format)>,
        /// QoS.
        qos: Qos,
        /// Retain.
        retain: bool,
    },
    /// Liveness check; answered with `ok`.
    Ping,
}

/// A request with its optional `ref`.
#[derive(Debug, Clone, PartialEq)]
pub struct Request {
    /// The operation.
    pub op: Op,
    /// Echoed in the reply.
    pub reference: Option<Value>,
}

/// A request that could not be understood; answered with an `error` op.
#[derive(Debug, Clone, PartialEq)]
pub struct OpError {
    /// Why.
    pub reason: String,
    /// The request's `ref`, when it could be read.
    pub reference: Option<Value>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Raw {
    op: String,
    topic: Option<String>,
    payload: Option<Value>,
    format: Option<String>,
    qos: Option<u8>,
    retain: Option<bool>,
    retained: Option<bool>,
    binary: Option<bool>,
    #[serde(rename = "ref")]
    reference: Option<Value>,
}

fn depth_ok(text: &str) -> bool {
    let mut depth = 0usize;
    let mut in_str = false;
    let mut esc = false;
    for b in text.bytes() {
        if in_str {
            match (esc, b) {
                (true, _) => esc = false,
                (false, b'\\') => esc = true,
                (false, b'"') => in_str = false,
                _ => {}
            }
            continue;
        }
        match b {
            b'"' => in_str = true,
            b'[' | b'{' => {
                depth += 1;
                if depth > MAX_JSON_DEPTH {
                    return false;
                }
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    true
}

/// Parses one text frame.
pub fn parse(text: &str) -> Result<Request, OpError> {
    let err = |reason: String, reference: Option<Value>| OpError { reason, reference };
    if !depth_ok(text) {
        return Err(err(
            format!("JSON nested deeper than {MAX_JSON_DEPTH}"),
            None,
        ));
    }
    let raw: Raw = match serde_json::from_str(text) {
        Ok(r) => r,
        Err(e) => {
            // Try to keep the ref for the error reply.
            let reference = serde_json::from_str::<Value>(text)
                .ok()
                .and_then(|v| v.get("ref").cloned());
            return Err(err(format!("bad request: {e}"), reference));
        }
    };
    let reference = raw.reference.clone();
    let fail = |reason: String| Err(err(reason, reference.clone()));
    let op = match raw.op.as_str() {
        "sub" | "unsub" => {
            let Some(t) = raw.topic.as_deref() else {
                return fail("`topic` is required".into());
            };
            let topic = match Pattern::new(t) {
                Ok(p) => p,
                Err(e) => return fail(format!("bad topic pattern: {e}")),
            };
            if raw.payload.is_some()
                || raw.qos.is_some()
                || raw.retain.is_some()
                || raw.format.is_some()
            {
                return fail(format!(
                    "`{}` takes only topic, retained, binary and ref",
                    raw.op
                ));
            }
            if raw.op == "sub" {
                Op::Sub {
                    topic,
                    retained: raw.retained.unwrap_or(false),
                    binary: raw.binary.unwrap_or(false),
                }
            } else {
                Op::Unsub { topic }
            }
        }
        "pub" => {
            let Some(t) = raw.topic.as_deref() else {
                return fail("`topic` is required".into());
            };
            let topic = match Topic::new(t) {
                Ok(t) => t,
                Err(e) => return fail(format!("bad topic: {e}")),
            };
            let qos = match raw.qos.map(Qos::from_u8) {
                None => Qos::AtMostOnce,
                Some(Some(q)) => q,
                Some(None) => return fail("qos must be 0, 1 or 2".into()),
            };
            let binary = raw.binary.unwrap_or(false);
            let payload = match (binary, raw.payload) {
                (true, Some(_)) => {
                    return fail(
                        "a binary pub carries its payload in the next binary frame".into(),
                    );
                }
                (true, None) => None,
                (false, None) => return fail("`payload` is required".into()),
                (false, Some(v)) => match payload_bytes(v, raw.format.as_deref()) {
                    Ok(p) => Some(p),
                    Err(e) => return fail(e),
                },
            };
            Op::Pub {
                topic,
                payload,
                qos,
                retain: raw.retain.unwrap_or(false),
            }
        }
        "ping" => Op::Ping,
        other => return fail(format!("unknown op `{other}` (sub, unsub, pub, ping)")),
    };
    Ok(Request { op, reference })
}

fn payload_bytes(v: Value, format: Option<&str>) -> Result<(Bytes, Format), String> {
    match format.unwrap_or("json") {
        "json" => serde_json::to_vec(&v)
            .map(|b| (Bytes::from(b), Format::Json))
            .map_err(|e| e.to_string()),
        "text" => match v {
            Value::String(s) => Ok((Bytes::from(s), Format::Text)),
            _ => Err("a text payload must be a JSON string".into()),
        },
        "octets" | "base64" => match v {
            Value::String(s) => base64::engine::general_purpose::STANDARD
                .decode(s.as_bytes())
                .map(|b| (Bytes::from(b), Format::Octets))
                .map_err(|e| format!("payload is not base64: {e}")),
            _ => Err("an octets payload must be a base64 string".into()),
        },
        other => Err(format!("unknown format `{other}` (json, text, octets)")),
    }
}

/// `{"op":"ok","ref":...}`.
pub fn ok(reference: Option<&Value>) -> String {
    match reference {
        Some(r) => json!({"op": "ok", "ref": r}).to_string(),
        None => r#"{"op":"ok"}"#.to_owned(),
    }
}

/// `{"op":"error","reason":...,"ref":...}`.
pub fn error(reason: &str, reference: Option<&Value>) -> String {
    match reference {
        Some(r) => json!({"op": "error", "reason": reason, "ref": r}).to_string(),
        None => json!({"op": "error", "reason": reason}).to_string(),
    }
}

/// The `msg` op for a message: JSON payloads inline, text as a string, others
/// as base64 — or, with `binary`, a `"binary":true` marker whose payload
/// follows as a binary frame.
pub fn msg(adapter: &str, m: &switchboard_model::Message, binary: bool) -> String {
    let mut v = crate::mapping::envelope(adapter, m);
    if let Some(o) = v.as_object_mut() {
        o.insert("op".into(), Value::String("msg".into()));
        if binary && o.remove("encoding").is_some() {
            o.remove("payload");
            o.insert("binary".into(), Value::Bool(true));
        }
    }
    v.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_requests() {
        let r = parse(r#"{"op":"sub","topic":"sensors/#","ref":7}"#).unwrap();
        assert_eq!(r.reference, Some(json!(7)));
        assert!(matches!(
            r.op,
            Op::Sub {
                retained: false,
                ..
            }
        ));
        let r = parse(r#"{"op":"pub","topic":"a/b","payload":{"x":[1,2]},"qos":1,"retain":true}"#)
            .unwrap();
        match r.op {
            Op::Pub {
                payload: Some((p, f)),
                qos,
                retain,
                ..
            } => {
                assert_eq!(&p[..], br#"{"x":[1,2]}"#);
                assert_eq!((f, qos, retain), (Format::Json, Qos::AtLeastOnce, true));
            }
            other => panic!("{other:?}"),
        }
        let r = parse(r#"{"op":"pub","topic":"a","format":"octets","payload":"AAE="}"#).unwrap();
        assert!(
            matches!(r.op, Op::Pub { payload: Some((ref p, Format::Octets)), .. } if p[..] == [0, 1])
        );
        assert!(matches!(
            parse(r#"{"op":"pub","topic":"a","binary":true}"#)
                .unwrap()
                .op,
            Op::Pub { payload: None, .. }
        ));
    }

    #[test]
    fn errors_keep_ref() {
        let cases = [
            r#"{"op":"sub","ref":"x"}"#,
            r#"{"op":"sub","topic":"a/#/b","ref":"x"}"#,
            r#"{"op":"pub","topic":"a/+","payload":1,"ref":"x"}"#,
            r#"{"op":"pub","topic":"a","payload":1,"qos":3,"ref":"x"}"#,
            r#"{"op":"nope","ref":"x"}"#,
            r#"{"op":"sub","topic":"a","extra":1,"ref":"x"}"#,
        ];
        for c in cases {
            let e = parse(c).unwrap_err();
            assert_eq!(e.reference, Some(json!("x")), "{c}: {e:?}");
        }
        assert!(parse("not json").is_err());
        assert!(parse(&"[".repeat(10_000)).is_err());
        let deep = format!(
            r#"{{"op":"pub","topic":"a","payload":{}1{}}}"#,
            "[".repeat(100),
            "]".repeat(100)
        );
        assert!(parse(&deep).is_err());
    }

    #[test]
    fn replies() {
        assert_eq!(ok(Some(&json!(1))), r#"{"op":"ok","ref":1}"#);
        assert_eq!(error("no", None), r#"{"op":"error","reason":"no"}"#);
        let m = switchboard_model::Message::octets("ws:a", vec![1u8, 2]).unwrap();
        let v: Value = serde_json::from_str(&msg("ws", &m, false)).unwrap();
        assert_eq!(
            (v["op"].as_str(), v["payload"].as_str()),
            (Some("msg"), Some("AQI="))
        );
        let v: Value = serde_json::from_str(&msg("ws", &m, true)).unwrap();
        assert_eq!(v["binary"], true);
        assert!(v.get("payload").is_none());
    }
}
