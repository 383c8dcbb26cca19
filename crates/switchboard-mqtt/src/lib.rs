//! switchboard's MQTT adapter.
//!
//! Two modes, chosen by the `[adapter.NAME]` table ([`Config`]):
//! - `listen = "ADDR"`: an **embedded broker** speaking MQTT 3.1.1 and 5 on one
//!   listener ([`broker`]). Clients' publications enter the router as
//!   `NAME:TOPIC`; messages routed to `NAME:TOPIC` reach subscribed clients;
//!   retained messages are the router's last-value cache.
//! - `url = "mqtt://..."`: a **client** of an external broker over rumqttc
//!   ([`client`]), subscribing to what the routes need and publishing what is
//!   routed to it, with a bounded in-order buffer while the broker is away.
//!
//! ```
//! use switchboard_mqtt::{Config, MqttAdapter};
//!
//! let cfg: Config = toml::from_str(r#"listen = "127.0.0.1:0""#)?;
//! assert!(cfg.validate().is_empty());
//! let adapter = MqttAdapter::new(cfg);
//! let _ws_entry = adapter.broker_handle(); // serve MQTT over WebSocket with it
//! # Ok::<(), toml::de::Error>(())
//! ```

pub mod broker;
pub mod client;
pub mod config;
#[doc(hidden)]
pub mod fuzzing;
pub mod mapping;
pub mod tls;
mod wire;

pub use broker::BrokerHandle;
pub use config::{BrokerUrl, Config, User};

use switchboard_model::{Adapter, AdapterContext, AdapterError, BoxFuture, Running};

/// Publications a task (a broker connection, the client adapter) routes in
/// a row before it yields once: the adapters it woke wait on the same
/// worker, in tokio's LIFO slot that the other worker cannot steal from,
/// and must drain their queues before those overflow and evict QoS 0.
pub(crate) const BURST: usize = 64;

/// The `mqtt` adapter: embedded broker or client, per its [`Config`].
#[derive(Debug)]
pub struct MqttAdapter {
    config: Config,
    handle: BrokerHandle,
}

impl MqttAdapter {
    /// An adapter for `config` (validated by [`Config::validate`]).
    pub fn new(config: Config) -> Self {
        MqttAdapter {
            config,
            handle: BrokerHandle::default(),
        }
    }

    /// The embedded broker's handle (serves extra connections, such as MQTT
    /// over WebSocket, once started). Meaningless in client mode.
    pub fn broker_handle(&self) -> BrokerHandle {
        self.handle.clone()
    }
}

impl Adapter for MqttAdapter {
    fn kind(&self) -> &str {
        "mqtt"
    }

    fn start(
        self: Box<Self>,
        ctx: AdapterContext,
    ) -> BoxFuture<'static, Result<Running, AdapterError>> {
        Box::pin(async move {
            AdapterError::from_issues(self.config.validate())?;
            if self.config.is_broker() {
                broker::start(self.config, ctx, self.handle).await
            } else {
                client::start(self.config, ctx).await
            }
        })
    }
}
