//! What discovery tells the adapter: the topics other participants write and
//! read, with type name, keyedness and the QoS a matching reader needs, and
//! which participants are other switchboard bridges.
//!
//! Discovery is polled from rustdds' discovery database
//! (`discovered_writers()` / `discovered_readers()`), which never reports
//! anything from our own participant once filtered by GUID prefix.

use std::collections::{BTreeMap, HashSet};

use rustdds::{GUID, policy};

use crate::config::{Durability, Reliability};

/// The topic every switchboard bridge announces a writer on, so that bridges
/// on one domain recognise each other (loop guard). Nothing is written to it.
pub const BRIDGE_MARKER_TOPIC: &str = "switchboard_bridge";
/// The type name of [`BRIDGE_MARKER_TOPIC`].
pub const BRIDGE_MARKER_TYPE: &str = "switchboard::Bridge";

/// A participant's GUID prefix.
pub type GuidPrefix = [u8; 12];

/// The participant GUID prefix of an entity GUID.
pub fn prefix_of(guid: &GUID) -> GuidPrefix {
    let b = guid.to_bytes();
    let mut p = [0u8; 12];
    p.copy_from_slice(&b[..12]);
    p
}

/// RTPS entity kinds of user-defined keyed writers and readers.
const WRITER_WITH_KEY: u8 = 0x02;
const READER_WITH_KEY: u8 = 0x07;

/// The entity kind octet of a GUID (its last byte).
fn kind_of(guid: &GUID) -> u8 {
    guid.to_bytes()[15]
}

fn is_user_defined(kind: u8) -> bool {
    kind & 0xf0 == 0
}

/// One remote endpoint as discovery reports it (the parts we use).
#[derive(Clone, Debug, PartialEq)]
pub struct RemoteEndpoint {
    /// Its participant.
    pub participant: GuidPrefix,
    /// Writer (true) or reader.
    pub is_writer: bool,
    /// WITH_KEY entity.
    pub keyed: bool,
    /// The DDS topic name.
    pub topic: String,
    /// The DDS type name.
    pub type_name: String,
    /// Reliability, if announced.
    pub reliability: Option<Reliability>,
    /// Durability, if announced.
    pub durability: Option<Durability>,
}

/// What is known about one remote topic.
#[derive(Clone, Debug, PartialEq)]
pub struct RemoteTopic {
    /// The DDS type name (of the first endpoint seen).
    pub type_name: String,
    /// Whether its endpoints are keyed.
    pub keyed: bool,
    /// Writers not belonging to a bridge.
    pub writers: usize,
    /// Writers belonging to other bridges.
    pub bridge_writers: usize,
    /// Readers.
    pub readers: usize,
    /// The reliability a reader must ask for to match every writer (best
    /// effort if any writer is best effort).
    pub reliability: Reliability,
    /// The durability a reader may ask for to match every writer (volatile
    /// if any writer is volatile).
    pub durability: Durability,
}

/// A snapshot of discovery.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Snapshot {
    /// Remote topics by DDS name.
    pub topics: BTreeMap<String, RemoteTopic>,
    /// Participants of other switchboard bridges.
    pub bridges: HashSet<GuidPrefix>,
}

fn reliability(r: Option<policy::Reliability>) -> Option<Reliability> {
    r.map(|r| match r {
        policy::Reliability::BestEffort => Reliability::BestEffort,
        policy::Reliability::Reliable { .. } => Reliability::Reliable,
    })
}

fn durability(d: Option<policy::Durability>) -> Option<Durability> {
    d.map(|d| match d {
        policy::Durability::Volatile => Durability::Volatile,
        _ => Durability::TransientLocal,
    })
}

/// Reads rustdds' discovery database, dropping our own and built-in endpoints.
pub fn poll(participant: &rustdds::DomainParticipant, own: GuidPrefix) -> Vec<RemoteEndpoint> {
    let mut out = Vec::new();
    for w in participant.discovered_writers() {
        let d = &w.publication_topic_data;
        let kind = kind_of(&d.key);
        if prefix_of(&d.key) == own || !is_user_defined(kind) {
            continue;
        }
        out.push(RemoteEndpoint {
            participant: prefix_of(&d.key),
            is_writer: true,
            keyed: kind == WRITER_WITH_KEY,
            topic: d.topic_name.clone(),
            type_name: d.type_name.clone(),
            reliability: reliability(d.reliability),
            durability: durability(d.durability),
        });
    }
    for r in participant.discovered_readers() {
        let d = &r.subscription_topic_data;
        let key = d.key();
        let qos = d.qos();
        let kind = kind_of(&key);
        if prefix_of(&key) == own || !is_user_defined(kind) {
            continue;
        }
        out.push(RemoteEndpoint {
            participant: prefix_of(&key),
            is_writer: false,
            keyed: kind == READER_WITH_KEY,
            topic: d.topic_name().clone(),
            type_name: d.type_name().clone(),
            reliability: reliability(qos.reliability()),
            durability: durability(qos.durability()),
        });
    }
    out
}

