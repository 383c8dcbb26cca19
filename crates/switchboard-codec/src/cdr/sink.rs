//! Where decoded values go: a [`serde_json::Value`] tree, or JSON text written
//! straight into a byte buffer (no intermediate tree; byte sequences through a
//! lookup table).

use serde_json::{Map, Number, Value};

/// Largest integer magnitude written as a JSON number (2^53, exact in f64).
pub(crate) const MAX_SAFE_INT: u64 = 1 << 53;

pub(crate) trait Sink {
    fn null(&mut self);
    fn bool(&mut self, v: bool);
    fn i64(&mut self, v: i64);
    fn u64(&mut self, v: u64);
    fn f64(&mut self, v: f64);
    fn str(&mut self, v: &str);
    /// An array of small integers (octet / uint8 data), in bulk.
    fn bytes(&mut self, v: &[u8]);
    fn begin_array(&mut self, len: usize);
    fn end_array(&mut self);
    fn begin_object(&mut self);
    fn key(&mut self, k: &str);
    fn end_object(&mut self);

    fn f32(&mut self, v: f32) {
        if v.is_finite() {
            // Shortest decimal that reads back as the same f32, so 0.1f32 is 0.1.
            let s = v.to_string();
            self.f64(s.parse().unwrap_or(f64::from(v)));
        } else {
            self.f64(f64::from(v));
        }
    }
}

/// The text JSON uses for non-finite floats.
pub(crate) fn non_finite_name(v: f64) -> &'static str {
    if v.is_nan() {
        "NaN"
    } else if v > 0.0 {
        "Infinity"
    } else {
        "-Infinity"
    }
}

enum Frame {
    Arr(Vec<Value>),
    Obj(Map<String, Value>, String),
}

/// Builds a [`Value`].
#[derive(Default)]
pub(crate) struct ValueSink {
    stack: Vec<Frame>,
    root: Option<Value>,
}

impl ValueSink {
    pub(crate) fn finish(self) -> Value {
        self.root.unwrap_or(Value::Null)
    }

    #[inline]
    fn push(&mut self, v: Value) {
        match self.stack.last_mut() {
            Some(Frame::Arr(a)) => a.push(v),
            Some(Frame::Obj(m, k)) => {
                m.insert(std::mem::take(k), v);
            }
            None => self.root = Some(v),
        }
    }
}

impl Sink for ValueSink {
    fn null(&mut self) {
        self.push(Value::Null)
    }
    fn bool(&mut self, v: bool) {
        self.push(Value::Bool(v))
    }
    fn i64(&mut self, v: i64) {
        if v.unsigned_abs() <= MAX_SAFE_INT {
            self.push(Value::from(v))
        } else {
            self.push(Value::String(v.to_string()))
        }
    }
    fn u64(&mut self, v: u64) {
        if v <= MAX_SAFE_INT {
            self.push(Value::from(v))
        } else {
            self.push(Value::String(v.to_string()))
        }
    }
    fn f64(&mut self, v: f64) {
        match Number::from_f64(v) {
            Some(n) => self.push(Value::Number(n)),
            None => self.push(Value::String(non_finite_name(v).to_owned())),
        }
    }
    fn str(&mut self, v: &str) {
        self.push(Value::String(v.to_owned()))
    }
    fn bytes(&mut self, v: &[u8]) {
        self.push(Value::Array(v.iter().map(|b| Value::from(*b)).collect()))
    }
    fn begin_array(&mut self, len: usize) {
        self.stack.push(Frame::Arr(Vec::with_capacity(len)))
    }
    fn end_array(&mut self) {
        if let Some(Frame::Arr(a)) = self.stack.pop() {
            self.push(Value::Array(a))
        }
    }
    fn begin_object(&mut self) {
        self.stack.push(Frame::Obj(Map::new(), String::new()))
    }
    fn key(&mut self, k: &str) {
        if let Some(Frame::Obj(_, key)) = self.stack.last_mut() {
            k.clone_into(key);
        }
    }
    fn end_object(&mut self) {
        if let Some(Frame::Obj(m, _)) = self.stack.pop() {
            self.push(Value::Object(m))
        }
    }
}

