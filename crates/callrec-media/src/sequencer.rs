//! Per-source RTP sequencing: puts one source's packets back in sending
//! order, drops duplicates, extends the 16-bit sequence number and the 32-bit
//! timestamp across wrap-around, and starts a new epoch (re-anchors) when the
//! stream restarts: a new SSRC, or a sequence number jump that a second
//! packet confirms (RFC 3550 appendix A.1's probation).
//!
//! Sans-IO: [`Sequencer::push`] a packet with its arrival time, then
//! [`Sequencer::pop`] with the current time until it returns `None`. A packet
//! is ready when it is the next expected one, or when waiting for a missing
//! one has lasted [`SequencerConfig::max_wait`] or the reorder window is
//! full; the skipped sequence numbers count as lost.
//!
//! The sequencer must never read a clock, never wait for a packet longer
//! than `max_wait` (arrival time) or `max_reorder` packets, and never emit a
//! sequence number twice in an epoch; popped after every push, it never
//! holds more than `max_reorder + 1` packets. It knows nothing of codecs or clock rates:
//! whether a timestamp jump is consistent with arrival time is the
//! timeline's question.

use std::collections::{BTreeMap, VecDeque};
use std::time::Duration;

use crate::rtp::RtpPacket;
use crate::timeline::MediaTime;

/// How long and how far the sequencer waits for missing packets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SequencerConfig {
    /// How long (in arrival time) a gap is waited for before it is skipped.
    pub max_wait: Duration,
    /// How many packets may be held while waiting; one more forces the gap to be skipped.
    pub max_reorder: usize,
    /// A forward sequence jump larger than this restarts the stream (RFC 3550: 3000).
    pub max_dropout: u16,
    /// A packet this far behind the highest one is from a restart, not reordering (RFC 3550: 100).
    pub max_misorder: u16,
}

impl Default for SequencerConfig {
    fn default() -> Self {
        SequencerConfig {
            max_wait: Duration::from_millis(60),
            max_reorder: 32,
            max_dropout: 3000,
            max_misorder: 100,
        }
    }
}

/// What happened to a pushed packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PushOutcome {
    /// Buffered; it will come out of [`Sequencer::pop`].
    Accepted,
    /// Buffered as the first packet of a new epoch (new SSRC or confirmed restart).
    Reanchored,
    /// Already received; dropped.
    Duplicate,
    /// Its place was already skipped as lost; dropped.
    Late,
    /// A sequence jump waiting for a second packet to confirm it; held aside.
    Probation,
}

/// A packet in sending order, with extended sequence number and timestamp.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SequencedPacket {
    /// When it arrived (the caller's clock).
    pub arrival: MediaTime,
    /// The SSRC.
    pub ssrc: u32,
    /// The payload type.
    pub payload_type: u8,
    /// The marker bit.
    pub marker: bool,
    /// The sequence number extended across wrap-around (starts at the epoch's first raw number).
    pub sequence: u64,
    /// The RTP timestamp extended across wrap-around (the epoch's first packet keeps its raw value).
    pub timestamp: i64,
    /// Which epoch it belongs to: 0 for the first, +1 at every re-anchor.
    pub epoch: u32,
    /// How many packets right before it were skipped as lost.
    pub lost_before: u64,
    /// The payload (padding removed).
    pub payload: Vec<u8>,
}

/// Counters of one source, since it started.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SequencerStats {
    /// Packets pushed that were accepted (not duplicates, not late).
    pub received: u64,
    /// Sequence numbers skipped because they did not arrive in time.
    pub lost: u64,
    /// Packets that arrived after their place was skipped.
    pub late: u64,
    /// Packets received twice.
    pub duplicates: u64,
    /// New epochs after the first (SSRC changes and confirmed restarts).
    pub reanchors: u64,
}

#[derive(Debug)]
struct Epoch {
    id: u32,
    ssrc: u32,
    /// Highest extended sequence number received.
    highest: u64,
    /// Next extended sequence number to pop; `None` until the first pop of the epoch.
    next: Option<u64>,
    /// Bit i set: sequence `next - 1 - i` was popped (for telling duplicates from late ones).
    history: u128,
    /// (raw, extended) timestamp of the last popped packet.
    last_timestamp: Option<(u32, i64)>,
    buffer: BTreeMap<u64, SequencedPacket>,
}

