//! rustdds endpoints for one bridged topic: the QoS a [`TopicSpec`] asks for,
//! raw writers (one per output representation, keyed or not) and raw readers
//! turned into a stream of [`ReadItem`]s.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use futures_util::StreamExt;
use futures_util::stream::BoxStream;
use rustdds::policy::{
    self, DataRepresentation, XCDR_DATA_REPRESENTATION, XCDR2_DATA_REPRESENTATION,
};
use rustdds::{
    GUID, InstanceState, Publisher, QosPolicies, QosPolicyBuilder, Subscriber, Timestamp, Topic,
    no_key, with_key,
};

use crate::config::{Durability, Reliability};
use crate::raw::{RawDe, RawKey, RawSample, RawSer, is_xcdr2};

/// How the bridge reads and writes one DDS topic.
#[derive(Clone, Debug, PartialEq)]
pub struct TopicSpec {
    /// The DDS topic name.
    pub dds_name: String,
    /// The DDS type name (mangled in ROS 2 mode).
    pub dds_type: String,
    /// Whether the topic is keyed (WITH_KEY endpoints).
    pub keyed: bool,
    /// Reliability.
    pub reliability: Reliability,
    /// Durability.
    pub durability: Durability,
    /// KEEP_LAST depth of writers.
    pub history: u32,
    /// DEADLINE, if any.
    pub deadline: Option<Duration>,
    /// LIFESPAN, if any.
    pub lifespan: Option<Duration>,
}

/// Depth (KEEP_LAST, per instance) of the bridge's own reader caches: the
/// bridge takes samples as they come, so this only absorbs bursts between
/// two takes. Kept small on purpose: rustdds' `DataReader::take` scans every
/// cached sample (cloning its key) on each call and its stream takes one
/// sample per call, so a reader that falls behind pays O(depth) per sample;
/// at 1024 a saturated keyed reader spent most of its time there (profile in
/// BENCHMARKS.md, DDS section).
const READER_DEPTH: i32 = 64;

fn dds_duration(d: Duration) -> rustdds::Duration {
    rustdds::Duration::from_std(d)
}

impl TopicSpec {
    fn base_qos(&self) -> QosPolicyBuilder {
        let mut b = QosPolicyBuilder::new()
            .durability(match self.durability {
                Durability::Volatile => policy::Durability::Volatile,
                Durability::TransientLocal => policy::Durability::TransientLocal,
            })
            .reliability(match self.reliability {
                Reliability::Reliable => policy::Reliability::Reliable {
                    max_blocking_time: rustdds::Duration::from_millis(100),
                },
                Reliability::BestEffort => policy::Reliability::BestEffort,
            });
        if let Some(d) = self.deadline {
            b = b.deadline(policy::Deadline(dds_duration(d)));
        }
        b
    }

    /// QoS of the bridge's reader: accepts XCDR1 and XCDR2.
    pub fn reader_qos(&self) -> QosPolicies {
        self.base_qos()
            .history(policy::History::KeepLast {
                depth: READER_DEPTH,
            })
            .build()
            .with_data_representation(DataRepresentation {
                value: vec![XCDR_DATA_REPRESENTATION, XCDR2_DATA_REPRESENTATION],
            })
    }

    /// QoS of a writer sending representation `rep` (advertised as XCDR2 for
    /// XCDR2 identifiers, so that XCDR2-only readers match).
    pub fn writer_qos(&self, rep: u16) -> QosPolicies {
        let mut b = self.base_qos().history(policy::History::KeepLast {
            depth: i32::try_from(self.history.max(1)).unwrap_or(i32::MAX),
        });
        if let Some(l) = self.lifespan {
            b = b.lifespan(policy::Lifespan {
                duration: dds_duration(l),
            });
        }
        let repr = if is_xcdr2(rep) {
            XCDR2_DATA_REPRESENTATION
        } else {
            XCDR_DATA_REPRESENTATION
        };
        b.build()
            .with_data_representation(DataRepresentation { value: vec![repr] })
    }
}

