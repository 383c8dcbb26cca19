//! The `[adapter.dds]` configuration table (SPEC section 3).
//!
//! ```toml
//! [adapter.dds]
//! domain = 0
//! idl = ["types/sensors.idl"]
//! discover = true
//! ros2 = false
//! localhost_only = false
//! [[adapter.dds.topic]]
//! name = "SensorTemperature"
//! type = "sensors::Temperature"
//! reliability = "reliable"
//! durability = "transient_local"
//! history = 1
//! ```

use std::net::SocketAddr;
use std::path::PathBuf;

use serde::Deserialize;
use switchboard_model::Topic;
use switchboard_model::units::{ByteSize, ConfigIssue, DEFAULT_MAX_PAYLOAD, HumanDuration};

/// The highest DDS domain id that maps to valid UDP ports (7400 + 250 * id + 11 < 65536).
pub const MAX_DOMAIN: u16 = 232;

/// Reliability of a topic's readers and writers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Reliability {
    /// RELIABLE: at least once.
    Reliable,
    /// BEST_EFFORT: at most once.
    BestEffort,
}

/// Durability of a topic's readers and writers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Durability {
    /// VOLATILE: late joiners get nothing.
    Volatile,
    /// TRANSIENT_LOCAL: late joiners get the writer's history (retain).
    TransientLocal,
}

/// One `[[adapter.dds.topic]]`: a DDS topic bridged with a fixed type and QoS.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TopicConfig {
    /// The bridge topic (in ROS 2 mode `chatter` is DDS `rt/chatter`).
    pub name: String,
    /// The type name as in the IDL files (`sensors::Temperature`; in ROS 2 mode
    /// `std_msgs::msg::String`, sent as `std_msgs::msg::dds_::String_`).
    #[serde(rename = "type")]
    pub type_name: String,
    /// Reliability (default reliable).
    #[serde(default = "default_reliability")]
    pub reliability: Reliability,
    /// Durability (default volatile).
    #[serde(default = "default_durability")]
    pub durability: Durability,
    /// History depth, KEEP_LAST (default 1; 10 in ROS 2 mode).
    pub history: Option<u32>,
    /// Whether the topic is keyed (default: from the type's `@key` members when
    /// the type is known, else false).
    pub keyed: Option<bool>,
    /// DEADLINE period, if any.
    pub deadline: Option<HumanDuration>,
    /// LIFESPAN of written samples, if any.
    pub lifespan: Option<HumanDuration>,
}

fn default_reliability() -> Reliability {
    Reliability::Reliable
}
fn default_durability() -> Durability {
    Durability::Volatile
}
fn default_true() -> bool {
    true
}
fn default_max_payload() -> ByteSize {
    DEFAULT_MAX_PAYLOAD
}

/// The `[adapter.dds]` table, without `kind`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// DDS domain id (0..=232).
    #[serde(default)]
    pub domain: u16,
    /// IDL files with the types used for CDR <-> JSON.
    #[serde(default)]
    pub idl: Vec<PathBuf>,
    /// Bridge every topic other participants write (default true).
    #[serde(default = "default_true")]
    pub discover: bool,
    /// ROS 2 naming: topic `chatter` <-> DDS `rt/chatter`, type mangling.
    #[serde(default)]
    pub ros2: bool,
    /// Keep DDS on the loopback interface: only 127.0.0.1 is used for
    /// multicast and advertised as a locator (like `ROS_LOCALHOST_ONLY`).
    #[serde(default)]
    pub localhost_only: bool,
    /// Largest sample accepted in either direction (default 1 MiB).
    #[serde(default = "default_max_payload")]
    pub max_payload: ByteSize,
    /// Bridge samples written by another switchboard bridge on the domain
    /// (default false: they were bridged once already; see the loop guard).
    #[serde(default)]
    pub forward_bridged: bool,
    /// Topics with a fixed type and QoS.
    #[serde(default)]
    pub topic: Vec<TopicConfig>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            domain: 0,
            idl: Vec::new(),
            discover: true,
            ros2: false,
            localhost_only: false,
            max_payload: DEFAULT_MAX_PAYLOAD,
            forward_bridged: false,
            topic: Vec::new(),
        }
    }
}

