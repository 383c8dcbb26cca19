//! The configuration file: TOML parsed with spans, so that every error names
//! the file, line, column and key. Adapter sections are handed, by kind, to
//! the adapter crates' own `Config` types (see `kinds.rs`); routes are compiled
//! by the router. Every error is collected, not only the first.

use std::fmt;
use std::net::SocketAddr;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::Deserialize;
use serde::de::IntoDeserializer;
use switchboard_model::units::{ConfigIssue, HumanDuration};
use switchboard_model::{Adapter, Format, Qos, validate_adapter_name};
use switchboard_router::{RouteError, RouteSpec, RouteTable};
use toml::Spanned;
use toml::de::{DeTable, DeValue};

use crate::kinds;

/// One configuration error, with where it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// The file, when the config came from one.
    pub file: Option<PathBuf>,
    /// 1-based line.
    pub line: usize,
    /// 1-based column.
    pub column: usize,
    /// The key path, e.g. `adapter.mqtt.listen` or `route[2].to[0]`.
    pub key: String,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let file = self
            .file
            .as_ref()
            .map_or_else(|| "<config>".to_owned(), |p| p.display().to_string());
        if self.key.is_empty() {
            write!(f, "{file}:{}:{}: {}", self.line, self.column, self.message)
        } else {
            write!(
                f,
                "{file}:{}:{}: {}: {}",
                self.line, self.column, self.key, self.message
            )
        }
    }
}

/// Every error found in a configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigErrors(pub Vec<ConfigError>);

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigErrors {}

/// `[bridge]`: settings of the bridge itself.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BridgeSettings {
    /// How long shutdown waits for queues to drain.
    #[serde(default = "default_shutdown_timeout")]
    pub shutdown_timeout: HumanDuration,
    /// Loop guard: routed hops after which a message is dropped.
    #[serde(default = "default_max_hops")]
    pub max_hops: u8,
    /// Capacity of each adapter's delivery queue.
    #[serde(default = "default_queue_capacity")]
    pub queue_capacity: usize,
    /// Capacity of the router's input channel.
    #[serde(default = "default_channel_capacity")]
    pub channel_capacity: usize,
    /// Addresses the last-value cache holds at most.
    #[serde(default = "default_max_topics")]
    pub max_topics: usize,
    /// Worker threads of the runtime the bridge binary starts (default: one
    /// per CPU core). Read by `examples/bridge`; an embedding application
    /// builds its own runtime (see [`crate::Bridge::worker_threads`]).
    #[serde(default)]
    pub worker_threads: Option<std::num::NonZeroUsize>,
}

fn default_shutdown_timeout() -> HumanDuration {
    HumanDuration(std::time::Duration::from_secs(5))
}
fn default_max_hops() -> u8 {
    switchboard_router::DEFAULT_MAX_HOPS
}
fn default_queue_capacity() -> usize {
    4096
}
fn default_channel_capacity() -> usize {
    4096
}
fn default_max_topics() -> usize {
    switchboard_model::DEFAULT_MAX_ENTRIES
}