impl Epoch {
    fn new(id: u32, ssrc: u32, sequence: u16) -> Self {
        Epoch {
            id,
            ssrc,
            // Start one wrap up so that a little reordering below the first
            // packet does not go negative.
            highest: (1 << 16) + u64::from(sequence),
            next: None,
            history: 0,
            last_timestamp: None,
            buffer: BTreeMap::new(),
        }
    }

    fn extend(&self, sequence: u16) -> u64 {
        let delta = i64::from(sequence.wrapping_sub(self.highest as u16) as i16);
        (self.highest as i64 + delta).max(0) as u64
    }
}

/// Puts one source's packets in order; see the module documentation.
#[derive(Debug)]
pub struct Sequencer {
    config: SequencerConfig,
    epoch: Option<Epoch>,
    /// SSRCs of earlier epochs: their stragglers are late, not a new stream.
    old_ssrcs: VecDeque<u32>,
    /// Packets of finished epochs, in order, waiting to be popped.
    ready: VecDeque<SequencedPacket>,
    /// A packet that jumped far away, waiting for a second one to confirm the restart.
    probation: Option<(u16, SequencedPacket)>,
    stats: SequencerStats,
}

impl Sequencer {
    /// A sequencer with `config`.
    pub fn new(config: SequencerConfig) -> Self {
        Sequencer {
            config,
            epoch: None,
            old_ssrcs: VecDeque::new(),
            ready: VecDeque::new(),
            probation: None,
            stats: SequencerStats::default(),
        }
    }

    /// The counters so far.
    pub fn stats(&self) -> SequencerStats {
        self.stats
    }

    /// The current epoch's SSRC, if any packet was accepted.
    pub fn ssrc(&self) -> Option<u32> {
        self.epoch.as_ref().map(|e| e.ssrc)
    }

    /// How many packets are held (buffered, ready or on probation).
    pub fn held(&self) -> usize {
        self.ready.len()
            + self.epoch.as_ref().map_or(0, |e| e.buffer.len())
            + usize::from(self.probation.is_some())
    }

    /// Takes one packet that arrived at `arrival`.
    pub fn push(&mut self, arrival: MediaTime, packet: &RtpPacket<'_>) -> PushOutcome {
        let owned = |sequence: u64, epoch: u32| SequencedPacket {
            arrival,
            ssrc: packet.ssrc,
            payload_type: packet.payload_type,
            marker: packet.marker,
            sequence,
            // raw until popped, then extended
            timestamp: i64::from(packet.timestamp),
            epoch,
            lost_before: 0,
            payload: packet.payload.to_vec(),
        };

        let Some(epoch) = &self.epoch else {
            let mut e = Epoch::new(0, packet.ssrc, packet.sequence);
            e.buffer.insert(e.highest, owned(e.highest, 0));
            self.epoch = Some(e);
            self.stats.received += 1;
            return PushOutcome::Accepted;
        };

        if packet.ssrc != epoch.ssrc {
            if self.old_ssrcs.contains(&packet.ssrc) {
                self.stats.late += 1;
                return PushOutcome::Late;
            }
            self.start_epoch(packet.ssrc, packet.sequence, owned);
            self.stats.received += 1;
            return PushOutcome::Reanchored;
        }

        let ext = epoch.extend(packet.sequence);
        let delta = ext as i64 - epoch.highest as i64;
        if delta > i64::from(self.config.max_dropout)
            || -delta > i64::from(self.config.max_misorder)
        {
            // A restart, or one stray packet: wait for a second one to confirm.
            if let Some((seq, _)) = &self.probation
                && packet.sequence == seq.wrapping_add(1)
            {
                let (first_seq, mut first) = self.probation.take().expect("checked above");
                self.start_epoch(packet.ssrc, first_seq, owned);
                let e = self.epoch.as_mut().expect("just started");
                first.sequence = e.highest;
                first.epoch = e.id;
                e.buffer.insert(first.sequence, first);
                let ext = e.extend(packet.sequence);
                e.buffer.insert(ext, owned(ext, e.id));
                e.highest = ext;
                self.stats.received += 2;
                return PushOutcome::Reanchored;
            }
            self.probation = Some((packet.sequence, owned(0, 0)));
            return PushOutcome::Probation;
        }
        if let Some((_, stray)) = self.probation.take() {
            // The jump was not confirmed: the stray packet was corrupt or misrouted.
            drop(stray);
        }

        let epoch = self.epoch.as_mut().expect("checked above");
        if let Some(next) = epoch.next
            && ext < next
        {
            let back = next - 1 - ext;
            if back < 128 && epoch.history & (1u128 << back) != 0 {
                self.stats.duplicates += 1;
                return PushOutcome::Duplicate;
            }
            self.stats.late += 1;
            return PushOutcome::Late;
        }
        if epoch.buffer.contains_key(&ext) {
            self.stats.duplicates += 1;
            return PushOutcome::Duplicate;
        }
        epoch.buffer.insert(ext, owned(ext, epoch.id));
        epoch.highest = epoch.highest.max(ext);
        self.stats.received += 1;
        PushOutcome::Accepted
    }

