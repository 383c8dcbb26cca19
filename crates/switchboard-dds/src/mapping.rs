//! Pure mapping functions: bridge topic <-> DDS topic name, IDL type name <->
//! DDS type name (ROS 2 mangling), and DDS QoS <-> message QoS and retain.

use switchboard_model::{Qos, Topic};

use crate::config::{Durability, Reliability};

/// ROS 2's prefix of topics (publish/subscribe).
pub const ROS_TOPIC_PREFIX: &str = "rt/";
/// ROS 2's prefixes of service request and reply topics.
pub const ROS_SERVICE_PREFIXES: [&str; 2] = ["rq/", "rr/"];

/// The DDS topic name of bridge topic `topic`.
///
/// In ROS 2 mode `chatter` is `rt/chatter`; names already under `rq/` or `rr/`
/// (service topics, routed explicitly) are left alone.
pub fn dds_topic_name(topic: &str, ros2: bool) -> String {
    if ros2 && !is_ros_service(topic) {
        format!("{ROS_TOPIC_PREFIX}{topic}")
    } else {
        topic.to_string()
    }
}

fn is_ros_service(name: &str) -> bool {
    ROS_SERVICE_PREFIXES.iter().any(|p| name.starts_with(p))
}

/// The bridge topic of a DDS topic found by discovery, or `None` when it is
/// not bridged by discovery: in ROS 2 mode only `rt/` topics are (service
/// topics `rq/`, `rr/` and non-ROS names are left alone); DDS names that are
/// not valid bridge topics (wildcards, empty) never are.
pub fn discovered_bridge_topic(dds_name: &str, ros2: bool) -> Option<Topic> {
    let name = if ros2 {
        dds_name.strip_prefix(ROS_TOPIC_PREFIX)?
    } else {
        dds_name
    };
    Topic::new(name).ok()
}

/// The DDS type name of an IDL type name. In ROS 2 mode
/// `std_msgs::msg::String` becomes `std_msgs::msg::dds_::String_`; names
/// already mangled, and every name outside ROS 2 mode, are unchanged.
pub fn dds_type_name(idl_name: &str, ros2: bool) -> String {
    if !ros2 || idl_name.contains("::dds_::") {
        return idl_name.to_string();
    }
    match idl_name.rsplit_once("::") {
        Some((module, base)) => format!("{module}::dds_::{base}_"),
        None => idl_name.to_string(),
    }
}

/// The IDL type name of a DDS type name: undoes ROS 2 mangling
/// (`pkg::msg::dds_::Type_` -> `pkg::msg::Type`) whatever the mode, since the
/// mangled form is never what an IDL file declares.
pub fn idl_type_name(dds_name: &str) -> String {
    if let Some((module, base)) = dds_name.rsplit_once("::dds_::")
        && let Some(base) = base.strip_suffix('_')
        && !base.contains("::")
    {
        return format!("{module}::{base}");
    }
    dds_name.to_string()
}

/// Message QoS of samples read with `reliability`.
pub fn qos_of(reliability: Reliability) -> Qos {
    match reliability {
        Reliability::Reliable => Qos::AtLeastOnce,
        Reliability::BestEffort => Qos::AtMostOnce,
    }
}

/// DDS reliability for messages of `qos` written to a topic with no configured QoS.
pub fn reliability_of(qos: Qos) -> Reliability {
    match qos {
        Qos::AtMostOnce => Reliability::BestEffort,
        Qos::AtLeastOnce | Qos::ExactlyOnce => Reliability::Reliable,
    }
}

/// Retain flag of samples read with `durability`.
pub fn retain_of(durability: Durability) -> bool {
    durability == Durability::TransientLocal
}

/// DDS durability for messages written to a topic with no configured QoS.
pub fn durability_of(retain: bool) -> Durability {
    if retain {
        Durability::TransientLocal
    } else {
        Durability::Volatile
    }
}

/// Lower-case hex of `bytes` (keys and GUID prefixes in properties and logs).
pub fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(s, "{b:02x}");
    }
    s
}

/// Parses lower- or upper-case hex; `None` on odd length or a non-hex digit.
pub fn unhex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn topic_names() {
        let cases = [
            ("chatter", false, "chatter"),
            ("chatter", true, "rt/chatter"),
            ("robot/cmd_vel", true, "rt/robot/cmd_vel"),
            ("rq/add_twoRequest", true, "rq/add_twoRequest"),
            ("SensorTemperature", false, "SensorTemperature"),
        ];
        for (topic, ros2, dds) in cases {
            assert_eq!(dds_topic_name(topic, ros2), dds, "{topic} {ros2}");
        }
    }

    #[test]
    fn discovered_names() {
        let cases = [
            ("rt/chatter", true, Some("chatter")),
            ("rt/robot/odom", true, Some("robot/odom")),
            ("rq/srvRequest", true, None),
            ("rr/srvReply", true, None),
            ("Square", true, None),
            ("Square", false, Some("Square")),
            ("rt/chatter", false, Some("rt/chatter")),
            ("bad+name", false, None),
            ("", false, None),
        ];
        for (dds, ros2, want) in cases {
            assert_eq!(
                discovered_bridge_topic(dds, ros2)
                    .as_ref()
                    .map(Topic::as_str),
                want,
                "{dds} {ros2}"
            );
        }
    }

    #[test]
    fn type_names() {
        let cases = [
            (
                "std_msgs::msg::String",
                true,
                "std_msgs::msg::dds_::String_",
            ),
            (
                "std_msgs::msg::dds_::String_",
                true,
                "std_msgs::msg::dds_::String_",
            ),
            ("sensors::Temperature", false, "sensors::Temperature"),
            ("Flat", true, "Flat"),
        ];
        for (idl, ros2, dds) in cases {
            assert_eq!(dds_type_name(idl, ros2), dds);
        }
        assert_eq!(
            idl_type_name("std_msgs::msg::dds_::String_"),
            "std_msgs::msg::String"
        );
        assert_eq!(
            idl_type_name("geometry_msgs::msg::dds_::Twist_"),
            "geometry_msgs::msg::Twist"
        );
        assert_eq!(
            idl_type_name("sensors::Temperature"),
            "sensors::Temperature"
        );
        assert_eq!(idl_type_name("a::dds_::B"), "a::dds_::B");
    }

    #[test]
    fn qos_both_ways() {
        for r in [Reliability::Reliable, Reliability::BestEffort] {
            assert_eq!(reliability_of(qos_of(r)), r);
        }
        for d in [Durability::Volatile, Durability::TransientLocal] {
            assert_eq!(durability_of(retain_of(d)), d);
        }
        assert_eq!(reliability_of(Qos::ExactlyOnce), Reliability::Reliable);
    }

    #[test]
    fn hex_round_trip() {
        assert_eq!(hex(&[0, 0xab, 0x10]), "00ab10");
        assert_eq!(unhex("00ab10"), Some(vec![0, 0xab, 0x10]));
        assert_eq!(unhex("0"), None);
        assert_eq!(unhex("zz"), None);
    }
}
