//! switchboard's DDS adapter over rustdds.
//!
//! One DomainParticipant per `[adapter.dds]` instance. Samples move as raw
//! CDR: a custom rustdds (de)serializer adapter keeps each sample's serialized
//! bytes and representation identifier, so nothing is decoded unless a
//! destination needs another format; readers accept XCDR1 and XCDR2, writers
//! send (and advertise) the representation of the sample they write.
//!
//! - Readers exist for the topics the routes read (configured ones and, with
//!   `discover = true`, those other participants write); writers are created
//!   on the first delivery to a topic.
//! - Typed topics (type declared in the `idl` files): the adapter converts
//!   with switchboard-codec, so the router stays protocol-free. Samples enter
//!   the router as JSON (DDS type name in `dds.type`, key as JSON in
//!   `dds.key`); JSON or CBOR deliveries are encoded to CDR (XCDR1 for final
//!   types, XCDR2 otherwise). Untyped topics pass raw CDR (`cdr` with the
//!   type name). Disposed instances are messages with `dds.instance_state`.
//! - QoS: reliable <-> at least once, best effort <-> at most once,
//!   TRANSIENT_LOCAL <-> retain.
//! - Loop guard: our own participant's samples are never bridged; other
//!   switchboard bridges on the domain are recognised by a marker topic and
//!   their samples are not bridged again (unless `forward_bridged`).
//! - ROS 2 mode: bridge topic `chatter` <-> DDS `rt/chatter`, type
//!   `pkg::msg::Type` <-> `pkg::msg::dds_::Type_`.
//!
//! ```no_run
//! use switchboard_dds::{Config, DdsAdapter};
//! use switchboard_model::{Adapter, AdapterContext};
//!
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! let config: Config = toml::from_str("domain = 7\ndiscover = true")?;
//! assert!(config.validate().is_empty());
//! let (ctx, _harness) = AdapterContext::standalone("dds", 1024);
//! let running = Box::new(DdsAdapter::new(config)).start(ctx).await?;
//! running.task.await?;
//! # Ok(()) }
//! ```

mod adapter;
pub mod config;
pub mod discovery;
pub mod endpoints;
#[doc(hidden)]
pub mod fuzzing;
pub mod mapping;
pub mod raw;
pub mod reader;
pub mod typed;

pub use adapter::DdsAdapter;
pub use config::{Config, Durability, Reliability, TopicConfig};
