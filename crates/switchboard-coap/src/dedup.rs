//! Message-id deduplication (RFC 7252 section 4.5): remembers `(peer, mid)`
//! of received CON and NON messages for EXCHANGE_LIFETIME / NON_LIFETIME with
//! the response sent, bounded in entries (the oldest is forgotten first).

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

/// What a duplicate gets.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Seen {
    /// Not seen before (now remembered).
    New,
    /// A duplicate; resend this response if any.
    Duplicate(Option<Vec<u8>>),
}

/// Until when an entry is kept, and the response sent.
type Remembered = (Instant, Option<Vec<u8>>);

#[derive(Debug)]
pub(crate) struct Dedup {
    map: HashMap<(SocketAddr, u16), Remembered>,
    order: VecDeque<(Instant, SocketAddr, u16)>,
    capacity: usize,
    pub(crate) evicted: u64,
}

impl Dedup {
    pub(crate) fn new(capacity: usize) -> Self {
        Dedup {
            map: HashMap::new(),
            order: VecDeque::new(),
            capacity: capacity.max(1),
            evicted: 0,
        }
    }

    /// Checks `(peer, mid)` and remembers it until `now + lifetime`.
    pub(crate) fn check(&mut self, peer: SocketAddr, mid: u16, now: Instant, con: bool) -> Seen {
        self.expire(now);
        if let Some((_, resp)) = self.map.get(&(peer, mid)) {
            return Seen::Duplicate(resp.clone());
        }
        while self.map.len() >= self.capacity {
            let Some((_, p, m)) = self.order.pop_front() else {
                break;
            };
            if self.map.remove(&(p, m)).is_some() {
                self.evicted += 1;
            }
        }
        let life = Duration::from_secs(if con {
            super::wire::EXCHANGE_LIFETIME_SECS
        } else {
            super::wire::NON_LIFETIME_SECS
        });
        let until = now + life;
        self.map.insert((peer, mid), (until, None));
        self.order.push_back((until, peer, mid));
        Seen::New
    }

    /// Records the response sent for `(peer, mid)`.
    pub(crate) fn set_response(&mut self, peer: SocketAddr, mid: u16, resp: &[u8]) {
        if let Some(e) = self.map.get_mut(&(peer, mid)) {
            e.1 = Some(resp.to_vec());
        }
    }

    fn expire(&mut self, now: Instant) {
        // NON entries expire earlier than CON ones queued before them; the
        // order is by insertion, so a few may outlive their lifetime until
        // the ones before them expire (harmless, still bounded).
        while let Some((until, p, m)) = self.order.front().copied() {
            if until > now {
                break;
            }
            self.order.pop_front();
            if self.map.get(&(p, m)).is_some_and(|e| e.0 == until) {
                self.map.remove(&(p, m));
            }
        }
        if self.order.len() > self.capacity.saturating_mul(2) {
            self.order
                .retain(|(u, p, m)| self.map.get(&(*p, *m)).is_some_and(|e| e.0 == *u));
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.map.len()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn duplicates_and_expiry() {
        let p: SocketAddr = "127.0.0.1:1".parse().unwrap();
        let t0 = Instant::now();
        let mut d = Dedup::new(2);
        assert_eq!(d.check(p, 1, t0, true), Seen::New);
        d.set_response(p, 1, b"r");
        assert_eq!(
            d.check(p, 1, t0, true),
            Seen::Duplicate(Some(b"r".to_vec()))
        );
        assert_eq!(d.check(p, 2, t0, false), Seen::New);
        assert_eq!(d.check(p, 2, t0, false), Seen::Duplicate(None));
        assert_eq!(d.check(p, 3, t0, true), Seen::New);
        assert_eq!(d.len(), 2);
        assert_eq!(d.evicted, 1);
        let later = t0 + Duration::from_secs(248);
        assert_eq!(d.check(p, 3, later, true), Seen::New);
        assert_eq!(d.len(), 1);
    }
}