/// Aggregates endpoints into a snapshot (pure; the unit tests drive it).
pub fn aggregate(endpoints: &[RemoteEndpoint]) -> Snapshot {
    let mut snap = Snapshot::default();
    for e in endpoints {
        if e.is_writer && e.topic == BRIDGE_MARKER_TOPIC {
            snap.bridges.insert(e.participant);
        }
    }
    for e in endpoints {
        if e.topic == BRIDGE_MARKER_TOPIC {
            continue;
        }
        let t = snap.topics.entry(e.topic.clone()).or_insert(RemoteTopic {
            type_name: e.type_name.clone(),
            keyed: e.keyed,
            writers: 0,
            bridge_writers: 0,
            readers: 0,
            reliability: Reliability::Reliable,
            durability: Durability::TransientLocal,
        });
        if !e.is_writer {
            t.readers += 1;
            continue;
        }
        if snap.bridges.contains(&e.participant) {
            t.bridge_writers += 1;
        } else {
            t.writers += 1;
        }
        if e.reliability != Some(Reliability::Reliable) {
            // A writer that announces nothing is best effort by default.
            t.reliability = Reliability::BestEffort;
        }
        if e.durability != Some(Durability::TransientLocal) {
            t.durability = Durability::Volatile;
        }
    }
    // A topic only read remotely: our writer's QoS comes from the readers.
    for (name, t) in snap.topics.iter_mut() {
        if t.writers + t.bridge_writers == 0 {
            let readers: Vec<_> = endpoints
                .iter()
                .filter(|e| !e.is_writer && &e.topic == name)
                .collect();
            t.reliability = if readers
                .iter()
                .any(|e| e.reliability == Some(Reliability::Reliable))
            {
                Reliability::Reliable
            } else {
                Reliability::BestEffort
            };
            t.durability = if readers
                .iter()
                .any(|e| e.durability == Some(Durability::TransientLocal))
            {
                Durability::TransientLocal
            } else {
                Durability::Volatile
            };
        }
    }
    snap
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ep(p: u8, w: bool, topic: &str, r: Reliability, d: Durability) -> RemoteEndpoint {
        RemoteEndpoint {
            participant: [p; 12],
            is_writer: w,
            keyed: false,
            topic: topic.into(),
            type_name: "T".into(),
            reliability: Some(r),
            durability: Some(d),
        }
    }

    #[test]
    fn weakest_writer_qos_wins() {
        use Durability::*;
        use Reliability::*;
        let snap = aggregate(&[
            ep(1, true, "a", Reliable, TransientLocal),
            ep(2, true, "a", BestEffort, TransientLocal),
            ep(3, true, "b", Reliable, TransientLocal),
            ep(4, true, "c", Reliable, Volatile),
            ep(5, false, "d", Reliable, TransientLocal),
            ep(6, false, "e", BestEffort, Volatile),
        ]);
        let t = |n: &str| snap.topics[n].clone();
        assert_eq!(
            (t("a").reliability, t("a").durability),
            (BestEffort, TransientLocal)
        );
        assert_eq!(
            (t("b").reliability, t("b").durability),
            (Reliable, TransientLocal)
        );
        assert_eq!(
            (t("c").reliability, t("c").durability),
            (Reliable, Volatile)
        );
        assert_eq!(
            (t("d").reliability, t("d").durability),
            (Reliable, TransientLocal)
        );
        assert_eq!(
            (t("e").reliability, t("e").durability),
            (BestEffort, Volatile)
        );
        assert_eq!(t("a").writers, 2);
        assert_eq!(t("d").readers, 1);
    }

    #[test]
    fn bridges_are_recognised() {
        use Durability::*;
        use Reliability::*;
        let snap = aggregate(&[
            ep(7, true, BRIDGE_MARKER_TOPIC, BestEffort, Volatile),
            ep(7, true, "x", Reliable, Volatile),
            ep(8, true, "x", Reliable, Volatile),
        ]);
        assert!(snap.bridges.contains(&[7; 12]));
        assert!(!snap.topics.contains_key(BRIDGE_MARKER_TOPIC));
        assert_eq!(snap.topics["x"].bridge_writers, 1);
        assert_eq!(snap.topics["x"].writers, 1);
    }
}
