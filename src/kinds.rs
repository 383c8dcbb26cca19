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
    /// Checks a route destination topic of this adapter (given whether the
    /// route's source is an adapter of the same kind): the problem, if any.
    pub(crate) dest_check: Option<DestCheck>,
}

/// See [`Built::dest_check`].
pub(crate) type DestCheck = Box<dyn Fn(&str, bool) -> Option<String>>;

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
    /// The `listen` addresses of the `http` adapters, in config order.
    pub(crate) http_listens: Vec<SocketAddr>,
}

enum WsListen {
    Default,
    Off,
    At(SocketAddr),
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
                dest_check: None,
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
                dest_check: None,
                adapter: Box::new(
                    switchboard_http::WsAdapter::new(c).with_listeners(shared.listeners.clone()),
                ),
            }),
            Err(e) => Outcome::Invalid(e),
        },
        "mqtt" => {
            // `ws_listen` is the facade's key: MQTT over WebSocket at /mqtt.
            let mut table = table;
            let mut ws_issue = None;
            let ws_listen = match table.get_mut() {
                DeValue::Table(t) => match t.remove("ws_listen") {
                    None => WsListen::Default,
                    Some(v) => match v.get_ref().as_str() {
                        Some("off") => WsListen::Off,
                        Some(s) => match s.parse::<SocketAddr>() {
                            Ok(a) => WsListen::At(a),
                            Err(e) => {
                                ws_issue = Some(ConfigIssue::new(
                                    "ws_listen",
                                    format!("`{s}`: {e} (an IP:PORT, or \"off\")"),
                                ));
                                WsListen::Off
                            }
                        },
                        None => {
                            ws_issue = Some(ConfigIssue::new(
                                "ws_listen",
                                "expected a string: IP:PORT or \"off\"",
                            ));
                            WsListen::Off
                        }
                    },
                },
                _ => WsListen::Default,
            };
            match de::<switchboard_mqtt::Config>(table) {
                Ok(c) => {
                    let mut issues = c.validate();
                    issues.extend(ws_issue);
                    let mut listen = c.listen_addrs();
                    let ws = match (c.is_broker(), ws_listen) {
                        (false, _) | (_, WsListen::Off) => None,
                        (true, WsListen::At(a)) => Some(a),
                        (true, WsListen::Default) => shared.http_listens.first().copied(),
                    };
                    if let Some(a) = ws
                        && !shared.http_listens.contains(&a)
                    {
                        listen.push(("tcp", a));
                    }
                    let max_frame = c.max_payload.as_usize().saturating_add(16);
                    Outcome::Built(Built {
                        issues,
                        listen,
                        dest_check: None,
                        adapter: Box::new(crate::mqtt_ws::MqttWithWs {
                            inner: switchboard_mqtt::MqttAdapter::new(c),
                            ws,
                            listeners: shared.listeners.clone(),
                            max_frame,
                        }),
                    })
                }
                Err(e) => Outcome::Invalid(e),
            }
        }
        "coap" => match de::<switchboard_coap::Config>(table) {
            Ok(c) => Outcome::Built(Built {
                issues: c.validate(),
                listen: c.listen_addrs(),
                dest_check: None,
                adapter: Box::new(switchboard_coap::CoapAdapter::new(c)),
            }),
            Err(e) => Outcome::Invalid(e),
        },
        "dds" => match de::<switchboard_dds::Config>(table) {
            Ok(c) => Outcome::Built(Built {
                issues: c.validate(),
                listen: c.listen_addrs(),
                dest_check: Some(Box::new({
                    let c = c.clone();
                    move |topic, from_dds| c.check_destination(topic, from_dds)
                })),
                adapter: Box::new(switchboard_dds::DdsAdapter::new(c)),
            }),
            Err(e) => Outcome::Invalid(e),
        },
        _ => Outcome::UnknownKind,
    }
}
