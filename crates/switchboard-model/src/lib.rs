//! The message model shared by every switchboard crate.
//!
//! A [`Message`] has a [`Topic`], a `bytes::Bytes` payload (cloned by reference
//! count, never copied on fan-out), a [`Format`], a [`Qos`], a retain flag, an
//! [`Origin`], timestamps, [`Properties`] and a loop-guard [`Trace`]. An
//! [`Address`] is `ADAPTER:TOPIC`; an [`AddressPattern`] is `ADAPTER:FILTER`
//! with MQTT filter syntax, where ADAPTER may be `*`.
//!
//! Adapters implement [`Adapter`] and depend on this crate only.
//!
//! ```
//! use switchboard_model::{AddressPattern, Message};
//!
//! let msg = Message::json("mqtt:sensors/kitchen/temp", r#"{"c":21.5}"#)?;
//! let pattern = AddressPattern::parse("*:sensors/+/temp")?;
//! assert!(pattern.matches(&msg.address()));
//! # Ok::<(), switchboard_model::ModelError>(())
//! ```

mod adapter;
mod address;
mod book;
mod format;
mod message;
mod metrics;
mod queue;
#[cfg(feature = "tls")]
pub mod tls;
mod topic;
pub mod units;

pub use adapter::{
    Adapter, AdapterContext, AdapterError, AdapterInfo, BoxFuture, BridgeInfo, Dispatch, Endpoint,
    Ingress, IngressError, Interest, NoBridgeInfo, RouteInfo, Running, StandaloneHarness, Stopped,
    Waiting,
};
pub use address::{AdapterSel, Address, AddressPattern, validate_adapter_name};
pub use book::{
    AddressBook, DEFAULT_MAX_ENTRIES, DeferDrops, Entry, INSTANCE_KEY, INSTANCE_STATE, Instance,
    MAX_INSTANCES, Subscription, TopicInfo,
};
pub use format::{CDR_MIME, Format, Qos};
pub use message::{APP_ORIGIN, Message, Origin, Properties, Trace};
pub use metrics::{
    AdapterMetrics, Counter, Detail, DropReason, Health, HealthState, RouteCounters,
    RouteCountersSnapshot,
};
pub use queue::{Ack, Delivery, DeliveryQueue, Express, Handoff, Pushed};
pub use topic::{Level, MAX_TOPIC_LEN, Pattern, Topic};

/// Errors of the model: invalid topics, patterns, addresses.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ModelError {
    /// An empty topic or pattern.
    #[error("empty topic")]
    EmptyTopic,
    /// Longer than 65 535 bytes.
    #[error("topic of {0} bytes exceeds 65535")]
    TopicTooLong(usize),
    /// Contains NUL.
    #[error("topic contains NUL")]
    NulInTopic,
    /// A topic (not a pattern) with `+` or `#`.
    #[error("topic `{0}` contains a wildcard (+ or #)")]
    WildcardInTopic(String),
    /// A malformed pattern.
    #[error("bad pattern `{pattern}`: {reason}")]
    BadPattern {
        /// The pattern.
        pattern: String,
        /// What is wrong.
        reason: &'static str,
    },
    /// No `ADAPTER:` prefix.
    #[error("`{0}` has no `ADAPTER:` prefix")]
    MissingAdapter(String),
    /// An adapter name with characters outside `[A-Za-z0-9_-]`.
    #[error("bad adapter name `{0}` (letters, digits, `_` and `-` only)")]
    BadAdapterName(String),
}

/// Bodies of the cargo-fuzz targets in `fuzz/`, kept here so that a regular
/// test replays the checked-in corpus without the fuzzer.
#[doc(hidden)]
pub mod fuzzing {
    use crate::{AddressPattern, Pattern, Topic};

    /// Replays every file of the corpus directory `fuzz/corpus/TARGET` under
    /// `workspace_root` through `f` (each crate's corpus-replay test calls
    /// this). Panics when the directory is missing or empty, so a corpus that
    /// went away fails the test instead of passing vacuously.
    #[allow(clippy::expect_used, clippy::panic)]
    pub fn replay_corpus(workspace_root: &std::path::Path, target: &str, f: fn(&[u8])) -> usize {
        let dir = workspace_root.join("fuzz/corpus").join(target);
        let mut n = 0;
        let entries = std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
        for entry in entries {
            let path = entry.expect("readable corpus directory").path();
            if path.is_file() {
                f(&std::fs::read(&path).expect("readable corpus file"));
                n += 1;
            }
        }
        assert!(n > 0, "empty corpus {}", dir.display());
        n
    }

    /// Topic, pattern and address parsing and matching: never panics, and a
    /// pattern parsed from a valid topic matches that topic.
    pub fn topic_pattern(data: &[u8]) {
        let Ok(s) = std::str::from_utf8(data) else {
            return;
        };
        let (a, b) = s.split_once('\n').unwrap_or((s, s));
        let topic = Topic::new(a);
        let pattern = Pattern::new(b);
        if let (Ok(t), Ok(p)) = (&topic, &pattern) {
            let m = p.matches(t);
            let mut caps = 0;
            let c = p.captures(t, |_, _| caps += 1);
            assert_eq!(m, c, "matches and captures agree");
            if m {
                assert_eq!(caps, p.wildcard_count());
            }
            let _ = p.overlaps(p);
            assert!(p.covers(p));
        }
        if let Ok(t) = &topic
            && let Ok(p) = Pattern::new(t.as_str())
        {
            // A topic read as a filter is exact and matches itself.
            assert!(p.is_exact() && p.matches(t));
        }
        let _ = AddressPattern::parse(s);
        let _ = crate::Address::parse(s);
    }
}
