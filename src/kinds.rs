//! The adapter kinds this build knows: each maps its `[adapter.NAME]` table
//! to the adapter crate's own `Config` and adapter type. Adding a kind is one
//! arm in [`build`] and one name in [`KINDS`].

use std::net::SocketAddr;

use serde::Deserialize;
use serde::de::IntoDeserializer;
use switchboard_model::Adapter;
use switchboard_model::units::ConfigIssue;
use toml::Spanned;
use toml::de::DeValue;

/// Every adapter kind, for error messages.
pub(crate) const KINDS: &[&str] = &["http", "ws", "mqtt", "coap", "dds"];

/// An adapter built from its table.
pub(crate) struct Built {
    pub(crate) adapter: Box<dyn Adapter>,
    /// What it will bind: (`tcp`|`udp`, address).
    pub(crate) listen: Vec<(&'static str, SocketAddr)>,
    /// Problems `validate()` found.
    pub(crate) issues: Vec<ConfigIssue>,
}

/// The result of [`build`].
pub(crate) enum Outcome {
    Built(Built),
    Invalid(toml::de::Error),
    UnknownKind,
}

fn de<C: for<'de> Deserialize<'de>>(table: Spanned<DeValue<'_>>) -> Result<C, toml::de::Error> {
    C::deserialize(table.into_deserializer())
}

/// What every adapter built from one config shares.
#[derive(Default)]
pub(crate) struct Shared {
    /// HTTP listeners shared by the `http` and `ws` adapters (and MQTT over
    /// WebSocket) when their `listen` addresses are equal.
    pub(crate) listeners: switchboard_http::Listeners,
}

/// Builds the adapter of `kind` named `name` from its table (without `kind`).
pub(crate) fn build(
    kind: &str,
    name: &str,
    table: Spanned<DeValue<'_>>,
    shared: &Shared,
) -> Outcome {
    let _ = name;
    match kind {
        "http" => match de::<switchboard_http::Config>(table) {
            Ok(c) => Outcome::Built(Built {
                issues: c.validate(),
                listen: c.listen_addrs(),
                adapter: Box::new(
                    switchboard_http::HttpAdapter::new(c).with_listeners(shared.listeners.clone()),
                ),
            }),
            Err(e) => Outcome::Invalid(e),
        },
        "ws" => match de::<switchboard_http::WsConfig>(table) {
            Ok(c) => Outcome::Built(Built {
                issues: c.validate(),
                listen: c.listen_addrs(),
                adapter: Box::new(
                    switchboard_http::WsAdapter::new(c).with_listeners(shared.listeners.clone()),
                ),
            }),
            Err(e) => Outcome::Invalid(e),
        },
        "mqtt" => match de::<switchboard_mqtt::Config>(table) {
            Ok(c) => Outcome::Built(Built {
                issues: c.validate(),
                listen: c.listen_addrs(),
                adapter: Box::new(switchboard_mqtt::MqttAdapter::new(c)),
            }),
            Err(e) => Outcome::Invalid(e),
        },
        "coap" => match de::<switchboard_coap::Config>(table) {
            Ok(c) => Outcome::Built(Built {
                issues: c.validate(),
                listen: c.listen_addrs(),
                adapter: Box::new(switchboard_coap::CoapAdapter::new(c)),
            }),
            Err(e) => Outcome::Invalid(e),
        },
        "dds" => match de::<switchboard_dds::Config>(table) {
            Ok(c) => Outcome::Built(Built {
                issues: c.validate(),
                listen: c.listen_addrs(),
                adapter: Box::new(switchboard_dds::DdsAdapter::new(c)),
            }),
            Err(e) => Outcome::Invalid(e),
        },
        _ => Outcome::UnknownKind,
    }
}
