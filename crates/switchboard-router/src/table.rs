//! Routes as configured ([`RouteSpec`]) and compiled into an immutable
//! [`RouteTable`]: patterns in a [`PatternIndex`], templates parsed, adapter
//! names resolved. A table is swapped as a whole (see `Router::swap_routes`).

use std::collections::HashMap;
use std::sync::Arc;

use switchboard_model::{AdapterSel, AddressPattern, Format, Interest, Qos, RouteCounters};

use crate::index::PatternIndex;
use crate::template::{DestAdapter, Template, TemplateError};

/// One `[[route]]` as written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteSpec {
    /// Source pattern, `ADAPTER:FILTER` or `*:FILTER`.
    pub from: String,
    /// Destination templates.
    pub to: Vec<String>,
    /// Convert payloads to this format at the destination.
    pub format: Option<Format>,
    /// QoS override.
    pub qos: Option<Qos>,
    /// Retain override.
    pub retain: Option<bool>,
}

impl RouteSpec {
    /// A route from `from` to `to` with no overrides.
    pub fn new(from: impl Into<String>, to: impl IntoIterator<Item = impl Into<String>>) -> Self {
        RouteSpec {
            from: from.into(),
            to: to.into_iter().map(Into::into).collect(),
            format: None,
            qos: None,
            retain: None,
        }
    }
}

/// What is wrong with a route.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RouteError {
    /// `from` does not parse.
    #[error("route {route}: from: {message}")]
    From {
        /// Route index.
        route: usize,
        /// Why.
        message: String,
    },
    /// `to[i]` does not parse or does not fit `from`.
    #[error("route {route}: to[{to}]: {source}")]
    To {
        /// Route index.
        route: usize,
        /// Destination index.
        to: usize,
        /// Why.
        source: TemplateError,
    },
    /// An adapter named in `from` or `to` does not exist.
    #[error("route {route}: {field}: no adapter named `{name}`")]
    UnknownAdapter {
        /// Route index.
        route: usize,
        /// `from` or `to[i]`.
        field: String,
        /// The name.
        name: String,
    },
    /// A route with no destination.
    #[error("route {route}: to: at least one destination is needed")]
    NoDestination {
        /// Route index.
        route: usize,
    },
}

/// A destination resolved against the adapters.
#[derive(Debug, Clone)]
pub(crate) enum Dest {
    AllButOrigin,
    Slot(usize),
}

/// One compiled route.
#[derive(Debug)]
pub struct Route {
    /// The spec it came from.
    pub spec: RouteSpec,
    /// Parsed source.
    pub from: AddressPattern,
    pub(crate) to: Vec<(Template, Dest)>,
    /// Whether some destination needs the wildcard captures (computed once).
    pub(crate) needs_captures: bool,
    /// Per destination: whether its topic template equals the previous
    /// destination's, so the expansion is reused.
    pub(crate) same_topic_as_prev: Vec<bool>,
    /// Counters.
    pub counters: Arc<RouteCounters>,
}

/// An immutable, compiled set of routes.
#[derive(Debug, Default)]
pub struct RouteTable {
    pub(crate) routes: Vec<Route>,
    /// Index of routes whose `from` names an adapter, per adapter slot.
    pub(crate) by_adapter: Vec<PatternIndex<u32>>,
    /// Index of routes with `from = "*:..."`.
    pub(crate) any: PatternIndex<u32>,
}