impl Config {
    /// Checks serde cannot do: domain range, topic names, duplicate topics, history.
    pub fn validate(&self) -> Vec<ConfigIssue> {
        let mut issues = Vec::new();
        if self.domain > MAX_DOMAIN {
            issues.push(ConfigIssue::new(
                "domain",
                format!("domain {} is above {MAX_DOMAIN}", self.domain),
            ));
        }
        if !self.idl.is_empty()
            && let Err(e) = switchboard_codec::idl::TypeRegistry::from_idl_files(&self.idl)
        {
            issues.push(ConfigIssue::new("idl", e.to_string()));
        }
        if self.max_payload.0 == 0 {
            issues.push(ConfigIssue::new("max_payload", "must be above 0"));
        }
        for (i, t) in self.topic.iter().enumerate() {
            if let Err(e) = Topic::new(&t.name) {
                issues.push(ConfigIssue::new(format!("topic[{i}].name"), e.to_string()));
            }
            if t.type_name.trim().is_empty() {
                issues.push(ConfigIssue::new(
                    format!("topic[{i}].type"),
                    "empty type name",
                ));
            }
            if t.history == Some(0) || t.history.is_some_and(|h| h > 100_000) {
                issues.push(ConfigIssue::new(
                    format!("topic[{i}].history"),
                    "history must be 1..=100000",
                ));
            }
            if self.topic[..i].iter().any(|o| o.name == t.name) {
                issues.push(ConfigIssue::new(
                    format!("topic[{i}].name"),
                    format!("topic `{}` is configured twice", t.name),
                ));
            }
        }
        issues
    }

    /// What the adapter binds: nothing the facade needs to compare. DDS uses
    /// the RTPS well-known UDP ports of its domain (7400 + 250 * domain + ...),
    /// which several participants share by design.
    pub fn listen_addrs(&self) -> Vec<(&'static str, SocketAddr)> {
        Vec::new()
    }

    /// Whether a route may write to bridge topic `topic` of this adapter:
    /// the problem when the DDS topic has no known type. The type is known
    /// when the topic is configured with one, when the route's source is a
    /// DDS adapter (its samples carry their type name), or, with `discover`,
    /// from the participants that read or write the topic on the domain.
    pub fn check_destination(&self, topic: &str, from_dds: bool) -> Option<String> {
        if from_dds || self.discover || self.topic(topic).is_some() {
            return None;
        }
        let dds_name = crate::mapping::dds_topic_name(topic, self.ros2);
        Some(format!(
            "DDS topic `{dds_name}` has no known type: configure it as a [[topic]] of this adapter with a `type`, or set `discover = true` to take the type from the domain"
        ))
    }

    /// The configured topic named `name` (bridge topic).
    pub fn topic(&self, name: &str) -> Option<&TopicConfig> {
        self.topic.iter().find(|t| t.name == name)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn parses_spec_example() {
        let c: Config = toml::from_str(
            r#"
domain = 3
idl = ["types/sensors.idl"]
discover = true
ros2 = false
[[topic]]
name = "SensorTemperature"
type = "sensors::Temperature"
reliability = "reliable"
durability = "transient_local"
history = 1
"#,
        )
        .unwrap();
        assert_eq!(c.domain, 3);
        assert_eq!(c.topic[0].durability, Durability::TransientLocal);
        assert_eq!(c.topic[0].history, Some(1));
        // Only the IDL file is missing here.
        let keys: Vec<_> = c.validate().into_iter().map(|i| i.key).collect();
        assert_eq!(keys, ["idl"]);
        assert_eq!(c.max_payload, DEFAULT_MAX_PAYLOAD);
    }

    #[test]
    fn reports_idl_errors() {
        let c: Config = toml::from_str("idl = [\"/nonexistent/x.idl\"]").unwrap();
        let issues = c.validate();
        assert_eq!(issues.len(), 1);
        assert_eq!(issues[0].key, "idl");
    }

    #[test]
    fn rejects_unknown_and_bad_values() {
        assert!(toml::from_str::<Config>("domian = 1").is_err());
        assert!(
            toml::from_str::<Config>("[[topic]]\nname='a'\ntype='T'\nreliability='maybe'").is_err()
        );
        let c: Config = toml::from_str(
            "domain = 300\n[[topic]]\nname='a/+'\ntype='T'\nhistory=0\n[[topic]]\nname='a/+'\ntype=''",
        )
        .unwrap();
        let keys: Vec<_> = c.validate().into_iter().map(|i| i.key).collect();
        assert_eq!(
            keys,
            [
                "domain",
                "topic[0].name",
                "topic[0].history",
                "topic[1].name",
                "topic[1].type",
                "topic[1].name"
            ]
        );
    }
}
