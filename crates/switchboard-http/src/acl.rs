//! Access control shared by REST, SSE and WebSocket: `[[adapter.http.token]]`
//! entries, each with `read` and `write` pattern lists. With no token
//! configured everything is open. With tokens, a request without a known token
//! gets 401, and a topic outside the token's lists 403. A subscription pattern
//! is refused when it can match no readable topic, and otherwise accepted and
//! filtered so that only readable topics are delivered.

use serde::Deserialize;
use switchboard_model::units::{ConfigIssue, Secret};
use switchboard_model::{Pattern, Topic};

/// One `[[adapter.http.token]]` entry.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokenConfig {
    /// The bearer token (never logged).
    pub token: Secret,
    /// Patterns the token may read (GET, SSE, WebSocket `sub`).
    #[serde(default)]
    pub read: Vec<String>,
    /// Patterns the token may write (PUT/POST, WebSocket `pub`).
    #[serde(default)]
    pub write: Vec<String>,
}

#[derive(Debug, Clone)]
struct Entry {
    token: Secret,
    read: Vec<Pattern>,
    write: Vec<Pattern>,
}

/// The compiled access-control lists.
#[derive(Debug, Clone, Default)]
pub struct Acl {
    entries: Vec<Entry>,
}

/// Who a request is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// No tokens configured: everything allowed.
    Open,
    /// Authenticated as token entry `n`.
    Token(usize),
}

/// Why access was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Denied {
    /// No token, or an unknown one (HTTP 401).
    Unauthenticated,
    /// The token does not cover the topic (HTTP 403).
    Forbidden(String),
}

/// What a subscription may deliver.
#[derive(Debug, Clone)]
pub struct ReadFilter {
    read: Option<Vec<Pattern>>,
}

impl ReadFilter {
    /// Whether `topic` may be delivered.
    pub fn allows(&self, topic: &Topic) -> bool {
        self.read
            .as_ref()
            .is_none_or(|r| r.iter().any(|p| p.matches(topic)))
    }
}

impl Acl {
    /// Compiles the token entries; bad patterns are reported as issues with
    /// their key (`token[0].read[1]`).
    pub fn compile(tokens: &[TokenConfig]) -> (Acl, Vec<ConfigIssue>) {
        let mut issues = Vec::new();
        let mut entries = Vec::new();
        for (i, t) in tokens.iter().enumerate() {
            if t.token.expose().is_empty() {
                issues.push(ConfigIssue::new(
                    format!("token[{i}].token"),
                    "must not be empty",
                ));
            }
            let mut parse = |list: &[String], what: &str| -> Vec<Pattern> {
                list.iter()
                    .enumerate()
                    .filter_map(|(j, p)| match Pattern::new(p) {
                        Ok(p) => Some(p),
                        Err(e) => {
                            issues.push(ConfigIssue::new(
                                format!("token[{i}].{what}[{j}]"),
                                e.to_string(),
                            ));
                            None
                        }
                    })
                    .collect()
            };
            let read = parse(&t.read, "read");
            let write = parse(&t.write, "write");
            entries.push(Entry {
                token: t.token.clone(),
                read,
                write,
            });
        }
        (Acl { entries }, issues)
    }

    /// Whether any token is configured.
    pub fn is_open(&self) -> bool {
        self.entries.is_empty()
    }

    /// Authenticates a presented token (compared in constant time with each
    /// configured one; every entry is compared, whatever matches).
    pub fn authenticate(&self, presented: Option<&str>) -> Result<Access, Denied> {
        if self.entries.is_empty() {
            return Ok(Access::Open);
        }
        let Some(p) = presented else {
            return Err(Denied::Unauthenticated);
        };
        let mut found = None;
        for (i, e) in self.entries.iter().enumerate() {
            if e.token.ct_eq(p.as_bytes()) && found.is_none() {
                found = Some(i);
            }
        }
        found.map(Access::Token).ok_or(Denied::Unauthenticated)
    }

    /// May `access` read `topic`?
    pub fn can_read(&self, access: Access, topic: &Topic) -> Result<(), Denied> {
        self.check(access, topic, |e| &e.read, "read")
    }