impl Default for BridgeSettings {
    fn default() -> Self {
        BridgeSettings {
            shutdown_timeout: default_shutdown_timeout(),
            max_hops: default_max_hops(),
            queue_capacity: default_queue_capacity(),
            channel_capacity: default_channel_capacity(),
            max_topics: default_max_topics(),
            worker_threads: None,
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RouteSection {
    from: String,
    to: OneOrMany,
    format: Option<String>,
    qos: Option<u8>,
    retain: Option<bool>,
}

/// An adapter built from its section.
pub(crate) struct AdapterEntry {
    pub(crate) name: Arc<str>,
    pub(crate) kind: String,
    pub(crate) adapter: Box<dyn Adapter>,
}

/// A parsed, validated configuration.
pub(crate) struct Parsed {
    pub(crate) settings: BridgeSettings,
    pub(crate) adapters: Vec<AdapterEntry>,
    pub(crate) routes: Vec<RouteSpec>,
}

struct Ctx<'a> {
    src: &'a str,
    file: Option<&'a Path>,
    root: Option<&'a DeTable<'a>>,
    errors: Vec<ConfigError>,
}

impl Ctx<'_> {
    fn push(&mut self, span: Range<usize>, key: impl Into<String>, message: impl Into<String>) {
        let (line, column) = line_col(self.src, span.start);
        let mut key = key.into();
        if key.is_empty()
            && let Some(root) = self.root
        {
            key = key_path_at(root, span.start);
        }
        self.errors.push(ConfigError {
            file: self.file.map(Path::to_path_buf),
            line,
            column,
            key,
            message: message.into(),
        });
    }

    fn push_de(&mut self, e: &toml::de::Error, fallback: Range<usize>) {
        let span = e.span().unwrap_or(fallback);
        self.push(span, "", e.message().trim().to_owned());
    }
}

/// Parses and validates a configuration. `file` is used in error messages.
pub(crate) fn parse(src: &str, file: Option<&Path>) -> Result<Parsed, ConfigErrors> {
    let doc = match DeTable::parse(src) {
        Ok(d) => d,
        Err(e) => {
            let mut cx = Ctx {
                src,
                file,
                root: None,
                errors: Vec::new(),
            };
            cx.push_de(&e, 0..0);
            return Err(ConfigErrors(cx.errors));
        }
    };
    let root = doc.get_ref();
    let mut cx = Ctx {
        src,
        file,
        root: Some(root),
        errors: Vec::new(),
    };

    for (k, _) in root.iter() {
        if !matches!(k.get_ref().as_ref(), "bridge" | "adapter" | "route") {
            cx.push(
                k.span(),
                k.get_ref().to_string(),
                "unknown section (expected `bridge`, `adapter` or `route`)",
            );
        }
    }

    let settings = match root.get("bridge") {
        None => BridgeSettings::default(),
        Some(v) => match BridgeSettings::deserialize(v.clone().into_deserializer()) {
            Ok(s) => s,
            Err(e) => {
                cx.push_de(&e, v.span());
                BridgeSettings::default()
            }
        },
    };

    let shared = kinds::Shared {
        http_listens: http_listens(root),
        ..kinds::Shared::default()
    };
    let http_tokens = http_tokens(root);
    let mut adapters = Vec::new();
    let mut declared: Vec<Arc<str>> = Vec::new();
    let mut listens: Vec<(String, String, &'static str, SocketAddr, Range<usize>)> = Vec::new();
    let mut dest_checks: Vec<(Arc<str>, String, kinds::DestCheck)> = Vec::new();
    if let Some(section) = root.get("adapter") {
        match section.get_ref() {
            DeValue::Table(t) => {
                for (name_k, value) in t.iter() {
                    let name = name_k.get_ref().as_ref();
                    let key = format!("adapter.{name}");
                    if let Err(e) = validate_adapter_name(name) {
                        cx.push(name_k.span(), key.clone(), e.to_string());
                        continue;
                    }
                    declared.push(Arc::from(name));
                    let DeValue::Table(table) = value.get_ref() else {
                        cx.push(value.span(), key, "expected a table");
                        continue;
                    };
                    let mut table = table.clone();
                    let kind = match table.remove("kind") {
                        None => name.to_owned(),
                        Some(k) => match k.get_ref().as_str() {
                            Some(s) => s.to_owned(),
                            None => {
                                cx.push(k.span(), format!("{key}.kind"), "expected a string");
                                continue;
                            }
                        },
                    };
                    let span = value.span();
                    if kind == "ws" && table.get("token").is_none() {
                        // The WebSocket endpoint takes the HTTP adapter's tokens:
                        // the one on the same listener, else the first one.
                        let listen = table.get("listen").and_then(|l| l.get_ref().as_str());
                        let pick = http_tokens
                            .iter()
                            .find(|(l, _, _)| listen.is_some() && l.as_deref() == listen)
                            .or_else(|| http_tokens.first());
                        if let Some((_, key, tokens)) = pick {
                            table.insert(key.clone(), tokens.clone());
                        }
                    }
                    let sub = Spanned::new(span.clone(), DeValue::Table(table));
                    match kinds::build(&kind, name, sub, &shared) {
                        kinds::Outcome::UnknownKind => {
                            cx.push(
                                span,
                                format!("{key}.kind"),
                                format!(
                                    "unknown adapter kind `{kind}` (known: {}); set `kind` when the instance name is not a kind",
                                    kinds::KINDS.join(", ")
                                ),
                            );
                        }
                        kinds::Outcome::Invalid(e) => cx.push_de(&e, span),
                        kinds::Outcome::Built(mut b) => {
                            if let Some(c) = b.dest_check.take() {
                                dest_checks.push((Arc::from(name), kind.clone(), c));
                            }
                            for ConfigIssue { key: k, message } in b.issues {
                                let s = span_of(value, &k).unwrap_or_else(|| span.clone());
                                cx.push(s, format!("{key}.{k}"), message);
                            }
                            for (proto, addr) in b.listen {
                                listens.push((
                                    name.to_owned(),
                                    kind.clone(),
                                    proto,
                                    addr,
                                    span.clone(),
                                ));
                            }
                            adapters.push(AdapterEntry {
                                name: Arc::from(name),
                                kind,
                                adapter: b.adapter,
                            });
                        }
                    }
                }
            }
            _ => cx.push(
                section.span(),
                "adapter",
                "expected a table of adapter instances",
            ),
        }
    }

    // Two adapters on one socket, unless HTTP and WebSocket share a listener.
    for (i, a) in listens.iter().enumerate() {
        for b in &listens[..i] {
            let same = a.2 == b.2 && a.3 == b.3 && a.3.port() != 0;
            let shareable = a.2 == "tcp" && {
                let mut k = [a.1.as_str(), b.1.as_str()];
                k.sort_unstable();
                k == ["http", "ws"]
            };
            if same && !shareable {
                cx.push(
                    a.4.clone(),
                    format!("adapter.{}.listen", a.0),
                    format!("{} {} is also used by adapter `{}`", a.2, a.3, b.0),
                );
            }
        }
    }

    let mut routes = Vec::new();
    let mut route_spans: Vec<Spanned<DeValue>> = Vec::new();
    if let Some(section) = root.get("route") {
        match section.get_ref() {
            DeValue::Array(items) => {
                for (i, item) in items.iter().enumerate() {
                    route_spans.push(item.clone());
                    match RouteSection::deserialize(item.clone().into_deserializer()) {
                        Ok(r) => match route_spec(r) {
                            Ok(spec) => routes.push(spec),
                            Err((field, msg)) => {
                                let s = span_of(item, field).unwrap_or_else(|| item.span());
                                cx.push(s, format!("route[{i}].{field}"), msg);
                                routes.push(RouteSpec::new("*:#", ["*:{0}"]));
                            }
                        },
                        Err(e) => {
                            cx.push_de(&e, item.span());
                            routes.push(RouteSpec::new("*:#", ["*:{0}"]));
                        }
                    }
                }
            }
            _ => cx.push(section.span(), "route", "expected [[route]] entries"),
        }
    }
    // Routes are checked against every declared adapter, built or not, so an
    // adapter with a bad key does not make every route naming it an error too.
    if let Err(errs) = RouteTable::compile(&routes, &declared) {
        for e in errs {
            let (route, field) = match &e {
                RouteError::From { route, .. } => (*route, "from".to_owned()),
                RouteError::To { route, to, .. } => (*route, format!("to[{to}]")),
                RouteError::UnknownAdapter { route, field, .. } => (*route, field.clone()),
                RouteError::NoDestination { route } => (*route, "to".to_owned()),
            };
            let item = route_spans.get(route);
            let span = item
                .and_then(|it| span_of(it, &field).or_else(|| span_of(it, "to")))
                .or_else(|| item.map(Spanned::span))
                .unwrap_or(0..0);
            let msg = e.to_string();
            let msg = msg.split_once(": ").map_or(msg.as_str(), |(_, m)| m);
            let msg = msg
                .strip_prefix(&format!("{field}: "))
                .unwrap_or(msg)
                .to_owned();
            cx.push(span, format!("route[{route}].{field}"), msg);
        }
    }

    // Destinations the adapters can tell are unusable (a DDS topic with no
    // known type). Templated topics are only known at run time.
    for (i, r) in routes.iter().enumerate() {
        let from_kind = r
            .from
            .split_once(':')
            .and_then(|(a, _)| adapters.iter().find(|e| &*e.name == a))
            .map(|e| e.kind.as_str());
        for (j, to) in r.to.iter().enumerate() {
            let Some((adapter, topic)) = to.split_once(':') else {
                continue;
            };
            if topic.contains('{') {
                continue;
            }
            let Some((_, kind, check)) = dest_checks.iter().find(|(n, _, _)| &**n == adapter)
            else {
                continue;
            };
            if let Some(msg) = check(topic, from_kind == Some(kind.as_str())) {
                let field = format!("to[{j}]");
                let item = route_spans.get(i);
                let span = item
                    .and_then(|it| span_of(it, &field).or_else(|| span_of(it, "to")))
                    .or_else(|| item.map(Spanned::span))
                    .unwrap_or(0..0);
                cx.push(span, format!("route[{i}].{field}"), msg);
            }
        }
    }

    if cx.errors.is_empty() {
        Ok(Parsed {
            settings,
            adapters,
            routes,
        })
    } else {
        cx.errors.sort_by_key(|e| (e.line, e.column));
        Err(ConfigErrors(cx.errors))
    }
}

/// The tables of the adapters of kind `http`, in config order.
fn http_tables<'r, 'a>(root: &'r DeTable<'a>) -> Vec<&'r DeTable<'a>> {
    let Some(DeValue::Table(adapters)) = root.get("adapter").map(Spanned::get_ref) else {
        return Vec::new();
    };
    adapters
        .iter()
        .filter_map(|(name, v)| match v.get_ref() {
            DeValue::Table(t) => {
                let kind = t
                    .get("kind")
                    .and_then(|k| k.get_ref().as_str())
                    .unwrap_or(name.get_ref());
                (kind == "http").then_some(t)
            }
            _ => None,
        })
        .collect()
}

/// The `listen` addresses of the `http` adapters (default 127.0.0.1:8080).
fn http_listens(root: &DeTable<'_>) -> Vec<SocketAddr> {
    http_tables(root)
        .into_iter()
        .filter_map(|t| match t.get("listen").map(|l| l.get_ref().as_str()) {
            None => Some(SocketAddr::from(([127, 0, 0, 1], 8080))),
            Some(Some(s)) => s.parse().ok(),
            Some(None) => None,
        })
        .collect()
}

/// The `token` arrays of the `http` adapters: (listen, key, tokens).
#[allow(clippy::type_complexity)]
fn http_tokens<'a>(
    root: &DeTable<'a>,
) -> Vec<(
    Option<String>,
    Spanned<toml::de::DeString<'a>>,
    Spanned<DeValue<'a>>,
)> {
    http_tables(root)
        .into_iter()
        .filter_map(|t| {
            let (key, tokens) = t.get_key_value("token")?;
            let listen = t
                .get("listen")
                .and_then(|l| l.get_ref().as_str())
                .map(str::to_owned);
            Some((listen, key.clone(), tokens.clone()))
        })
        .collect()
}

fn route_spec(r: RouteSection) -> Result<RouteSpec, (&'static str, String)> {
    let format = match r.format.as_deref() {
        None => None,
        Some(f) => Some(Format::from_name(f).ok_or((
            "format",
            format!("unknown format `{f}` (json, cbor, text, octets, cdr)"),
        ))?),
    };
    let qos = match r.qos {
        None => None,
        Some(q) => Some(Qos::from_u8(q).ok_or(("qos", format!("qos must be 0, 1 or 2, not {q}")))?),
    };
    Ok(RouteSpec {
        from: r.from,
        to: match r.to {
            OneOrMany::One(s) => vec![s],
            OneOrMany::Many(v) => v,
        },
        format,
        qos,
        retain: r.retain,
    })
}

/// 1-based line and column (in characters) of a byte offset.
fn line_col(src: &str, offset: usize) -> (usize, usize) {
    let offset = offset.min(src.len());
    let before = src.get(..offset).unwrap_or(src);
    let line = before.matches('\n').count() + 1;
    let col = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, col)
}