/// Errors creating or using endpoints.
#[derive(Debug, thiserror::Error)]
pub enum EndpointError {
    /// rustdds refused to create an entity.
    #[error("cannot create {what} for DDS topic `{topic}`: {reason}")]
    Create {
        /// Reader, writer or topic.
        what: &'static str,
        /// The DDS topic.
        topic: String,
        /// rustdds' reason.
        reason: String,
    },
    /// A write failed.
    #[error("write to DDS topic `{topic}` failed: {reason}")]
    Write {
        /// The DDS topic.
        topic: String,
        /// rustdds' reason.
        reason: String,
    },
    /// No writer can send this representation identifier.
    #[error("representation 0x{0:04x} cannot be written")]
    Representation(u16),
}

macro_rules! raw_writers {
    ($($v:ident = $rep:literal),* $(,)?) => {
        /// A raw writer of one output representation, keyless or keyed.
        pub enum RawWriter {
            $(
                #[doc = concat!("Keyless writer of representation ", stringify!($rep), ".")]
                $v(no_key::DataWriter<RawSample, RawSer<$rep>>),
            )*
            /// A keyed writer (see [`KeyedWriter`]).
            Keyed(KeyedWriter),
        }

        /// A raw keyed writer of one output representation.
        pub enum KeyedWriter {
            $(
                #[doc = concat!("Keyed writer of representation ", stringify!($rep), ".")]
                $v(with_key::DataWriter<RawSample, RawSer<$rep>>),
            )*
        }

        impl RawWriter {
            /// Creates a writer on `topic` sending representation `rep`.
            pub fn create(
                publisher: &Publisher,
                topic: &Topic,
                spec: &TopicSpec,
                rep: u16,
            ) -> Result<RawWriter, EndpointError> {
                let qos = Some(spec.writer_qos(rep));
                let err = |e: rustdds::dds::CreateError| EndpointError::Create {
                    what: "writer",
                    topic: spec.dds_name.clone(),
                    reason: e.to_string(),
                };
                match (rep, spec.keyed) {
                    $(
                        ($rep, false) => publisher
                            .create_datawriter_no_key::<RawSample, RawSer<$rep>>(topic, qos)
                            .map(RawWriter::$v)
                            .map_err(err),
                        ($rep, true) => publisher
                            .create_datawriter::<RawSample, RawSer<$rep>>(topic, qos)
                            .map(|w| RawWriter::Keyed(KeyedWriter::$v(w)))
                            .map_err(err),
                    )*
                    _ => Err(EndpointError::Representation(rep)),
                }
            }

            /// Writes one sample.
            pub async fn write(
                &self,
                sample: RawSample,
                ts: Option<Timestamp>,
                topic: &str,
            ) -> Result<(), EndpointError> {
                let err = |e: String| EndpointError::Write {
                    topic: topic.to_string(),
                    reason: e,
                };
                match self {
                    $(
                        RawWriter::$v(w) => w.async_write(sample, ts).await.map_err(|e| err(e.to_string())),
                    )*
                    RawWriter::Keyed(k) => match k {
                        $(
                            KeyedWriter::$v(w) => w.async_write(sample, ts).await.map_err(|e| err(e.to_string())),
                        )*
                    },
                }
            }

            /// Disposes an instance (keyed writers only; a no-op otherwise).
            pub fn dispose(&self, key: &RawKey, ts: Option<Timestamp>, topic: &str) -> Result<(), EndpointError> {
                let err = |e: String| EndpointError::Write {
                    topic: topic.to_string(),
                    reason: e,
                };
                match self {
                    RawWriter::Keyed(k) => match k {
                        $(
                            KeyedWriter::$v(w) => w.dispose(key, ts).map_err(|e| err(e.to_string())),
                        )*
                    },
                    _ => Ok(()),
                }
            }
        }
    };
}

raw_writers!(
    CdrBe = 0x0000,
    CdrLe = 0x0001,
    PlCdrBe = 0x0002,
    PlCdrLe = 0x0003,
    Cdr2Be = 0x0006,
    Cdr2Le = 0x0007,
    DCdr2Be = 0x0008,
    DCdr2Le = 0x0009,
    PlCdr2Be = 0x000a,
    PlCdr2Le = 0x000b,
);

/// One thing a reader produced.
#[derive(Debug)]
pub enum ReadItem {
    /// A sample.
    Sample {
        /// The payload.
        sample: RawSample,
        /// The writer.
        writer: GUID,
        /// The source timestamp.
        source_time: Option<SystemTime>,
    },
    /// An instance became not alive (keyed topics).
    Instance {
        /// The instance key.
        key: RawKey,
        /// Disposed or unregistered (no writers).
        state: InstanceState,
        /// The writer.
        writer: GUID,
        /// The source timestamp.
        source_time: Option<SystemTime>,
    },
    /// A read error (a sample that could not be taken).
    Error(String),
}