impl RouteTable {
    /// Compiles `specs` against the adapter instances `adapters` (by slot
    /// order). Every error is reported, not only the first.
    pub fn compile(
        specs: &[RouteSpec],
        adapters: &[Arc<str>],
    ) -> Result<RouteTable, Vec<RouteError>> {
        let slot_of: HashMap<&str, usize> = adapters
            .iter()
            .enumerate()
            .map(|(i, n)| (&**n, i))
            .collect();
        let mut errors = Vec::new();
        let mut table = RouteTable {
            routes: Vec::with_capacity(specs.len()),
            by_adapter: (0..adapters.len()).map(|_| PatternIndex::new()).collect(),
            any: PatternIndex::new(),
        };
        for (ri, spec) in specs.iter().enumerate() {
            let from = match AddressPattern::parse(&spec.from) {
                Ok(f) => f,
                Err(e) => {
                    errors.push(RouteError::From {
                        route: ri,
                        message: e.to_string(),
                    });
                    continue;
                }
            };
            let from_slot = match &from.adapter {
                AdapterSel::Any => None,
                AdapterSel::Named(n) => match slot_of.get(&**n) {
                    Some(s) => Some(*s),
                    None => {
                        errors.push(RouteError::UnknownAdapter {
                            route: ri,
                            field: "from".into(),
                            name: n.to_string(),
                        });
                        None
                    }
                },
            };
            if spec.to.is_empty() {
                errors.push(RouteError::NoDestination { route: ri });
            }
            let mut to = Vec::new();
            for (ti, t) in spec.to.iter().enumerate() {
                match Template::parse(t, &from.filter) {
                    Ok(tpl) => {
                        let dest = match &tpl.adapter {
                            DestAdapter::AllButOrigin => Some(Dest::AllButOrigin),
                            DestAdapter::Named(n) => match slot_of.get(&**n) {
                                Some(s) => Some(Dest::Slot(*s)),
                                None => {
                                    errors.push(RouteError::UnknownAdapter {
                                        route: ri,
                                        field: format!("to[{ti}]"),
                                        name: n.to_string(),
                                    });
                                    None
                                }
                            },
                        };
                        if let Some(d) = dest {
                            to.push((tpl, d));
                        }
                    }
                    Err(source) => errors.push(RouteError::To {
                        route: ri,
                        to: ti,
                        source,
                    }),
                }
            }
            let id = table.routes.len() as u32;
            match (&from.adapter, from_slot) {
                (AdapterSel::Any, _) => table.any.insert(&from.filter, id),
                (AdapterSel::Named(_), Some(s)) => table.by_adapter[s].insert(&from.filter, id),
                (AdapterSel::Named(_), None) => {}
            }
            let needs_captures = to.iter().any(|(t, _)| t.needs_captures());
            let same_topic_as_prev = (0..to.len())
                .map(|i| i > 0 && to[i].0.same_topic(&to[i - 1].0))
                .collect();
            table.routes.push(Route {
                spec: spec.clone(),
                from,
                to,
                needs_captures,
                same_topic_as_prev,
                counters: Arc::new(RouteCounters::default()),
            });
        }
        if errors.is_empty() {
            Ok(table)
        } else {
            Err(errors)
        }
    }

    /// The compiled routes, in configuration order.
    pub fn routes(&self) -> &[Route] {
        &self.routes
    }

    /// The subscriptions the routes need from the adapter named `name`: every
    /// `from` filter that admits it, at the highest QoS asked (routes without a
    /// `qos` ask for at-least-once, so nothing is lost by default).
    pub fn interest_of(&self, name: &str) -> Arc<[Interest]> {
        let mut out: Vec<Interest> = Vec::new();
        for r in &self.routes {
            if !r.from.adapter.admits(name) {
                continue;
            }
            let qos = r.spec.qos.unwrap_or(Qos::AtLeastOnce);
            match out.iter_mut().find(|i| i.filter == r.from.filter) {
                Some(i) => i.qos = i.qos.max(qos),
                None => out.push(Interest {
                    filter: r.from.filter.clone(),
                    qos,
                }),
            }
        }
        // A filter covered by another one adds nothing (its QoS moves up to
        // the filter that covers it).
        let mut keep = vec![true; out.len()];
        for i in 0..out.len() {
            let coverer = (0..out.len()).find(|&j| {
                j != i
                    && keep[j]
                    && out[j].filter.covers(&out[i].filter)
                    && !out[i].filter.covers(&out[j].filter)
            });
            if let Some(j) = coverer {
                keep[i] = false;
                out[j].qos = out[j].qos.max(out[i].qos);
            }
        }
        let mut k = keep.into_iter();
        out.retain(|_| k.next().unwrap_or(true));
        out.into()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn names(n: &[&str]) -> Vec<Arc<str>> {
        n.iter().map(|s| Arc::from(*s)).collect()
    }

    #[test]
    fn reports_every_error() {
        let specs = vec![
            RouteSpec::new("mqtt:a/+", ["http:{2}"]),
            RouteSpec::new("nope:a", ["http:a"]),
            RouteSpec::new("mqtt:a#", ["http:a"]),
            RouteSpec::new("mqtt:a", ["zzz:a", "http:b"]),
            RouteSpec::new("mqtt:a", Vec::<String>::new()),
        ];
        let errs = RouteTable::compile(&specs, &names(&["mqtt", "http"])).unwrap_err();
        assert_eq!(errs.len(), 5, "{errs:?}");
    }

    #[test]
    fn interest() {
        let mut s = vec![
            RouteSpec::new("mqtt:a/#", ["http:{0}"]),
            RouteSpec::new("mqtt:a/b", ["http:{0}"]),
            RouteSpec::new("*:c", ["http:{0}"]),
            RouteSpec::new("http:x", ["mqtt:{0}"]),
        ];
        s[1].qos = Some(Qos::ExactlyOnce);
        let t = RouteTable::compile(&s, &names(&["mqtt", "http"])).unwrap();
        let i = t.interest_of("mqtt");
        let f: Vec<&str> = i.iter().map(|i| i.filter.as_str()).collect();
        assert_eq!(f, vec!["a/#", "c"]);
        assert_eq!(i[0].qos, Qos::ExactlyOnce);
    }
}
