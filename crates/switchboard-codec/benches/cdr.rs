//! CDR <-> JSON throughput of the dynamic (IDL at run time) codec against a
//! static serde-derived struct serialized with the `cdr-encoding` crate
//! (rustdds's CDR serde implementation), in the same run.
//!
//! `cargo bench -p switchboard-codec --bench cdr`
//!
//! - cdr_to_json: CDR bytes -> JSON text. Static: `cdr_encoding::from_bytes`
//!   into the struct, then `serde_json::to_vec`. Dynamic:
//!   `cdr::decode_to_json_text` (and `decode_to_json` to a `Value` for reference).
//! - json_to_cdr: JSON text -> CDR bytes. Static: `serde_json::from_slice` into
//!   the struct, then `cdr_encoding::to_vec`. Dynamic: `cdr::encode_from_json_text`.
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use std::hint::black_box;
use std::path::Path;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use serde::{Deserialize, Serialize};
use switchboard_codec::cdr::{self, Encoding};
use switchboard_codec::idl::TypeRegistry;

type Le = cdr_encoding::CdrDeserializer<'static, byteorder::LittleEndian>;

#[derive(Serialize, Deserialize)]
struct Time {
    sec: i32,
    nanosec: u32,
}
#[derive(Serialize, Deserialize)]
struct Header {
    stamp: Time,
    frame_id: String,
}
#[derive(Serialize, Deserialize)]
struct Quaternion {
    x: f64,
    y: f64,
    z: f64,
    w: f64,
}
#[derive(Serialize, Deserialize)]
struct Vector3 {
    x: f64,
    y: f64,
    z: f64,
}
#[derive(Serialize, Deserialize)]
struct Imu {
    header: Header,
    orientation: Quaternion,
    orientation_covariance: [f64; 9],
    angular_velocity: Vector3,
    angular_velocity_covariance: [f64; 9],
    linear_acceleration: Vector3,
    linear_acceleration_covariance: [f64; 9],
}
#[derive(Serialize, Deserialize)]
struct PointField {
    name: String,
    offset: u32,
    datatype: u8,
    count: u32,
}
#[derive(Serialize, Deserialize)]
struct PointCloud2 {
    header: Header,
    height: u32,
    width: u32,
    fields: Vec<PointField>,
    is_bigendian: bool,
    point_step: u32,
    row_step: u32,
    #[serde(with = "serde_bytes")]
    data: Vec<u8>,
    is_dense: bool,
}

fn registry() -> TypeRegistry {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/ros2/sensor_msgs/msg");
    TypeRegistry::from_idl_files(&[dir.join("Imu.idl"), dir.join("PointCloud2.idl")]).unwrap()
}

fn header() -> Header {
    Header {
        stamp: Time {
            sec: 1_700_000_000,
            nanosec: 123_456_789,
        },
        frame_id: "imu_link".into(),
    }
}

fn imu() -> Imu {
    let cov = [0.01, 0.0, 0.0, 0.0, 0.01, 0.0, 0.0, 0.0, 0.01];
    Imu {
        header: header(),
        orientation: Quaternion {
            x: 0.001,
            y: -0.002,
            z: 0.7,
            w: 0.714,
        },
        orientation_covariance: cov,
        angular_velocity: Vector3 {
            x: 0.01,
            y: 0.02,
            z: -0.03,
        },
        angular_velocity_covariance: cov,
        linear_acceleration: Vector3 {
            x: 0.1,
            y: -0.2,
            z: 9.81,
        },
        linear_acceleration_covariance: cov,
    }
}

fn cloud() -> PointCloud2 {
    let n = 1 << 20;
    let fields = ["x", "y", "z", "intensity"]
        .iter()
        .enumerate()
        .map(|(i, f)| PointField {
            name: (*f).into(),
            offset: 4 * i as u32,
            datatype: 7,
            count: 1,
        })
        .collect();
    PointCloud2 {
        header: header(),
        height: 1,
        width: (n / 16) as u32,
        fields,
        is_bigendian: false,
        point_step: 16,
        row_step: n as u32,
        data: (0..n).map(|i| (i * 31 % 251) as u8).collect(),
        is_dense: true,
    }
}

