//! Small wire helpers over coap-lite: option values, the Block option, option
//! validation, and packet builders.

use std::net::SocketAddr;

use coap_lite::{CoapOption, MessageClass, MessageType, Packet, ResponseType};

/// RFC 7252 EXCHANGE_LIFETIME with default transmission parameters.
pub(crate) const EXCHANGE_LIFETIME_SECS: u64 = 247;
/// RFC 7252 NON_LIFETIME.
pub(crate) const NON_LIFETIME_SECS: u64 = 145;

/// A datagram to send.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Transmit {
    /// Destination.
    pub to: SocketAddr,
    /// The datagram.
    pub bytes: Vec<u8>,
}

/// Decodes a CoAP uint option value (at most `max` bytes).
pub(crate) fn uint(v: &[u8], max: usize) -> Option<u32> {
    if v.len() > max || v.len() > 4 {
        return None;
    }
    Some(v.iter().fold(0u32, |a, b| (a << 8) | u32::from(*b)))
}

/// Encodes a uint option value in the fewest bytes.
pub(crate) fn enc_uint(n: u32) -> Vec<u8> {
    let b = n.to_be_bytes();
    let skip = b.iter().take_while(|x| **x == 0).count();
    b[skip..].to_vec()
}

/// The Block1/Block2 option value (RFC 7959 section 2.2).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Block {
    pub(crate) num: u32,
    pub(crate) more: bool,
    pub(crate) szx: u8,
}

impl Block {
    /// Decodes; `None` when malformed (over 3 bytes or SZX 7).
    pub(crate) fn decode(v: &[u8]) -> Option<Block> {
        let n = uint(v, 3)?;
        let szx = (n & 7) as u8;
        if szx == 7 {
            return None;
        }
        Some(Block {
            num: n >> 4,
            more: n & 8 != 0,
            szx,
        })
    }

    pub(crate) fn encode(self) -> Vec<u8> {
        enc_uint((self.num << 4) | (u32::from(self.more) << 3) | u32::from(self.szx))
    }

    pub(crate) fn size(self) -> usize {
        1usize << (self.szx + 4)
    }

    /// Byte offset of this block.
    pub(crate) fn offset(self) -> usize {
        (self.num as usize).saturating_mul(self.size())
    }
}

/// Block size of an SZX.
pub(crate) fn block_size(szx: u8) -> usize {
    1usize << (szx.min(6) + 4)
}

/// What is wrong with a request's options.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum OptionProblem {
    /// An unrecognized critical option: 4.02.
    UnknownCritical(u16),
    /// A recognized option with a bad value or repeated: 4.00.
    Malformed(u16),
    /// Proxy-Uri / Proxy-Scheme: 5.05.
    Proxy,
}

/// Checks every option of a request: known ones well-formed, unknown ones
/// elective.
pub(crate) fn check_options(p: &Packet) -> Result<(), OptionProblem> {
    for (num, values) in p.options() {
        let num = *num;
        let (max_len, repeatable) = match num {
            1 => (8, true),        // If-Match
            3 => (255, false),     // Uri-Host
            4 => (8, true),        // ETag (request: repeatable)
            5 => (0, false),       // If-None-Match
            6 => (3, false),       // Observe
            7 => (2, false),       // Uri-Port
            11 => (255, true),     // Uri-Path
            12 => (2, false),      // Content-Format
            14 => (4, false),      // Max-Age
            15 => (255, true),     // Uri-Query
            17 => (2, false),      // Accept
            23 | 27 => (3, false), // Block2, Block1
            28 | 60 => (4, false), // Size2, Size1
            35 | 39 => return Err(OptionProblem::Proxy),
            258 => (1, false), // No-Response
            n if n & 1 == 1 => return Err(OptionProblem::UnknownCritical(n)),
            _ => continue,
        };
        if !repeatable && values.len() > 1 {
            return Err(OptionProblem::Malformed(num));
        }
        if values.iter().any(|v| v.len() > max_len) {
            return Err(OptionProblem::Malformed(num));
        }
        if (num == 1 || num == 4) && values.iter().any(|v| num == 4 && v.is_empty()) {
            return Err(OptionProblem::Malformed(num));
        }
        if (num == 23 || num == 27) && values.iter().any(|v| Block::decode(v).is_none()) {
            return Err(OptionProblem::Malformed(num));
        }
    }
    Ok(())
}