/// The deepest key path whose key or value contains `offset` (searching the
/// whole tree: a `[table]` header's span does not cover its body).
fn key_path_at(root: &DeTable<'_>, offset: usize) -> String {
    let mut best = (0usize, String::new());
    search_table(root, offset, &mut String::new(), 0, &mut best);
    best.1
}

fn search_table(
    t: &DeTable<'_>,
    offset: usize,
    path: &mut String,
    depth: usize,
    best: &mut (usize, String),
) {
    for (k, v) in t.iter() {
        let len = path.len();
        if !path.is_empty() {
            path.push('.');
        }
        path.push_str(k.get_ref());
        if (k.span().contains(&offset) || v.span().contains(&offset)) && depth + 1 >= best.0 {
            *best = (depth + 1, path.clone());
        }
        search_value(v, offset, path, depth + 1, best);
        path.truncate(len);
    }
}

fn search_value(
    v: &Spanned<DeValue<'_>>,
    offset: usize,
    path: &mut String,
    depth: usize,
    best: &mut (usize, String),
) {
    match v.get_ref() {
        DeValue::Table(t) => search_table(t, offset, path, depth, best),
        DeValue::Array(a) => {
            for (i, item) in a.iter().enumerate() {
                let len = path.len();
                path.push_str(&format!("[{i}]"));
                if item.span().contains(&offset) && depth + 1 >= best.0 {
                    *best = (depth + 1, path.clone());
                }
                search_value(item, offset, path, depth + 1, best);
                path.truncate(len);
            }
        }
        _ => {}
    }
}

