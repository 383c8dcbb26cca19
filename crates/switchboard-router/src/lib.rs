//! switchboard's routing core.
//!
//! Routes (`from` pattern -> `to` templates) are compiled into a
//! [`RouteTable`]: a trie over topic levels per source adapter ([`PatternIndex`])
//! and parsed [`Template`]s. The [`Router`] matches each message that entered
//! the bridge, expands the templates, applies the loop guard (never back to its
//! own address or one on its trace; a hop limit), converts the payload when a
//! route sets `format`, records each destination's last value in the
//! [`AddressBook`](switchboard_model::AddressBook), and queues a
//! [`Delivery`](switchboard_model::Delivery) per destination. [`run`] is the
//! async driver. The router knows no protocol.
//!
//! Routes apply to messages entering the bridge at an address (published by
//! an adapter's peer or through the library); a routed delivery does not
//! trigger further routes.
//!
//! ```
//! use std::sync::Arc;
//! use switchboard_model::{AddressBook, Message};
//! use switchboard_router::{Router, RouteSpec, SlotSpec};
//!
//! let slots = ["mqtt", "http"].map(|n| SlotSpec { name: n.into(), kind: n.into(), queue_capacity: 16 });
//! let routes = [RouteSpec::new("mqtt:sensors/+/temp", ["http:t/{1}"])];
//! let router = Router::new(slots.to_vec(), &routes, Arc::new(AddressBook::default()), 8).unwrap();
//! let mut out = Vec::new();
//! router.route(&Message::json("mqtt:sensors/kitchen/temp", "21.5")?, &mut out);
//! assert_eq!(out[0].1.message.topic.as_str(), "t/kitchen");
//! # Ok::<(), switchboard_model::ModelError>(())
//! ```

mod index;
mod info;
mod router;
mod run;
mod table;
mod template;

pub use index::PatternIndex;
pub use router::{DEFAULT_MAX_HOPS, Planned, Router, Slot, SlotSpec, Tables};
pub use run::run;
pub use table::{Route, RouteError, RouteSpec, RouteTable};
pub use template::{Captures, DestAdapter, Expansion, Template, TemplateError, TopicBuf};

/// Bodies of the cargo-fuzz targets in `fuzz/`, kept here so that a regular
/// test replays the checked-in corpus without the fuzzer.
#[doc(hidden)]
pub mod fuzzing {
    use switchboard_model::{Pattern, Topic};

    use crate::{PatternIndex, Template};

    /// Template parsing and expansion: first line a pattern, second a
    /// template, third a topic. Never panics; an expansion is a valid topic.
    pub fn template(data: &[u8]) {
        let Ok(s) = std::str::from_utf8(data) else {
            return;
        };
        let mut lines = s.splitn(3, '\n');
        let (Some(p), Some(t), Some(topic)) = (lines.next(), lines.next(), lines.next()) else {
            return;
        };
        let (Ok(from), Ok(topic)) = (Pattern::new(p), Topic::new(topic)) else {
            return;
        };
        if let Ok(tpl) = Template::parse(t, &from)
            && let Some(out) = tpl.expand(&from, &topic)
        {
            assert!(Topic::new(out.as_str()).is_ok());
        }
    }

    /// The pattern index against the reference matcher: every line but the
    /// last is a pattern, the last a topic.
    pub fn index(data: &[u8]) {
        let Ok(s) = std::str::from_utf8(data) else {
            return;
        };
        let lines: Vec<&str> = s.lines().collect();
        let Some((topic, pats)) = lines.split_last() else {
            return;
        };
        let Ok(topic) = Topic::new(topic) else {
            return;
        };
        let pats: Vec<Pattern> = pats
            .iter()
            .filter_map(|p| Pattern::new(p).ok())
            .take(64)
            .collect();
        let mut idx = PatternIndex::new();
        for (i, p) in pats.iter().enumerate() {
            idx.insert(p, i);
        }
        let mut got = idx.matches(&topic);
        got.sort_unstable();
        let want: Vec<usize> = pats
            .iter()
            .enumerate()
            .filter(|(_, p)| p.matches(&topic))
            .map(|(i, _)| i)
            .collect();
        assert_eq!(got, want);
    }
}