/// A stream of everything a raw reader reads.
pub type ReadStream = BoxStream<'static, ReadItem>;

/// Converts an RTPS timestamp to system time.
pub fn system_time(ts: Option<Timestamp>) -> Option<SystemTime> {
    let ticks = ts?.to_ticks();
    let secs = ticks >> 32;
    let nanos = ((ticks & 0xffff_ffff) * 1_000_000_000) >> 32;
    UNIX_EPOCH.checked_add(Duration::new(secs, u32::try_from(nanos).unwrap_or(0)))
}

/// Converts system time to an RTPS timestamp (`None` before 1970 or after 2106).
pub fn rtps_time(t: SystemTime) -> Option<Timestamp> {
    let d = t.duration_since(UNIX_EPOCH).ok()?;
    let secs = u32::try_from(d.as_secs()).ok()?;
    let frac = (u64::from(d.subsec_nanos()) << 32) / 1_000_000_000;
    Some(Timestamp::from_ticks((u64::from(secs) << 32) | frac))
}

/// Creates a raw reader on `topic` and returns its stream.
pub fn create_reader(
    subscriber: &Subscriber,
    topic: &Topic,
    spec: &TopicSpec,
) -> Result<ReadStream, EndpointError> {
    let qos = Some(spec.reader_qos());
    let err = |e: rustdds::dds::CreateError| EndpointError::Create {
        what: "reader",
        topic: spec.dds_name.clone(),
        reason: e.to_string(),
    };
    if spec.keyed {
        let reader = subscriber
            .create_datareader::<RawSample, RawDe>(topic, qos)
            .map_err(err)?;
        Ok(reader
            .async_sample_stream()
            .map(|r| match r {
                Ok(ds) => {
                    let info = ds.sample_info().clone();
                    let writer = info.writer_guid();
                    let source_time = system_time(info.source_timestamp());
                    match ds.into_value() {
                        with_key::Sample::Value(sample) => ReadItem::Sample {
                            sample,
                            writer,
                            source_time,
                        },
                        with_key::Sample::Dispose(key) => ReadItem::Instance {
                            key,
                            state: info.instance_state(),
                            writer,
                            source_time,
                        },
                    }
                }
                Err(e) => ReadItem::Error(e.to_string()),
            })
            .boxed())
    } else {
        let reader = subscriber
            .create_datareader_no_key::<RawSample, RawDe>(topic, qos)
            .map_err(err)?;
        Ok(reader
            .async_sample_stream()
            .map(|r| match r {
                Ok(ds) => {
                    let info = ds.sample_info();
                    let writer = info.writer_guid();
                    let source_time = system_time(info.source_timestamp());
                    ReadItem::Sample {
                        sample: ds.into_value(),
                        writer,
                        source_time,
                    }
                }
                Err(e) => ReadItem::Error(e.to_string()),
            })
            .boxed())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_round_trip() {
        let t = UNIX_EPOCH + Duration::new(1_700_000_000, 123_456_789);
        let back = system_time(rtps_time(t)).unwrap();
        let diff = back.duration_since(t).unwrap_or_else(|e| e.duration());
        assert!(diff < Duration::from_micros(1), "{diff:?}");
    }

    #[test]
    fn writer_representation_follows_sample() {
        let spec = TopicSpec {
            dds_name: "t".into(),
            dds_type: "T".into(),
            keyed: false,
            reliability: Reliability::Reliable,
            durability: Durability::TransientLocal,
            history: 3,
            deadline: None,
            lifespan: None,
        };
        assert_eq!(
            spec.writer_qos(0x0009).data_representation().unwrap().value,
            vec![XCDR2_DATA_REPRESENTATION]
        );
        assert_eq!(
            spec.writer_qos(0x0001).data_representation().unwrap().value,
            vec![XCDR_DATA_REPRESENTATION]
        );
        assert_eq!(
            spec.reader_qos().data_representation().unwrap().value,
            vec![XCDR_DATA_REPRESENTATION, XCDR2_DATA_REPRESENTATION]
        );
        assert!(!spec.writer_qos(1).is_volatile());
    }
}
