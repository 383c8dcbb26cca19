//! rumqttc's QoS values, shared by the broker and the client; and a PUBLISH
//! without MQTT 5 properties, encoded straight into the write buffer: the common case of both the embedded broker and the client, with
//! no intermediate packet value (rumqttc's writers take an owned topic, an
//! allocation and a copy per message). Byte for byte what rumqttc writes
//! (unit test below); anything with properties still goes through rumqttc.

use bytes::{BufMut, BytesMut};

/// rumqttc's 3.1.1 QoS for 0, 1, 2 (anything above 2 is 2).
pub(crate) fn qos4(n: u8) -> rumqttc::QoS {
    match n {
        0 => rumqttc::QoS::AtMostOnce,
        1 => rumqttc::QoS::AtLeastOnce,
        _ => rumqttc::QoS::ExactlyOnce,
    }
}

/// rumqttc's MQTT 5 QoS for 0, 1, 2 (anything above 2 is 2).
pub(crate) fn qos5(n: u8) -> rumqttc::v5::mqttbytes::QoS {
    match n {
        0 => rumqttc::v5::mqttbytes::QoS::AtMostOnce,
        1 => rumqttc::v5::mqttbytes::QoS::AtLeastOnce,
        _ => rumqttc::v5::mqttbytes::QoS::ExactlyOnce,
    }
}

/// The largest Remaining Length a packet can declare [MQTT-2.2.3].
const MAX_REMAINING: usize = 268_435_455;

/// What a plain PUBLISH carries.
pub(crate) struct PlainPublish<'a> {
    pub topic: &'a str,
    pub payload: &'a [u8],
    pub qos: u8,
    pub retain: bool,
    pub dup: bool,
    /// Packet identifier, written for QoS >= 1 only.
    pub pkid: u16,
}

/// The packet's size on the wire, or `None` when it cannot be encoded (a
/// topic over 65 535 bytes, a Remaining Length over the maximum).
pub(crate) fn plain_size(p: &PlainPublish<'_>, v5: bool) -> Option<usize> {
    if p.topic.len() > usize::from(u16::MAX) {
        return None;
    }
    let remaining =
        2 + p.topic.len() + if p.qos > 0 { 2 } else { 0 } + usize::from(v5) + p.payload.len();
    if remaining > MAX_REMAINING {
        return None;
    }
    let len_bytes = match remaining {
        0..=127 => 1,
        128..=16_383 => 2,
        16_384..=2_097_151 => 3,
        _ => 4,
    };
    Some(1 + len_bytes + remaining)
}

/// Appends the PUBLISH to `out` (3.1.1, or MQTT 5 with an empty property
/// list); its size, or `None` (nothing written) as [`plain_size`].
pub(crate) fn write_plain(out: &mut BytesMut, p: &PlainPublish<'_>, v5: bool) -> Option<usize> {
    let size = plain_size(p, v5)?;
    out.reserve(size);
    let qos = p.qos.min(2);
    out.put_u8(0x30 | (u8::from(p.dup) << 3) | (qos << 1) | u8::from(p.retain));
    let mut remaining =
        2 + p.topic.len() + if qos > 0 { 2 } else { 0 } + usize::from(v5) + p.payload.len();
    loop {
        let mut byte = (remaining % 128) as u8;
        remaining /= 128;
        if remaining > 0 {
            byte |= 0x80;
        }
        out.put_u8(byte);
        if remaining == 0 {
            break;
        }
    }
    // Checked by plain_size: the topic fits in u16.
    out.put_u16(p.topic.len() as u16);
    out.put_slice(p.topic.as_bytes());
    if qos > 0 {
        out.put_u16(p.pkid);
    }
    if v5 {
        // Property length 0.
        out.put_u8(0);
    }
    out.put_slice(p.payload);
    Some(size)
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    fn rumqttc4(p: &PlainPublish<'_>) -> BytesMut {
        let mut pk =
            rumqttc::Publish::from_bytes(p.topic, qos4(p.qos), Bytes::copy_from_slice(p.payload));
        pk.retain = p.retain;
        pk.dup = p.dup;
        pk.pkid = p.pkid;
        let mut b = BytesMut::new();
        rumqttc::Packet::Publish(pk)
            .write(&mut b, usize::MAX)
            .unwrap();
        b
    }

    fn rumqttc5(p: &PlainPublish<'_>) -> BytesMut {
        use rumqttc::v5::mqttbytes::v5;
        let mut pk = v5::Publish::new(
            p.topic,
            qos5(p.qos),
            Bytes::copy_from_slice(p.payload),
            None,
        );
        pk.retain = p.retain;
        pk.dup = p.dup;
        pk.pkid = p.pkid;
        let mut b = BytesMut::new();
        v5::Packet::Publish(pk).write(&mut b, None).unwrap();
        b
    }

    #[test]
    fn plain_publish_is_what_rumqttc_writes() {
        let topics = ["a", "bench/x", "", &"t".repeat(300)];
        // Around each Remaining Length boundary.
        let sizes = [
            0usize, 1, 64, 113, 118, 125, 126, 127, 128, 16_370, 16_383, 16_384, 2_097_140,
            2_097_152,
        ];
        let mut n = 0;
        for topic in topics {
            for size in sizes {
                let payload = vec![0xA5u8; size];
                for qos in 0..=2u8 {
                    for (retain, dup) in
                        [(false, false), (true, false), (false, true), (true, true)]
                    {
                        let p = PlainPublish {
                            topic,
                            payload: &payload,
                            qos,
                            retain,
                            dup,
                            pkid: if qos > 0 { 4242 } else { 0 },
                        };
                        for v5 in [false, true] {
                            let mut ours = BytesMut::from(&b"prefix"[..]);
                            let written = write_plain(&mut ours, &p, v5);
                            let theirs = if v5 { rumqttc5(&p) } else { rumqttc4(&p) };
                            assert_eq!(written, Some(theirs.len()), "{topic} {size} {qos} {v5}");
                            assert_eq!(&ours[..6], b"prefix");
                            assert!(
                                ours[6..] == theirs[..],
                                "{topic} {size} {qos} {retain} {dup} {v5}"
                            );
                            n += 1;
                        }
                    }
                }
            }
        }
        assert_eq!(n, 4 * 14 * 3 * 4 * 2);
    }

    #[test]
    fn what_cannot_be_encoded_is_refused_and_not_written() {
        let long = "t".repeat(65_536);
        let mut out = BytesMut::new();
        let p = PlainPublish {
            topic: &long,
            payload: b"x",
            qos: 0,
            retain: false,
            dup: false,
            pkid: 0,
        };
        assert_eq!(write_plain(&mut out, &p, false), None);
        assert!(out.is_empty());
        let fits = "t".repeat(65_535);
        let p = PlainPublish { topic: &fits, ..p };
        assert_eq!(
            write_plain(&mut out, &p, true),
            Some(1 + 3 + 2 + 65_535 + 1 + 1)
        );
    }
}
