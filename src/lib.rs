//! switchboard: move messages between DDS topics, CoAP resources, MQTT topics,
//! HTTP endpoints and WebSocket endpoints.
//!
//! Adapters at the edge, one router in the middle, one message model between
//! them. A [`Bridge`] is built from a TOML file ([`Bridge::from_config_file`],
//! [`Bridge::from_toml_str`]) or in code ([`Bridge::builder`]), started, and
//! used through its [`BridgeHandle`]:
//!
//! ```no_run
//! use switchboard::{Bridge, Message};
//!
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! let bridge = Bridge::from_toml_str(r#"
//!     [adapter.http]
//!     listen = "127.0.0.1:8080"
//! "#)?;
//! let handle = bridge.start().await?;
//! handle.publish(Message::json("http:cmd/lamp", r#"{"on":true}"#)?).await?;
//! let mut sub = handle.subscribe("*:sensors/#")?;   // a Stream of Messages
//! # let _ = sub.recv();
//! handle.shutdown().await?;
//! # Ok(()) }
//! ```
//!
//! Your own adapter implements [`Adapter`] and is added with
//! [`Bridge::with_adapter`] or [`BridgeBuilder::adapter`].
//!
//! # Build profile
//!
//! Consider building a program that embeds the bridge with this project's
//! own release settings:
//!
//! ```toml
//! [profile.release]
//! lto = "fat"
//! codegen-units = 1
//! ```
//!
//! A relayed message runs through the code of several crates: the protocol
//! adapter, the router, the last-value cache and tokio. At a steady rate,
//! each message meets cold caches. Built as one unit, that code touched 13 %
//! fewer cache lines per message, and the MQTT relay's median latency fell to
//! parity with mosquitto's bridge. The figures are in BENCHMARKS.md.

mod bridge;
mod config;
mod kinds;
mod mqtt_ws;

pub use bridge::{Bridge, BridgeBuilder, BridgeError, BridgeHandle};
pub use config::{BridgeSettings, ConfigError, ConfigErrors};
pub use switchboard_model::{
    Ack, Adapter, AdapterContext, AdapterError, Address, AddressPattern, BoxFuture, Delivery,
    Endpoint, Format, Interest, Message, ModelError, Origin, Pattern, Properties, Qos, Running,
    Subscription, Topic,
};
pub use switchboard_router::RouteSpec;

/// The adapter crates, for building adapters in code.
pub mod adapters {
    pub use switchboard_http as http;
    pub use switchboard_mqtt as mqtt;
}

/// The built-in default configuration (`--print-default-config`).
pub const DEFAULT_CONFIG: &str = include_str!("../examples/bridge.toml");

/// Bodies of the cargo-fuzz targets in `fuzz/`, kept here so that a regular
/// test replays the checked-in corpus without the fuzzer.
#[doc(hidden)]
pub mod fuzzing {
    /// Config loading and validation of arbitrary text: never panics; every
    /// error has a 1-based position.
    pub fn config(data: &[u8]) {
        let Ok(s) = std::str::from_utf8(data) else {
            return;
        };
        if let Err(crate::BridgeError::Config(errs)) = crate::Bridge::from_toml_str(s) {
            assert!(!errs.0.is_empty());
            for e in errs.0 {
                assert!(e.line >= 1 && e.column >= 1);
            }
        }
    }
}