/// The first value of a uint option: `Ok(None)` when absent.
pub(crate) fn opt_uint(p: &Packet, o: CoapOption, max: usize) -> Result<Option<u32>, ()> {
    match p.get_first_option(o) {
        None => Ok(None),
        Some(v) => uint(v, max).map(Some).ok_or(()),
    }
}

/// The Block option `o`, if present and well-formed.
pub(crate) fn opt_block(p: &Packet, o: CoapOption) -> Option<Block> {
    p.get_first_option(o).and_then(|v| Block::decode(v))
}

/// A response to `req`: piggybacked ACK for CON, NON (with `mid`) otherwise.
pub(crate) fn response_to(req: &Packet, code: ResponseType, non_mid: u16) -> Packet {
    let mut r = Packet::new();
    if req.header.get_type() == MessageType::Confirmable {
        r.header.set_type(MessageType::Acknowledgement);
        r.header.message_id = req.header.message_id;
    } else {
        r.header.set_type(MessageType::NonConfirmable);
        r.header.message_id = non_mid;
    }
    r.header.code = MessageClass::Response(code);
    r.set_token(req.get_token().to_vec());
    r
}

/// An empty ACK or RST for message id `mid`.
pub(crate) fn empty(t: MessageType, mid: u16) -> Vec<u8> {
    let [a, b] = mid.to_be_bytes();
    let ty: u8 = match t {
        MessageType::Confirmable => 0,
        MessageType::NonConfirmable => 1,
        MessageType::Acknowledgement => 2,
        MessageType::Reset => 3,
    };
    vec![0x40 | (ty << 4), 0, a, b]
}

/// Serializes a packet without coap-lite's 1280-byte limit.
pub(crate) fn bytes(p: &Packet) -> Vec<u8> {
    p.to_bytes_unlimited().unwrap_or_default()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn block_round_trip() {
        for (num, more, szx) in [
            (0, false, 0),
            (1, true, 6),
            (4095, true, 2),
            (1 << 19, false, 6),
        ] {
            let b = Block { num, more, szx };
            assert_eq!(Block::decode(&b.encode()), Some(b));
        }
        assert_eq!(Block::decode(&[7]), None);
        assert_eq!(Block::decode(&[0, 0, 0, 1]), None);
        assert_eq!(
            Block::decode(&[]).unwrap(),
            Block {
                num: 0,
                more: false,
                szx: 0
            }
        );
        assert_eq!(
            Block {
                num: 2,
                more: false,
                szx: 6
            }
            .offset(),
            2048
        );
    }

    #[test]
    fn uints() {
        assert_eq!(enc_uint(0), Vec::<u8>::new());
        assert_eq!(enc_uint(256), vec![1, 0]);
        assert_eq!(uint(&[1, 0], 4), Some(256));
        assert_eq!(uint(&[1, 0, 0], 2), None);
        assert_eq!(empty(MessageType::Reset, 0x1234), vec![0x70, 0, 0x12, 0x34]);
    }

    #[test]
    fn option_checks() {
        let mut p = Packet::new();
        p.add_option(CoapOption::UriPath, b"a".to_vec());
        p.add_option(CoapOption::UriPath, b"b".to_vec());
        assert_eq!(check_options(&p), Ok(()));
        p.add_option(CoapOption::Unknown(2048), vec![1]);
        assert_eq!(check_options(&p), Ok(()));
        p.add_option(CoapOption::Unknown(2049), vec![1]);
        assert_eq!(check_options(&p), Err(OptionProblem::UnknownCritical(2049)));
        let mut p = Packet::new();
        p.add_option(CoapOption::ContentFormat, vec![1, 2, 3]);
        assert_eq!(check_options(&p), Err(OptionProblem::Malformed(12)));
        let mut p = Packet::new();
        p.add_option(CoapOption::Block2, vec![0x0f]);
        assert_eq!(check_options(&p), Err(OptionProblem::Malformed(23)));
        let mut p = Packet::new();
        p.add_option(CoapOption::ProxyUri, b"coap://x".to_vec());
        assert_eq!(check_options(&p), Err(OptionProblem::Proxy));
    }
}