    fn start_epoch(
        &mut self,
        ssrc: u32,
        sequence: u16,
        owned: impl Fn(u64, u32) -> SequencedPacket,
    ) {
        let old = self.epoch.take().expect("only called with an epoch");
        // Everything the old epoch still holds comes out first, in order.
        let id = old.id + 1;
        let mut old = old;
        while let Some(p) = Self::pop_from(&mut old, &mut self.stats, None, &self.config) {
            self.ready.push_back(p);
        }
        if old.ssrc != ssrc {
            self.old_ssrcs.push_back(old.ssrc);
            if self.old_ssrcs.len() > 4 {
                self.old_ssrcs.pop_front();
            }
        }
        let mut e = Epoch::new(id, ssrc, sequence);
        e.buffer.insert(e.highest, owned(e.highest, id));
        self.epoch = Some(e);
        self.stats.reanchors += 1;
    }

    /// The next packet in order, if one is ready at `now`.
    pub fn pop(&mut self, now: MediaTime) -> Option<SequencedPacket> {
        if let Some(p) = self.ready.pop_front() {
            return Some(p);
        }
        let epoch = self.epoch.as_mut()?;
        Self::pop_from(epoch, &mut self.stats, Some(now), &self.config)
    }

    /// The next packet in order, not waiting for any gap (end of stream).
    pub fn drain(&mut self) -> Option<SequencedPacket> {
        if let Some(p) = self.ready.pop_front() {
            return Some(p);
        }
        let epoch = self.epoch.as_mut()?;
        Self::pop_from(epoch, &mut self.stats, None, &self.config)
    }

    /// Pops from one epoch; `now == None` skips gaps without waiting.
    fn pop_from(
        epoch: &mut Epoch,
        stats: &mut SequencerStats,
        now: Option<MediaTime>,
        config: &SequencerConfig,
    ) -> Option<SequencedPacket> {
        let (&first, _) = epoch.buffer.first_key_value()?;
        let in_order = epoch.next == Some(first);
        if !in_order {
            let forced = match now {
                None => true,
                Some(now) => {
                    let oldest = epoch
                        .buffer
                        .values()
                        .map(|p| p.arrival)
                        .min()
                        .expect("buffer is not empty");
                    epoch.buffer.len() > config.max_reorder
                        || now.saturating_duration_since(oldest) >= config.max_wait
                }
            };
            if !forced {
                return None;
            }
        }
        let mut p = epoch.buffer.pop_first().expect("checked above").1;
        let skipped = epoch.next.map_or(0, |next| first - next);
        stats.lost += skipped;
        p.lost_before = skipped;
        epoch.history = if skipped + 1 >= 128 {
            1
        } else {
            (epoch.history << (skipped + 1)) | 1
        };
        epoch.next = Some(first + 1);
        let raw = p.payload_timestamp_raw();
        p.timestamp = match epoch.last_timestamp {
            None => i64::from(raw),
            Some((last_raw, last_ext)) => last_ext + i64::from(raw.wrapping_sub(last_raw) as i32),
        };
        epoch.last_timestamp = Some((raw, p.timestamp));
        Some(p)
    }
}

impl SequencedPacket {
    /// The raw 32-bit timestamp is kept in `timestamp` until the packet is
    /// popped and extended.
    fn payload_timestamp_raw(&self) -> u32 {
        self.timestamp as u32
    }
}
