//! Destination templates: `ADAPTER:TOPIC` where TOPIC may hold `{0}` (the whole
//! source topic) and `{N}` (the levels matched by the N-th wildcard of the
//! route's `from`), and ADAPTER may be `*` (every adapter but the origin).

use std::fmt;
use std::sync::Arc;

use switchboard_model::{Level, MAX_TOPIC_LEN, Pattern, Topic, validate_adapter_name};

/// A template that does not parse or does not fit its route.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TemplateError {
    /// No `ADAPTER:` prefix.
    #[error("`{0}` has no `ADAPTER:` prefix")]
    MissingAdapter(String),
    /// Bad adapter name.
    #[error("bad adapter name `{0}`")]
    BadAdapter(String),
    /// An unclosed or malformed `{...}`.
    #[error("malformed placeholder in `{0}` (use {{0}} or {{N}})")]
    Placeholder(String),
    /// `{N}` beyond the wildcards of `from`.
    #[error("`{{{index}}}` refers to wildcard {index} but `from` has only {count}")]
    NoSuchWildcard {
        /// The N.
        index: usize,
        /// Wildcards in `from`.
        count: usize,
    },
    /// Wildcards in a destination.
    #[error("destination `{0}` contains a wildcard (+ or #)")]
    Wildcard(String),
    /// Empty topic template.
    #[error("empty destination topic")]
    Empty,
    /// A NUL character in a destination.
    #[error("destination `{0}` contains a NUL character")]
    Nul(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Part {
    Literal(Box<str>),
    Capture(usize),
}

/// Which adapters a template delivers to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DestAdapter {
    /// Every adapter except the message's origin.
    AllButOrigin,
    /// One adapter instance.
    Named(Arc<str>),
}

/// A parsed destination template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template {
    /// The adapter part.
    pub adapter: DestAdapter,
    parts: Vec<Part>,
    text: Arc<str>,
    /// The topic, when the template has no placeholder.
    fixed: Option<Topic>,
    /// The topic part is exactly `{0}`.
    identity: bool,
    /// Some `{N}` with N > 0.
    captures: bool,
}

impl fmt::Display for Template {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl Template {
    /// Parses `ADAPTER:TOPIC-TEMPLATE` and checks every `{N}` against the
    /// wildcards of `from`.
    pub fn parse(s: &str, from: &Pattern) -> Result<Template, TemplateError> {
        let (adapter, topic) = s
            .split_once(':')
            .ok_or_else(|| TemplateError::MissingAdapter(s.to_owned()))?;
        let adapter = if adapter == "*" {
            DestAdapter::AllButOrigin
        } else {
            validate_adapter_name(adapter)
                .map_err(|_| TemplateError::BadAdapter(adapter.to_owned()))?;
            DestAdapter::Named(Arc::from(adapter))
        };
        if topic.is_empty() {
            return Err(TemplateError::Empty);
        }
        let count = from.wildcard_count();
        let mut parts = Vec::new();
        let mut lit = String::new();
        let mut chars = topic.char_indices().peekable();
        while let Some((_, c)) = chars.next() {
            match c {
                '{' => {
                    let mut num = String::new();
                    let mut closed = false;
                    for (_, d) in chars.by_ref() {
                        if d == '}' {
                            closed = true;
                            break;
                        }
                        num.push(d);
                    }
                    let index: usize = match (closed, num.parse()) {
                        (true, Ok(n))
                            if num.len() <= 3 && num.bytes().all(|b| b.is_ascii_digit()) =>
                        {
                            n
                        }
                        _ => return Err(TemplateError::Placeholder(s.to_owned())),
                    };
                    if index > count {
                        return Err(TemplateError::NoSuchWildcard { index, count });
                    }
                    if !lit.is_empty() {
                        parts.push(Part::Literal(std::mem::take(&mut lit).into()));
                    }
                    parts.push(Part::Capture(index));
                }
                '}' => return Err(TemplateError::Placeholder(s.to_owned())),
                '+' | '#' => return Err(TemplateError::Wildcard(s.to_owned())),
                '\0' => return Err(TemplateError::Nul(s.to_owned())),
                c => lit.push(c),
            }
        }
        if !lit.is_empty() {
            parts.push(Part::Literal(lit.into()));
        }
        let fixed = match parts.as_slice() {
            [Part::Literal(l)] => {
                Some(Topic::new(l).map_err(|_| TemplateError::Wildcard(s.to_owned()))?)
            }
            _ => None,
        };
        let identity = parts == [Part::Capture(0)];
        let captures = parts
            .iter()
            .any(|p| matches!(p, Part::Capture(n) if *n > 0));
        Ok(Template {
            adapter,
            parts,
            text: Arc::from(s),
            fixed,
            identity,
            captures,
        })
    }