/// The span of `path` (`a.b[1].c`) below `v`, if it exists.
fn span_of(v: &Spanned<DeValue<'_>>, path: &str) -> Option<Range<usize>> {
    let mut cur = v;
    for seg in path.split('.').filter(|s| !s.is_empty()) {
        let (name, indexes) = match seg.find('[') {
            Some(i) => (&seg[..i], &seg[i..]),
            None => (seg, ""),
        };
        if !name.is_empty() {
            cur = match cur.get_ref() {
                DeValue::Table(t) => t.get(name)?,
                _ => return None,
            };
        }
        for idx in indexes.split('[').filter(|s| !s.is_empty()) {
            let n: usize = idx.trim_end_matches(']').parse().ok()?;
            cur = match cur.get_ref() {
                DeValue::Array(a) => a.get(n)?,
                _ => return None,
            };
        }
    }
    Some(cur.span())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn errors(src: &str) -> Vec<String> {
        match parse(src, Some(Path::new("t.toml"))) {
            Ok(_) => Vec::new(),
            Err(e) => e.0.iter().map(ToString::to_string).collect(),
        }
    }

    #[test]
    fn line_and_column() {
        assert_eq!(line_col("ab\ncd", 4), (2, 2));
        assert_eq!(line_col("", 0), (1, 1));
    }

    #[test]
    fn reports_all_errors_with_positions() {
        let src = r#"
[bridge]
shutdown_timeout = "5 parsecs"

[adapter.http]
listen = "127.0.0.1:0"
colour = "blue"

[[route]]
from = "http:a/+"
to = ["http:{2}"]

[[route]]
from = "nope:x"
to = "http:y"
qos = 7
"#;
        let e = errors(src);
        assert_eq!(e.len(), 4, "{e:#?}");
        assert!(
            e[0].starts_with("t.toml:3:20: bridge.shutdown_timeout: "),
            "{}",
            e[0]
        );
        assert!(
            e[1].starts_with("t.toml:7:1: adapter.http.colour: unknown field"),
            "{}",
            e[1]
        );
        assert!(
            e[2].contains("route[0].to[0]") && e[2].contains("wildcard 2"),
            "{}",
            e[2]
        );
        assert!(e[3].starts_with("t.toml:16:7: route[1].qos"), "{}", e[3]);
    }

    #[test]
    fn unknown_adapter_and_kind() {
        let e =
            errors("[adapter.foo]\nlisten='127.0.0.1:1'\n[[route]]\nfrom='bar:x'\nto=['foo:y']\n");
        assert!(
            e.iter().any(|e| e.contains("unknown adapter kind `foo`")),
            "{e:?}"
        );
        assert!(
            e.iter()
                .any(|e| e.contains("route[0].from") && e.contains("no adapter named `bar`")),
            "{e:?}"
        );
    }

    #[test]
    fn port_conflicts() {
        let e = errors(
            "[adapter.a]\nkind='http'\nlisten='127.0.0.1:9000'\n[adapter.b]\nkind='http'\nlisten='127.0.0.1:9000'\n",
        );
        assert!(
            e.iter().any(|e| e.contains("also used by adapter")),
            "{e:?}"
        );
    }

    #[test]
    fn syntax_error() {
        let e = errors("[bridge\n");
        assert_eq!(e.len(), 1);
        assert!(e[0].starts_with("t.toml:1:"), "{e:?}");
    }
}
