//! RTP port allocation: blocks of consecutive even/odd pairs from the
//! configured range.
//!
//! A call with `n` streams gets ports `P, P+2, ..., P+2(n-1)` (the odd port
//! of each pair is kept for RTCP), all from one block of `2n` consecutive
//! ports. Consecutive pairs are what recording clients that address the
//! streams by offset from the first answered port expect (SIPp's
//! `play_pcap_audio` does). A freed pair rests for the configured time before
//! it is handed out again, so that late packets of one call never land in
//! the next. The allocator is pure: time is an argument.

use std::time::{Duration, Instant};

/// Hands out RTP port pairs.
#[derive(Debug)]
pub struct PortAllocator {
    /// The even port of pair 0.
    base: u16,
    /// Per pair: `None` in use, `Some(t)` free since `t` (None = never used).
    pairs: Vec<PairState>,
    rest: Duration,
    /// Where the next search starts (round robin, so ports are reused as
    /// late as possible).
    cursor: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum PairState {
    Free,
    Resting(Instant),
    InUse,
}

impl PortAllocator {
    /// Pairs from `min` (rounded up to even) to `max`; a freed pair rests
    /// for `rest`.
    pub fn new(min: u16, max: u16, rest: Duration) -> Self {
        let base = min + (min % 2);
        let count = if max > base {
            usize::from(max - base).div_ceil(2)
        } else {
            0
        };
        PortAllocator {
            base,
            pairs: vec![PairState::Free; count],
            rest,
            cursor: 0,
        }
    }

    /// How many pairs the range holds.
    pub fn capacity(&self) -> usize {
        self.pairs.len()
    }

    /// Pairs in use.
    pub fn in_use(&self) -> usize {
        self.pairs
            .iter()
            .filter(|p| **p == PairState::InUse)
            .count()
    }

    fn available(&self, i: usize, now: Instant) -> bool {
        match self.pairs[i] {
            PairState::Free => true,
            PairState::Resting(since) => now.saturating_duration_since(since) >= self.rest,
            PairState::InUse => false,
        }
    }

    /// `n` consecutive pairs: returns the even RTP port of each, or `None`
    /// when the range has no such free block.
    pub fn allocate(&mut self, n: usize, now: Instant) -> Option<Vec<u16>> {
        let len = self.pairs.len();
        if n == 0 {
            return Some(Vec::new());
        }
        if n > len {
            return None;
        }
        for step in 0..len {
            let start = (self.cursor + step) % len;
            if start + n > len {
                continue;
            }
            if (start..start + n).all(|i| self.available(i, now)) {
                for i in start..start + n {
                    self.pairs[i] = PairState::InUse;
                }
                self.cursor = (start + n) % len;
                return Some(
                    (start..start + n)
                        .map(|i| self.base + 2 * i as u16)
                        .collect(),
                );
            }
        }
        None
    }

    /// Gives back the pairs of these RTP ports; they rest from `now`.
    pub fn release(&mut self, ports: &[u16], now: Instant) {
        for &p in ports {
            if p < self.base {
                continue;
            }
            let i = usize::from(p - self.base) / 2;
            if let Some(state) = self.pairs.get_mut(i) {
                *state = PairState::Resting(now);
            }
        }
    }

    /// Marks a pair unusable (its port could not be bound): it rests, and
    /// the caller tries another block.
    pub fn quarantine(&mut self, port: u16, now: Instant) {
        self.release(&[port], now);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn consecutive_pairs_rest_before_reuse() {
        let t0 = Instant::now();
        let mut a = PortAllocator::new(40001, 40011, Duration::from_secs(10));
        // 40002..=40011: pairs 40002, 40004, 40006, 40008, 40010
        assert_eq!(a.capacity(), 5);
        let first = a.allocate(2, t0).unwrap();
        assert_eq!(first, vec![40002, 40004]);
        let second = a.allocate(2, t0).unwrap();
        assert_eq!(second, vec![40006, 40008]);
        // One pair left; a block of two does not fit.
        assert_eq!(a.allocate(2, t0), None);
        a.release(&first, t0);
        // Resting: still not available.
        assert_eq!(a.allocate(2, t0 + Duration::from_secs(9)), None);
        let third = a.allocate(1, t0 + Duration::from_secs(9)).unwrap();
        assert_eq!(third, vec![40010]);
        let again = a.allocate(2, t0 + Duration::from_secs(10)).unwrap();
        assert_eq!(again, vec![40002, 40004]);
        assert_eq!(a.in_use(), 5);
        assert_eq!(a.allocate(1, t0 + Duration::from_secs(60)), None);
    }

    #[test]
    fn round_robin_prefers_ports_not_recently_used() {
        let t0 = Instant::now();
        let mut a = PortAllocator::new(1000, 1009, Duration::ZERO);
        let p = a.allocate(1, t0).unwrap();
        a.release(&p, t0);
        // Free at once (no rest), but the next call gets the next pair.
        assert_eq!(a.allocate(1, t0).unwrap(), vec![1002]);
    }
}
