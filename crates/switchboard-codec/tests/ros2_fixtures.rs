//! ROS 2 rosidl-generated IDL (std_msgs, builtin_interfaces, geometry_msgs,
//! sensor_msgs) parses, and samples round-trip through every encoding.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};

use serde_json::json;
use switchboard_codec::cdr::{self, Encoding};
use switchboard_codec::idl::{ConstValue, TypeRegistry};

fn fixture(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/ros2")
        .join(rel)
}

fn all() -> TypeRegistry {
    let files = [
        "std_msgs/msg/String.idl",
        "std_msgs/msg/Header.idl",
        "builtin_interfaces/msg/Time.idl",
        "geometry_msgs/msg/Twist.idl",
        "geometry_msgs/msg/Vector3.idl",
        "geometry_msgs/msg/Quaternion.idl",
        "sensor_msgs/msg/Imu.idl",
        "sensor_msgs/msg/Image.idl",
        "sensor_msgs/msg/PointCloud2.idl",
        "sensor_msgs/msg/PointField.idl",
    ];
    TypeRegistry::from_idl_files(&files.map(fixture)).unwrap()
}

fn round_trip(reg: &TypeRegistry, name: &str, v: serde_json::Value) {
    let ty = reg.get(name).unwrap_or_else(|| panic!("{name} missing"));
    for enc in [
        Encoding::XCDR1_LE,
        Encoding::XCDR1_BE,
        Encoding::XCDR2_LE,
        Encoding::XCDR2_BE,
    ] {
        let b = cdr::encode_from_json(reg, ty, &v, enc).unwrap();
        assert_eq!(
            cdr::decode_to_json(reg, ty, &b).unwrap(),
            v,
            "{name} {enc:?}"
        );
    }
}

#[test]
fn rosidl_files_parse_with_includes_resolved_from_ancestors() {
    let reg = TypeRegistry::from_idl_files(&[fixture("sensor_msgs/msg/Imu.idl")]).unwrap();
    assert!(reg.get("std_msgs::msg::Header").is_some());
    assert!(reg.get("builtin_interfaces::msg::Time").is_some());
    let reg = all();
    for t in [
        "std_msgs::msg::String",
        "std_msgs::msg::Header",
        "builtin_interfaces::msg::Time",
        "geometry_msgs::msg::Twist",
        "geometry_msgs::msg::Vector3",
        "geometry_msgs::msg::Quaternion",
        "sensor_msgs::msg::Imu",
        "sensor_msgs::msg::Image",
        "sensor_msgs::msg::PointCloud2",
        "sensor_msgs::msg::PointField",
        "sensor_msgs::msg::dds_::Imu_",
    ] {
        assert!(reg.get(t).is_some(), "{t}");
    }
    assert_eq!(
        reg.constant("sensor_msgs::msg::PointField_Constants::FLOAT32"),
        Some(&ConstValue::Int(7))
    );
}

#[test]
fn ros2_samples_round_trip() {
    let reg = all();
    let header = json!({"stamp": {"sec": 1_700_000_000, "nanosec": 500}, "frame_id": "base_link"});
    round_trip(
        &reg,
        "std_msgs::msg::String",
        json!({"data": "hello world"}),
    );
    round_trip(&reg, "std_msgs::msg::Header", header.clone());
    round_trip(
        &reg,
        "geometry_msgs::msg::Twist",
        json!({"linear": {"x": 1.0, "y": 0.0, "z": 0.0}, "angular": {"x": 0.0, "y": 0.0, "z": -0.5}}),
    );
    let cov: Vec<f64> = (0..9).map(|i| f64::from(i) * 0.01).collect();
    round_trip(
        &reg,
        "sensor_msgs::msg::Imu",
        json!({
            "header": header,
            "orientation": {"x": 0.0, "y": 0.0, "z": 0.0, "w": 1.0},
            "orientation_covariance": cov,
            "angular_velocity": {"x": 0.1, "y": 0.2, "z": 0.3},
            "angular_velocity_covariance": cov,
            "linear_acceleration": {"x": 0.0, "y": 0.0, "z": 9.81},
            "linear_acceleration_covariance": cov,
        }),
    );
    round_trip(
        &reg,
        "sensor_msgs::msg::Image",
        json!({"header": header, "height": 2, "width": 2, "encoding": "mono8", "is_bigendian": 0, "step": 2, "data": [0, 64, 128, 255]}),
    );
    round_trip(
        &reg,
        "sensor_msgs::msg::PointCloud2",
        json!({
            "header": header, "height": 1, "width": 2,
            "fields": [
                {"name": "x", "offset": 0, "datatype": 7, "count": 1},
                {"name": "y", "offset": 4, "datatype": 7, "count": 1}
            ],
            "is_bigendian": false, "point_step": 8, "row_step": 16,
            "data": [0, 0, 128, 63, 0, 0, 0, 64, 0, 0, 64, 64, 0, 0, 128, 64],
            "is_dense": true
        }),
    );
}

#[test]
fn ros2_string_known_bytes() {
    // What a ROS 2 talker publishes for std_msgs/String "Hello World: 1" (CDR_LE).
    let reg = all();
    let ty = reg.get("std_msgs::msg::dds_::String_").unwrap();
    let mut b = vec![0, 1, 0, 0, 15, 0, 0, 0];
    b.extend_from_slice(b"Hello World: 1\0");
    assert_eq!(
        cdr::decode_to_json(&reg, ty, &b).unwrap(),
        json!({"data": "Hello World: 1"})
    );
    assert_eq!(
        cdr::encode_from_json(
            &reg,
            ty,
            &json!({"data": "Hello World: 1"}),
            Encoding::XCDR1_LE
        )
        .unwrap(),
        b
    );
}

#[test]
fn rosidl_default_annotations_fill_missing_members() {
    let reg = all();
    let ty = reg.get("geometry_msgs::msg::Quaternion").unwrap();
    let b = cdr::encode_from_json(&reg, ty, &json!({"z": 0.5}), Encoding::XCDR2_LE).unwrap();
    assert_eq!(
        cdr::decode_to_json(&reg, ty, &b).unwrap(),
        json!({"x": 0.0, "y": 0.0, "z": 0.5, "w": 1.0})
    );
    let b2 = cdr::encode_from_json_text(&reg, ty, br#"{"z": 0.5}"#, Encoding::XCDR2_LE).unwrap();
    assert_eq!(b, b2);
}
