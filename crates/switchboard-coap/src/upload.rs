//! Block1 reassembly (RFC 7959 section 2.5): one upload per client address and
//! resource, in order, bounded in count and size; idle uploads expire.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use switchboard_model::Topic;

use crate::wire::Block;

/// How long an unfinished upload is kept without a new block.
const IDLE: Duration = Duration::from_secs(60);

/// The outcome of one Block1 request.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Step {
    /// More blocks expected: answer 2.31 Continue with this Block1.
    Continue(Block),
    /// The body is complete.
    Done(Vec<u8>),
    /// Out of order or unknown upload: 4.08.
    Incomplete,
    /// Larger than allowed: 4.13.
    TooLarge,
    /// A non-final block of the wrong size: 4.00.
    Bad,
}

#[derive(Debug)]
struct Upload {
    buf: Vec<u8>,
    expires: Instant,
}

#[derive(Debug, Default)]
pub(crate) struct Uploads {
    map: HashMap<(SocketAddr, Topic), Upload>,
    /// Uploads evicted because the table was full.
    pub(crate) evicted: u64,
}

impl Uploads {
    pub(crate) fn len(&self) -> usize {
        self.map.len()
    }

    pub(crate) fn next_expiry(&self) -> Option<Instant> {
        self.map.values().map(|u| u.expires).min()
    }

    pub(crate) fn expire(&mut self, now: Instant) {
        self.map.retain(|_, u| u.expires > now);
    }

    /// Feeds one block of an upload by `peer` to `topic`.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn feed(
        &mut self,
        peer: SocketAddr,
        topic: &Topic,
        blk: Block,
        data: &[u8],
        size1: Option<u32>,
        max_payload: usize,
        max_uploads: usize,
        now: Instant,
    ) -> Step {
        let key = (peer, topic.clone());
        if size1.is_some_and(|s| s as usize > max_payload) {
            self.map.remove(&key);
            return Step::TooLarge;
        }
        if blk.more && data.len() != blk.size() {
            self.map.remove(&key);
            return Step::Bad;
        }
        if blk.num == 0 {
            if !self.map.contains_key(&key) && self.map.len() >= max_uploads.max(1) {
                let oldest = self
                    .map
                    .iter()
                    .min_by_key(|(_, u)| u.expires)
                    .map(|(k, _)| k.clone());
                if let Some(k) = oldest {
                    self.map.remove(&k);
                    self.evicted += 1;
                }
            }
            self.map.insert(
                key.clone(),
                Upload {
                    buf: Vec::new(),
                    expires: now + IDLE,
                },
            );
        }
        let Some(u) = self.map.get_mut(&key) else {
            return Step::Incomplete;
        };
        if blk.offset() != u.buf.len() {
            // A retransmitted earlier block is not an error for the client
            // (dedup answers those); anything else is a gap.
            self.map.remove(&key);
            return Step::Incomplete;
        }
        if u.buf.len() + data.len() > max_payload {
            self.map.remove(&key);
            return Step::TooLarge;
        }
        u.buf.extend_from_slice(data);
        u.expires = now + IDLE;
        if blk.more {
            Step::Continue(blk)
        } else {
            self.map
                .remove(&key)
                .map_or(Step::Incomplete, |u| Step::Done(u.buf))
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn b(num: u32, more: bool) -> Block {
        Block { num, more, szx: 0 }
    }

    #[test]
    fn reassembles_in_order_and_rejects_gaps() {
        let p: SocketAddr = "127.0.0.1:9".parse().unwrap();
        let t = Topic::new("x").unwrap();
        let now = Instant::now();
        let mut u = Uploads::default();
        let d = [7u8; 16];
        assert_eq!(
            u.feed(p, &t, b(0, true), &d, None, 100, 4, now),
            Step::Continue(b(0, true))
        );
        assert_eq!(
            u.feed(p, &t, b(1, true), &d, None, 100, 4, now),
            Step::Continue(b(1, true))
        );
        assert_eq!(
            u.feed(p, &t, b(2, false), &d[..3], None, 100, 4, now),
            Step::Done(vec![7; 35])
        );
        assert_eq!(u.len(), 0);
        assert_eq!(
            u.feed(p, &t, b(3, false), &d, None, 100, 4, now),
            Step::Incomplete
        );
        u.feed(p, &t, b(0, true), &d, None, 100, 4, now);
        assert_eq!(
            u.feed(p, &t, b(2, true), &d, None, 100, 4, now),
            Step::Incomplete
        );
        assert_eq!(
            u.feed(p, &t, b(0, true), &d[..4], None, 100, 4, now),
            Step::Bad
        );
        assert_eq!(
            u.feed(p, &t, b(0, true), &d, Some(1000), 100, 4, now),
            Step::TooLarge
        );
        for i in 0..6 {
            u.feed(p, &t, b(i, true), &d, None, 80, 4, now);
        }
        assert_eq!(u.len(), 0, "over max_payload is dropped");
    }

    #[test]
    fn bounded_and_expiring() {
        let t = Topic::new("x").unwrap();
        let now = Instant::now();
        let mut u = Uploads::default();
        for port in 0..10u16 {
            let p = SocketAddr::from(([127, 0, 0, 1], port));
            u.feed(p, &t, b(0, true), &[0; 16], None, 100, 3, now);
        }
        assert_eq!(u.len(), 3);
        assert_eq!(u.evicted, 7);
        u.expire(now + IDLE + Duration::from_secs(1));
        assert_eq!(u.len(), 0);
    }
}