    /// May `access` write `topic`?
    pub fn can_write(&self, access: Access, topic: &Topic) -> Result<(), Denied> {
        self.check(access, topic, |e| &e.write, "write")
    }

    fn check(
        &self,
        access: Access,
        topic: &Topic,
        list: fn(&Entry) -> &Vec<Pattern>,
        what: &str,
    ) -> Result<(), Denied> {
        match access {
            Access::Open => Ok(()),
            Access::Token(i) => {
                let ok = self
                    .entries
                    .get(i)
                    .is_some_and(|e| list(e).iter().any(|p| p.matches(topic)));
                if ok {
                    Ok(())
                } else {
                    Err(Denied::Forbidden(format!(
                        "the token may not {what} {topic}"
                    )))
                }
            }
        }
    }

    /// A subscription to `pattern`: refused when it can match no readable
    /// topic; otherwise a filter of what it may deliver.
    pub fn subscribe(&self, access: Access, pattern: &Pattern) -> Result<ReadFilter, Denied> {
        match access {
            Access::Open => Ok(ReadFilter { read: None }),
            Access::Token(i) => {
                let read = self
                    .entries
                    .get(i)
                    .map(|e| e.read.clone())
                    .unwrap_or_default();
                if read.iter().any(|r| r.overlaps(pattern)) {
                    Ok(ReadFilter { read: Some(read) })
                } else {
                    Err(Denied::Forbidden(format!(
                        "the token may read no topic matching {pattern}"
                    )))
                }
            }
        }
    }
}

/// The token of a request: `Authorization: Bearer T` first, else `?token=T`.
pub fn presented_token(headers: &http::HeaderMap, query: Option<&str>) -> Option<String> {
    if let Some(v) = headers
        .get(http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        && let Some(t) = v
            .strip_prefix("Bearer ")
            .or_else(|| v.strip_prefix("bearer "))
    {
        return Some(t.trim().to_owned());
    }
    crate::mapping::query_values(query, "token")
        .ok()
        .and_then(|mut v| v.pop())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn acl() -> Acl {
        let (a, issues) = Acl::compile(&[TokenConfig {
            token: Secret::new("s3cret"),
            read: vec!["sensors/#".into()],
            write: vec!["commands/#".into()],
        }]);
        assert!(issues.is_empty());
        a
    }

    fn t(s: &str) -> Topic {
        Topic::new(s).unwrap()
    }

    #[test]
    fn tokens() {
        let a = acl();
        assert_eq!(a.authenticate(None), Err(Denied::Unauthenticated));
        assert_eq!(a.authenticate(Some("nope")), Err(Denied::Unauthenticated));
        let me = a.authenticate(Some("s3cret")).unwrap();
        assert!(a.can_read(me, &t("sensors/a")).is_ok());
        assert!(a.can_read(me, &t("commands/a")).is_err());
        assert!(a.can_write(me, &t("commands/a")).is_ok());
        assert!(a.can_write(me, &t("sensors/a")).is_err());
        let f = a.subscribe(me, &Pattern::new("#").unwrap()).unwrap();
        assert!(f.allows(&t("sensors/x")) && !f.allows(&t("other")));
        assert!(
            a.subscribe(me, &Pattern::new("commands/#").unwrap())
                .is_err()
        );
        assert_eq!(Acl::default().authenticate(None), Ok(Access::Open));
    }

    #[test]
    fn bad_patterns_are_issues() {
        let (_, issues) = Acl::compile(&[TokenConfig {
            token: Secret::new(""),
            read: vec!["a/#/b".into()],
            write: vec![],
        }]);
        let keys: Vec<&str> = issues.iter().map(|i| i.key.as_str()).collect();
        assert_eq!(keys, vec!["token[0].token", "token[0].read[0]"]);
    }

    #[test]
    fn header_or_query() {
        let mut h = http::HeaderMap::new();
        assert_eq!(presented_token(&h, Some("token=abc")), Some("abc".into()));
        h.insert(
            http::header::AUTHORIZATION,
            http::HeaderValue::from_static("Bearer xyz"),
        );
        assert_eq!(presented_token(&h, Some("token=abc")), Some("xyz".into()));
    }
}
