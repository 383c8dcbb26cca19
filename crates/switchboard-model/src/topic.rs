//! Topics and patterns: validated newtypes with MQTT's rules.
//!
//! A [`Topic`] is a `/`-separated UTF-8 path with no wildcard characters; a
//! [`Pattern`] is an MQTT topic filter (`+` matches one level, `#` matches the
//! rest and must be last). Both are cheap to clone (`Arc<str>`).

use std::fmt;
use std::sync::Arc;

use crate::ModelError;

/// The longest topic or pattern, in bytes (MQTT's limit).
pub const MAX_TOPIC_LEN: usize = 65_535;

/// A validated topic name: UTF-8, non-empty, no NUL, no `+` or `#`, at most
/// 65 535 bytes. Empty levels (`a//b`, `/a`) are allowed, as in MQTT.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Topic(Arc<str>);

impl Topic {
    /// Validates `s` as a topic name.
    pub fn new(s: &str) -> Result<Self, ModelError> {
        if s.is_empty() {
            return Err(ModelError::EmptyTopic);
        }
        if s.len() > MAX_TOPIC_LEN {
            return Err(ModelError::TopicTooLong(s.len()));
        }
        // One vectorised pass over the bytes (UTF-8 is guaranteed by `&str`).
        if let Some(i) = memchr::memchr3(0, b'+', b'#', s.as_bytes()) {
            return Err(if s.as_bytes()[i] == 0 {
                ModelError::NulInTopic
            } else {
                ModelError::WildcardInTopic(truncate(s))
            });
        }
        Ok(Topic(Arc::from(s)))
    }

    /// The topic as a string slice.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The topic's levels (split on `/`).
    pub fn levels(&self) -> std::str::Split<'_, char> {
        self.0.split('/')
    }

    /// The shared string behind this topic.
    pub fn as_arc(&self) -> &Arc<str> {
        &self.0
    }
}

impl fmt::Display for Topic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for Topic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Topic({:?})", &*self.0)
    }
}

impl std::str::FromStr for Topic {
    type Err = ModelError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Topic::new(s)
    }
}

/// Topics hash and compare as their text, so maps keyed by `Topic` can be
/// searched with a `&str`.
impl std::borrow::Borrow<str> for Topic {
    fn borrow(&self) -> &str {
        &self.0
    }
}

impl AsRef<str> for Topic {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

/// One level of a [`Pattern`].
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Level {
    /// A literal level that must be equal.
    Literal(Arc<str>),
    /// `+`: exactly one level.
    Single,
    /// `#`: this level and every one after it (also matches the parent).
    Multi,
}

/// A validated topic filter with MQTT syntax.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Pattern {
    text: Arc<str>,
    levels: Arc<[Level]>,
}

impl Pattern {
    /// Validates `s` as a topic filter: `+` and `#` must fill a whole level, `#`
    /// only as the last level.
    pub fn new(s: &str) -> Result<Self, ModelError> {
        validate_common(s)?;
        let mut levels = Vec::new();
        let mut iter = s.split('/').peekable();
        while let Some(level) = iter.next() {
            let l = match level {
                "+" => Level::Single,
                "#" => {
                    if iter.peek().is_some() {
                        return Err(ModelError::BadPattern {
                            pattern: truncate(s),
                            reason: "`#` must be the last level",
                        });
                    }
                    Level::Multi
                }
                other if other.contains(['+', '#']) => {
                    return Err(ModelError::BadPattern {
                        pattern: truncate(s),
                        reason: "`+` and `#` must occupy a whole level",
                    });
                }
                other => Level::Literal(Arc::from(other)),
            };
            levels.push(l);
        }
        Ok(Pattern {
            text: Arc::from(s),
            levels: levels.into(),
        })
    }

    /// The pattern as written.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// The parsed levels.
    pub fn levels(&self) -> &[Level] {
        &self.levels
    }

    /// How many wildcards (`+` and `#`) the pattern has; `{N}` in a template
    /// may refer to 1..=this.
    pub fn wildcard_count(&self) -> usize {
        self.levels
            .iter()
            .filter(|l| !matches!(l, Level::Literal(_)))
            .count()
    }

    /// Whether the pattern has no wildcard (it names exactly one topic).
    pub fn is_exact(&self) -> bool {
        self.wildcard_count() == 0
    }

    /// Whether `topic` matches this filter, by MQTT's rules (including: a filter
    /// starting with a wildcard does not match a topic starting with `$`).
    pub fn matches(&self, topic: &Topic) -> bool {
        self.captures(topic, |_, _| {})
    }

    /// Matches `topic` and calls `on_capture(index, text)` for each wildcard
    /// (1-based, in order), where `text` is the level matched by `+` or the
    /// remainder matched by `#` (possibly empty when `#` matched the parent).
    pub fn captures<'t>(
        &self,
        topic: &'t Topic,
        mut on_capture: impl FnMut(usize, &'t str),
    ) -> bool {
        let t = topic.as_str();
        if t.starts_with('$') && !matches!(self.levels.first(), Some(Level::Literal(_))) {
            return false;
        }
        let mut rest: Option<&'t str> = Some(t);
        let mut wildcard = 0;
        for level in self.levels.iter() {
            match level {
                Level::Multi => {
                    wildcard += 1;
                    on_capture(wildcard, rest.unwrap_or(""));
                    return true;
                }
                Level::Single | Level::Literal(_) => {
                    let Some(r) = rest else { return false };
                    let (head, tail) = match r.bytes().position(|b| b == b'/') {
                        Some(i) => (&r[..i], Some(&r[i + 1..])),
                        None => (r, None),
                    };
                    if let Level::Literal(lit) = level {
                        if **lit != *head {
                            return false;
                        }
                    } else {
                        wildcard += 1;
                        on_capture(wildcard, head);
                    }
                    rest = tail;
                }
            }
        }
        rest.is_none()
    }