/// Writes compact JSON text.
pub(crate) struct TextSink {
    pub(crate) out: Vec<u8>,
    comma: bool,
}

/// "0," .. "255," as bytes, with their lengths.
static BYTE_TEXT: [([u8; 4], u8); 256] = {
    let mut t = [([0u8; 4], 0u8); 256];
    let mut i = 0;
    while i < 256 {
        let (h, te, o) = ((i / 100) as u8, ((i / 10) % 10) as u8, (i % 10) as u8);
        t[i] = if i >= 100 {
            ([b'0' + h, b'0' + te, b'0' + o, b','], 4)
        } else if i >= 10 {
            ([b'0' + te, b'0' + o, b',', 0], 3)
        } else {
            ([b'0' + o, b',', 0, 0], 2)
        };
        i += 1;
    }
    t
};

impl TextSink {
    pub(crate) fn new(capacity: usize) -> Self {
        TextSink {
            out: Vec::with_capacity(capacity),
            comma: false,
        }
    }

    #[inline]
    fn sep(&mut self) {
        if self.comma {
            self.out.push(b',');
        }
        self.comma = true;
    }

    fn raw_str(&mut self, s: &str) {
        self.out.push(b'"');
        let b = s.as_bytes();
        let mut start = 0;
        for (i, &c) in b.iter().enumerate() {
            let esc: &[u8] = match c {
                b'"' => b"\\\"",
                b'\\' => b"\\\\",
                b'\n' => b"\\n",
                b'\r' => b"\\r",
                b'\t' => b"\\t",
                0..=0x1f => b"",
                _ => continue,
            };
            self.out.extend_from_slice(&b[start..i]);
            if esc.is_empty() {
                self.out.extend_from_slice(format!("\\u{c:04x}").as_bytes());
            } else {
                self.out.extend_from_slice(esc);
            }
            start = i + 1;
        }
        self.out.extend_from_slice(&b[start..]);
        self.out.push(b'"');
    }
}

impl Sink for TextSink {
    fn null(&mut self) {
        self.sep();
        self.out.extend_from_slice(b"null");
    }
    fn bool(&mut self, v: bool) {
        self.sep();
        self.out
            .extend_from_slice(if v { b"true" } else { b"false" });
    }
    fn i64(&mut self, v: i64) {
        self.sep();
        if v.unsigned_abs() <= MAX_SAFE_INT {
            let _ = serde_json::to_writer(&mut self.out, &v);
        } else {
            self.out.push(b'"');
            let _ = serde_json::to_writer(&mut self.out, &v);
            self.out.push(b'"');
        }
    }
    fn u64(&mut self, v: u64) {
        self.sep();
        if v <= MAX_SAFE_INT {
            let _ = serde_json::to_writer(&mut self.out, &v);
        } else {
            self.out.push(b'"');
            let _ = serde_json::to_writer(&mut self.out, &v);
            self.out.push(b'"');
        }
    }
    fn f64(&mut self, v: f64) {
        if v.is_finite() {
            self.sep();
            let _ = serde_json::to_writer(&mut self.out, &v);
        } else {
            self.str(non_finite_name(v));
        }
    }
    fn str(&mut self, v: &str) {
        self.sep();
        self.raw_str(v);
    }
    fn bytes(&mut self, v: &[u8]) {
        self.sep();
        self.out.reserve(v.len() * 4 + 2);
        self.out.push(b'[');
        for &b in v {
            let (t, n) = &BYTE_TEXT[b as usize];
            self.out.extend_from_slice(&t[..*n as usize]);
        }
        if v.is_empty() {
            self.out.push(b']');
        } else if let Some(last) = self.out.last_mut() {
            *last = b']';
        }
    }
    fn begin_array(&mut self, _len: usize) {
        self.sep();
        self.out.push(b'[');
        self.comma = false;
    }
    fn end_array(&mut self) {
        self.out.push(b']');
        self.comma = true;
    }
    fn begin_object(&mut self) {
        self.sep();
        self.out.push(b'{');
        self.comma = false;
    }
    fn key(&mut self, k: &str) {
        self.sep();
        self.raw_str(k);
        self.out.push(b':');
        self.comma = false;
    }
    fn end_object(&mut self) {
        self.out.push(b'}');
        self.comma = true;
    }
}