    /// Whether the topic part is exactly `{0}` (the source topic, reused as is).
    pub fn is_identity(&self) -> bool {
        self.identity
    }

    /// Whether two templates expand to the same topic (their adapter parts
    /// may differ).
    pub fn same_topic(&self, other: &Template) -> bool {
        self.parts == other.parts
    }

    /// Whether expanding needs the levels captured by `from`'s wildcards.
    pub fn needs_captures(&self) -> bool {
        self.captures
    }

    /// Expands the topic part for `topic` matched by `from`. Returns `None`
    /// when the result is not a valid topic (e.g. empty). The source topic is
    /// reused without allocation for `{0}`, and a template without
    /// placeholders is a topic built once at parse time.
    pub fn expand(&self, from: &Pattern, topic: &Topic) -> Option<Topic> {
        if self.is_identity() {
            return Some(topic.clone());
        }
        if let Some(t) = &self.fixed {
            return Some(t.clone());
        }
        let caps = if self.needs_captures() {
            Captures::of(from, topic)?
        } else {
            Captures::default()
        };
        self.expand_with(&caps, topic)
    }

    /// Expands with captures already taken (one [`Captures`] serves every
    /// destination of a route).
    pub fn expand_with(&self, caps: &Captures<'_>, topic: &Topic) -> Option<Topic> {
        let mut buf = None;
        match self.expand_into(caps, topic, &mut buf)? {
            Expansion::Topic(t) => Some(t),
            Expansion::Text(s) => Topic::new(s).ok(),
        }
    }

    /// Expands into `buf` (made on first use) without allocating (unless the
    /// result is longer than [`TopicBuf`]'s stack space): the caller turns the text into a
    /// [`Topic`] only when it has none for it yet (the router borrows the one
    /// the address book holds). The text is a valid topic name: literals
    /// were checked at parse time and captures are levels of a valid topic;
    /// `None` when it is empty or too long.
    pub fn expand_into<'b>(
        &self,
        caps: &Captures<'_>,
        topic: &Topic,
        buf: &'b mut Option<TopicBuf>,
    ) -> Option<Expansion<'b>> {
        if self.is_identity() {
            return Some(Expansion::Topic(topic.clone()));
        }
        if let Some(t) = &self.fixed {
            return Some(Expansion::Topic(t.clone()));
        }
        let piece = |p: &Part| -> usize {
            match p {
                Part::Literal(l) => l.len(),
                Part::Capture(0) => topic.as_str().len(),
                Part::Capture(n) => caps.get(*n).len(),
            }
        };
        let len: usize = self.parts.iter().map(piece).sum();
        if len == 0 || len > MAX_TOPIC_LEN {
            return None;
        }
        let buf = buf.get_or_insert_with(TopicBuf::default);
        let text = if len <= STACK_TOPIC {
            let mut at = 0;
            for p in &self.parts {
                let s = match p {
                    Part::Literal(l) => l.as_bytes(),
                    Part::Capture(0) => topic.as_str().as_bytes(),
                    Part::Capture(n) => caps.get(*n).as_bytes(),
                };
                buf.stack[at..at + s.len()].copy_from_slice(s);
                at += s.len();
            }
            // Concatenated `&str`s are UTF-8.
            std::str::from_utf8(&buf.stack[..at]).ok()?
        } else {
            buf.heap.clear();
            for p in &self.parts {
                buf.heap.push_str(match p {
                    Part::Literal(l) => l,
                    Part::Capture(0) => topic.as_str(),
                    Part::Capture(n) => caps.get(*n),
                });
            }
            buf.heap.as_str()
        };
        Some(Expansion::Text(text))
    }
}

/// A destination topic as [`Template::expand_into`] made it.
#[derive(Debug)]
pub enum Expansion<'b> {
    /// A topic already (`{0}`, or a template without placeholders).
    Topic(Topic),
    /// Text assembled in the caller's buffer; a valid topic name.
    Text(&'b str),
}

impl Expansion<'_> {
    /// The topic's text.
    pub fn as_str(&self) -> &str {
        match self {
            Expansion::Topic(t) => t.as_str(),
            Expansion::Text(s) => s,
        }
    }
}

/// Scratch space for [`Template::expand_into`].
#[derive(Debug)]
pub struct TopicBuf {
    stack: [u8; STACK_TOPIC],
    heap: String,
}

impl Default for TopicBuf {
    fn default() -> Self {
        TopicBuf {
            stack: [0; STACK_TOPIC],
            heap: String::new(),
        }
    }
}

/// Expanded topics up to this many bytes are assembled without a heap buffer.
const STACK_TOPIC: usize = 192;