    /// Whether some topic could match both patterns (used to intersect a
    /// subscription with access-control lists).
    pub fn overlaps(&self, other: &Pattern) -> bool {
        let (a, b) = (&self.levels, &other.levels);
        let mut i = 0;
        loop {
            match (a.get(i), b.get(i)) {
                (Some(Level::Multi), _) | (_, Some(Level::Multi)) => return true,
                (None, None) => return true,
                (None, Some(_)) | (Some(_), None) => return false,
                (Some(Level::Literal(x)), Some(Level::Literal(y))) if x != y => return false,
                _ => i += 1,
            }
        }
    }

    /// Whether every topic `other` matches is also matched by `self`.
    pub fn covers(&self, other: &Pattern) -> bool {
        let (a, b) = (&self.levels, &other.levels);
        let mut i = 0;
        loop {
            match (a.get(i), b.get(i)) {
                (Some(Level::Multi), _) => return true,
                (None, None) => return true,
                (Some(Level::Single), Some(Level::Single | Level::Literal(_))) => i += 1,
                (Some(Level::Literal(x)), Some(Level::Literal(y))) if x == y => i += 1,
                _ => return false,
            }
        }
    }
}

impl fmt::Display for Pattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl fmt::Debug for Pattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Pattern({:?})", &*self.text)
    }
}

impl std::str::FromStr for Pattern {
    type Err = ModelError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Pattern::new(s)
    }
}

fn validate_common(s: &str) -> Result<(), ModelError> {
    if s.is_empty() {
        return Err(ModelError::EmptyTopic);
    }
    if s.len() > MAX_TOPIC_LEN {
        return Err(ModelError::TopicTooLong(s.len()));
    }
    if s.contains('\0') {
        return Err(ModelError::NulInTopic);
    }
    Ok(())
}

/// Shortens a string for an error message (at most 200 bytes, on a char boundary).
pub(crate) fn truncate(s: &str) -> String {
    if s.len() <= 200 {
        return s.to_owned();
    }
    let mut end = 200;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}...", &s[..end])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> Topic {
        Topic::new(s).unwrap()
    }
    fn p(s: &str) -> Pattern {
        Pattern::new(s).unwrap()
    }

    #[test]
    fn topic_rules() {
        assert!(Topic::new("a/b/c").is_ok());
        assert!(Topic::new("a//b").is_ok());
        assert!(Topic::new("/a").is_ok());
        assert!(Topic::new("a/").is_ok());
        assert!(Topic::new("").is_err());
        assert!(Topic::new("a/+").is_err());
        assert!(Topic::new("a#").is_err());
        assert!(Topic::new("a\0b").is_err());
        assert!(Topic::new(&"x".repeat(65_535)).is_ok());
        assert!(Topic::new(&"x".repeat(65_536)).is_err());
    }

    #[test]
    fn pattern_rules() {
        for ok in ["#", "+", "a/+/c", "a/#", "+/+", "/+", "a//#", "$SYS/#"] {
            assert!(Pattern::new(ok).is_ok(), "{ok}");
        }
        for bad in ["", "a+", "#/x", "a/#/b", "a/b#", "+a/b", "a/++"] {
            assert!(Pattern::new(bad).is_err(), "{bad}");
        }
        assert_eq!(p("a/+/c/#").wildcard_count(), 2);
    }

    #[test]
    fn matching_table() {
        let cases = [
            ("sport/tennis/#", "sport/tennis", true),
            ("sport/tennis/#", "sport/tennis/player1/ranking", true),
            ("sport/#", "sport", true),
            ("#", "a/b", true),
            ("+", "a", true),
            ("+", "a/b", false),
            ("+/+", "/finance", true),
            ("/+", "/finance", true),
            ("+", "/finance", false),
            ("a/+/c", "a/b/c", true),
            ("a/+/c", "a//c", true),
            ("a/+/c", "a/b/d", false),
            ("a/b", "a/b/c", false),
            ("a/b/c", "a/b", false),
            ("#", "$SYS/x", false),
            ("+/x", "$SYS/x", false),
            ("$SYS/#", "$SYS/x", true),
        ];
        for (pat, topic, want) in cases {
            assert_eq!(p(pat).matches(&t(topic)), want, "{pat} vs {topic}");
        }
    }

    #[test]
    fn captures_levels() {
        let mut caps = Vec::new();
        assert!(p("a/+/c/#").captures(&t("a/x/c/d/e"), |i, s| caps.push((i, s.to_owned()))));
        assert_eq!(caps, vec![(1, "x".to_owned()), (2, "d/e".to_owned())]);
        caps.clear();
        assert!(p("a/#").captures(&t("a"), |i, s| caps.push((i, s.to_owned()))));
        assert_eq!(caps, vec![(1, String::new())]);
    }

    #[test]
    fn overlap_and_cover() {
        assert!(p("#").overlaps(&p("sensors/#")));
        assert!(p("sensors/+").overlaps(&p("+/temp")));
        assert!(!p("a/b").overlaps(&p("a/c")));
        assert!(!p("a/+").overlaps(&p("a/b/c")));
        assert!(p("sensors/#").covers(&p("sensors/+/t")));
        assert!(!p("sensors/+").covers(&p("sensors/#")));
        assert!(!p("sensors/#").covers(&p("#")));
    }
}