fn static_cdr<T: Serialize>(v: &T) -> Vec<u8> {
    let mut out = vec![0, 1, 0, 0];
    out.extend(cdr_encoding::to_vec::<T, byteorder::LittleEndian>(v).unwrap());
    out
}

fn bench_type<T>(c: &mut Criterion, name: &str, ty_name: &str, value: &T)
where
    T: Serialize + for<'de> Deserialize<'de>,
{
    let _ = std::marker::PhantomData::<Le>;
    let reg = registry();
    let ty = reg.get(ty_name).unwrap();
    let bytes = static_cdr(value);
    let json = serde_json::to_vec(value).unwrap();
    // The dynamic codec reads the static crate's bytes and writes the same JSON.
    let dyn_json = cdr::decode_to_json_text(&reg, ty, &bytes).unwrap();
    assert_eq!(
        serde_json::from_slice::<serde_json::Value>(&dyn_json).unwrap(),
        serde_json::from_slice::<serde_json::Value>(&json).unwrap()
    );
    assert_eq!(
        cdr::encode_from_json_text(&reg, ty, &json, Encoding::XCDR1_LE).unwrap(),
        bytes
    );

    let mut g = c.benchmark_group(format!("{name}/cdr_to_json"));
    g.throughput(Throughput::Bytes(bytes.len() as u64));
    g.bench_function("static_cdr_encoding+serde_json", |b| {
        b.iter(|| {
            let (v, _) =
                cdr_encoding::from_bytes::<T, byteorder::LittleEndian>(black_box(&bytes[4..]))
                    .unwrap();
            serde_json::to_vec(&v).unwrap()
        })
    });
    g.bench_function("dynamic_text", |b| {
        b.iter(|| cdr::decode_to_json_text(&reg, ty, black_box(&bytes)).unwrap())
    });
    g.bench_function("dynamic_value", |b| {
        b.iter(|| cdr::decode_to_json(&reg, ty, black_box(&bytes)).unwrap())
    });
    g.finish();

    let mut g = c.benchmark_group(format!("{name}/json_to_cdr"));
    g.throughput(Throughput::Bytes(bytes.len() as u64));
    g.bench_function("static_serde_json+cdr_encoding", |b| {
        b.iter(|| {
            let v: T = serde_json::from_slice(black_box(&json)).unwrap();
            static_cdr(&v)
        })
    });
    g.bench_function("dynamic", |b| {
        b.iter(|| {
            cdr::encode_from_json_text(&reg, ty, black_box(&json), Encoding::XCDR1_LE).unwrap()
        })
    });
    g.finish();
}

fn benches(c: &mut Criterion) {
    bench_type(c, "imu", "sensor_msgs::msg::Imu", &imu());
    let pc = cloud();
    bench_type(c, "pointcloud2_1MiB", "sensor_msgs::msg::PointCloud2", &pc);

    // Byte data given as base64 (accepted on input): bulk copy, vs memcpy.
    let reg = registry();
    let ty = reg.get("sensor_msgs::msg::PointCloud2").unwrap();
    let mut v = serde_json::to_value(&pc).unwrap();
    use base64::Engine;
    v["data"] = base64::engine::general_purpose::STANDARD
        .encode(&pc.data)
        .into();
    let mut g = c.benchmark_group("pointcloud2_1MiB/bytes");
    g.throughput(Throughput::Bytes(pc.data.len() as u64));
    g.bench_function("dynamic_encode_from_value_base64", |b| {
        b.iter(|| cdr::encode_from_json(&reg, ty, black_box(&v), Encoding::XCDR2_LE).unwrap())
    });
    g.bench_function("memcpy_1MiB", |b| b.iter(|| black_box(&pc.data).clone()));
    g.finish();
}

criterion_group! {
    name = cdr_benches;
    config = Criterion::default().sample_size(20).measurement_time(std::time::Duration::from_secs(3));
    targets = benches
}
criterion_main!(cdr_benches);