/// Captures held without allocating (index 0 unused: captures are 1-based).
const INLINE_CAPTURES: usize = 5;

/// The levels a pattern's wildcards matched in one topic (1-based).
#[derive(Debug, Default, Clone)]
pub struct Captures<'t> {
    inline: [&'t str; INLINE_CAPTURES],
    more: Vec<&'t str>,
}

impl<'t> Captures<'t> {
    /// Matches `topic` against `from`; `None` when it does not match.
    pub fn of(from: &Pattern, topic: &'t Topic) -> Option<Captures<'t>> {
        let mut c = Captures::default();
        let ok = from.captures(topic, |i, s| c.set(i, s));
        ok.then_some(c)
    }

    /// The captures of a topic already known to match `from` (the index
    /// found it): the wildcard levels are picked out without comparing the
    /// literal ones again. `None` when the topic has too few levels.
    pub fn of_matched(from: &Pattern, topic: &'t Topic) -> Option<Captures<'t>> {
        let mut c = Captures::default();
        let mut rest = Some(topic.as_str());
        let mut n = 0;
        for level in from.levels() {
            if matches!(level, Level::Multi) {
                // `a/#` also matches `a`: `#` then captured nothing.
                c.set(n + 1, rest.unwrap_or(""));
                return Some(c);
            }
            let r = rest?;
            match level {
                // Matched already: skip it (and its `/`) by its length.
                Level::Literal(l) => rest = r.get(l.len() + 1..),
                _ => {
                    let (head, tail) = match r.bytes().position(|b| b == b'/') {
                        Some(i) => (&r[..i], Some(&r[i + 1..])),
                        None => (r, None),
                    };
                    n += 1;
                    c.set(n, head);
                    rest = tail;
                }
            }
        }
        Some(c)
    }

    fn set(&mut self, i: usize, s: &'t str) {
        if i < INLINE_CAPTURES {
            self.inline[i] = s;
        } else {
            let k = i - INLINE_CAPTURES;
            if self.more.len() <= k {
                self.more.resize(k + 1, "");
            }
            self.more[k] = s;
        }
    }

    /// The N-th capture (empty when absent).
    pub fn get(&self, n: usize) -> &'t str {
        if n < INLINE_CAPTURES {
            self.inline[n]
        } else {
            self.more.get(n - INLINE_CAPTURES).copied().unwrap_or("")
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn exp(tpl: &str, from: &str, topic: &str) -> Option<String> {
        let from = Pattern::new(from).unwrap();
        let t = Template::parse(tpl, &from).unwrap();
        t.expand(&from, &Topic::new(topic).unwrap())
            .map(|t| t.to_string())
    }

    #[test]
    fn expansion() {
        assert_eq!(exp("ws:{0}", "#", "a/b").as_deref(), Some("a/b"));
        assert_eq!(
            exp(
                "ws:sensors/{1}/t",
                "sensors/+/temperature",
                "sensors/k/temperature"
            )
            .as_deref(),
            Some("sensors/k/t")
        );
        assert_eq!(exp("x:{2}/{1}", "+/#", "a/b/c").as_deref(), Some("b/c/a"));
        assert_eq!(exp("x:p/{1}", "a/#", "a").as_deref(), Some("p/"));
        assert_eq!(exp("x:{1}", "a/#", "a"), None);
        assert_eq!(
            exp(
                "dds:SensorTemperature",
                "sensors/+/temperature",
                "sensors/k/temperature"
            )
            .as_deref(),
            Some("SensorTemperature")
        );
    }

    #[test]
    fn errors() {
        let from = Pattern::new("a/+").unwrap();
        assert!(matches!(
            Template::parse("x:{2}", &from),
            Err(TemplateError::NoSuchWildcard { index: 2, count: 1 })
        ));
        assert!(matches!(
            Template::parse("x:{1", &from),
            Err(TemplateError::Placeholder(_))
        ));
        assert!(matches!(
            Template::parse("x:{a}", &from),
            Err(TemplateError::Placeholder(_))
        ));
        assert!(matches!(
            Template::parse("x:a}", &from),
            Err(TemplateError::Placeholder(_))
        ));
        assert!(matches!(
            Template::parse("x:a/#", &from),
            Err(TemplateError::Wildcard(_))
        ));
        assert!(matches!(
            Template::parse("nocolon", &from),
            Err(TemplateError::MissingAdapter(_))
        ));
        assert!(matches!(
            Template::parse("x:", &from),
            Err(TemplateError::Empty)
        ));
        assert!(matches!(
            Template::parse("x:a\0b/{1}", &from),
            Err(TemplateError::Nul(_))
        ));
        assert_eq!(
            Template::parse("*:{0}", &from).unwrap().adapter,
            DestAdapter::AllButOrigin
        );
    }
}
