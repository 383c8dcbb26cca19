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
pub use router::{DEFAULT_MAX_HOPS, Planned, Router, Slot, SlotSpec};
pub use run::run;
pub use table::{Route, RouteError, RouteSpec, RouteTable};
pub use template::{DestAdapter, Template, TemplateError};
