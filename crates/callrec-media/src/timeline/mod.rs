//! The recording's single sample timeline: every source placed at 8 kHz by
//! its RTP timestamps, anchored to arrival time, mixed by role into one
//! stereo stream (left = end user, right = agent side).
//!
//! How a source is placed:
//! - Its packets go through a [`Sequencer`] (order, duplicates, wrap-around,
//!   SSRC changes), then are decoded to 8 kHz.
//! - Each packet's offset, arrival time minus RTP time, is fed to a lower
//!   envelope (the minimum over the last [`TimelineConfig::drift_window`]):
//!   the least-delayed packets tell where the sender's clock stands against
//!   the arrival clock, whatever the jitter. A packet's ideal position is its
//!   RTP time plus that envelope (plus [`PLACEMENT_DELAY`]); a source whose
//!   first 20 ms packet arrives 1.5 s after the start begins at sample 12000.
//! - Audio is written contiguously at a cursor; when the cursor drifts from
//!   the ideal position (clock drift: 100 ppm is one sample in 1.25 s) single
//!   samples are inserted or dropped, a few per packet at most, or the
//!   correction is made inside a gap (loss, DTX). A large error (a timestamp
//!   jump, a start-up estimate) moves the cursor at once.
//! - A new epoch (SSRC change, sequence restart), a codec change, or a run of
//!   packets all arriving far later than their timestamps say (a backward
//!   timestamp jump, a sender that froze its clock on hold) re-anchors the
//!   source on arrival time.
//!
//! Everything older than `now - jitter_delay` is emitted by [`Timeline::poll`];
//! a sample that arrives for an emitted position is dropped (counted late).
//! Gaps are silence; sources of one role are summed with saturation.
//!
//! The timeline never reads a clock (time is an argument), never does I/O,
//! and never buffers more than the jitter delay plus the reorder window per
//! source: memory is bounded whatever the call's length.

mod placement;
mod time;

use std::collections::VecDeque;
use std::time::Duration;

use thiserror::Error;

use crate::codec::Codec;
use crate::role::Role;
use crate::rtp::{RtpError, RtpPacket};
use crate::sequencer::{Sequencer, SequencerConfig, SequencerStats};
use placement::{Envelope, Source, place};
pub use time::MediaTime;

/// Each packet is placed to end this long after the least-delayed arrival
/// says it was complete: a 20 ms packet (the usual) starts at its arrival
/// time, a 60 ms one 40 ms before. The same for every source, so packet
/// lengths do not shift one channel against the other.
pub const PLACEMENT_DELAY: Duration = Duration::from_millis(20);

const NANOS_PER_SEC: i64 = 1_000_000_000;
const RATE: i64 = crate::SAMPLE_RATE as i64;
/// Static payload types of comfort noise (RFC 3389): no audio, a gap.
const COMFORT_NOISE: [u8; 2] = [13, 19];

/// What happens to the recording while it is paused (redaction).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum PauseMode {
    /// Paused spans are left out of the file.
    #[default]
    Skip,
    /// Paused spans are kept as silence.
    Silence,
}

/// How the timeline places and emits audio.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimelineConfig {
    /// Whether paused spans are left out or kept as silence.
    pub pause_mode: PauseMode,
    /// How long after its arrival a sample may still be placed: positions
    /// older than `now - jitter_delay` are emitted by [`Timeline::poll`].
    pub jitter_delay: Duration,
    /// How far back the lower envelope of arrival minus RTP time looks.
    pub drift_window: Duration,
    /// Per-source reordering. Its `max_wait` should be about half of
    /// `jitter_delay`: a gap is skipped after `max_wait`, and what follows the
    /// gap must still be placed before its positions are emitted.
    pub sequencer: SequencerConfig,
}

impl Default for TimelineConfig {
    fn default() -> Self {
        TimelineConfig {
            pause_mode: PauseMode::Skip,
            jitter_delay: Duration::from_millis(200),
            drift_window: Duration::from_secs(10),
            sequencer: SequencerConfig {
                max_wait: Duration::from_millis(100),
                ..SequencerConfig::default()
            },
        }
    }
}

/// One source of the timeline, as returned by [`Timeline::add_rtp_source`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SourceId(u32);

impl SourceId {
    /// The number of the source, in the order they were added (from 0).
    pub fn index(self) -> u32 {
        self.0
    }
}

/// A paused span of the recording.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PauseSpan {
    /// When the pause started (media time).
    pub start: MediaTime,
    /// When it ended; `None` while paused.
    pub end: Option<MediaTime>,
    /// The output frame where it starts.
    pub start_sample: u64,
    /// The output frame where it ends (equal to `start_sample` with [`PauseMode::Skip`]); `None` while paused.
    pub end_sample: Option<u64>,
}

/// Counters and estimates of one source.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct SourceStats {
    /// Packets accepted (not duplicates, not late at the sequencer).
    pub received: u64,
    /// Packets never received (skipped gaps in the sequence).
    pub lost: u64,
    /// Packets that came after their place was skipped or emitted.
    pub late: u64,
    /// Packets received twice.
    pub duplicates: u64,
    /// Re-anchors on arrival time: SSRC changes, restarts, timestamp jumps, codec changes.
    pub reanchors: u64,
    /// Packets that could not be decoded, or whose timestamps put them more
    /// than 60 s ahead (treated as lost).
    pub decode_errors: u64,
    /// Samples inserted or dropped to follow the arrival clock.
    pub drift_corrections: u64,
    /// The sender's clock against the arrival clock, in parts per million
    /// (positive: the sender's clock runs fast), over the current epoch; 0
    /// until the epoch has lasted 20 s.
    pub drift_ppm: f64,
}

/// Why a packet was refused. The source keeps working.
#[derive(Debug, Error)]
pub enum MediaError {
    /// The source id is not of this timeline.
    #[error("unknown source {0:?}; add it with add_rtp_source first")]
    UnknownSource(SourceId),
    /// The source was removed.
    #[error("source {0:?} was removed; packets after its removal are dropped")]
    SourceRemoved(SourceId),
    /// The datagram is not RTP.
    #[error(transparent)]
    Rtp(#[from] RtpError),
    /// The payload type is neither in the source's map nor a static one callrec decodes.
    #[error(
        "payload type {payload_type} is not in the source's sdp and not a static type callrec decodes; add it to the source's payload types"
    )]
    UnknownPayloadType {
        /// The payload type.
        payload_type: u8,
    },
}

#[derive(Debug, Clone, Copy)]
struct Span {
    public: PauseSpan,
    /// Timeline positions [start, end).
    start: i64,
    end: Option<i64>,
}

/// The two-channel timeline of one recording; see the module documentation.
pub struct Timeline {
    config: TimelineConfig,
    start: MediaTime,
    sources: Vec<Option<Source>>,
    /// The next timeline position to emit.
    emitted: i64,
    /// Output frames emitted.
    written: u64,
    spans: Vec<Span>,
    public_spans: Vec<PauseSpan>,
    jitter_samples: i64,
}

impl Timeline {
    /// A timeline whose sample 0 is at `start`.
    pub fn new(config: TimelineConfig, start: MediaTime) -> Self {
        let jitter_samples = (config.jitter_delay.as_nanos() as i64 * RATE) / NANOS_PER_SEC;
        Timeline {
            config,
            start,
            sources: Vec::new(),
            emitted: 0,
            written: 0,
            spans: Vec::new(),
            public_spans: Vec::new(),
            jitter_samples,
        }
    }

    /// The configuration.
    pub fn config(&self) -> &TimelineConfig {
        &self.config
    }

    /// Adds an RTP source of `role`, with the dynamic payload types of its SDP
    /// (static types 0, 8 and 9 are known without being listed).
    pub fn add_rtp_source(&mut self, role: Role, payload_types: &[(u8, Codec)]) -> SourceId {
        let id = SourceId(self.sources.len() as u32);
        self.sources.push(Some(Source {
            role,
            payload_types: payload_types.to_vec(),
            sequencer: Sequencer::new(self.config.sequencer),
            decoder: None,
            anchor: None,
            envelope: Envelope::new(self.config.drift_window),
            late_run: Vec::new(),
            last_arrival: None,
            removed: false,
            ring: VecDeque::new(),
            scratch: Vec::new(),
            stats: SourceStats::default(),
            late_packets: 0,
        }));
        id
    }

    fn source_mut(&mut self, id: SourceId) -> Result<&mut Source, MediaError> {
        self.sources
            .get_mut(id.0 as usize)
            .and_then(Option::as_mut)
            .ok_or(MediaError::UnknownSource(id))
    }

    /// Takes one datagram of `source` that arrived at `arrival`. A bad packet
    /// is an error for that packet only; the source keeps working.
    ///
    /// Call [`Timeline::poll`] regularly (after each push, or every 20 ms):
    /// audio is emitted only there, and a placement more than 60 s ahead of
    /// the emitted position is refused.
    pub fn push_rtp(
        &mut self,
        source: SourceId,
        arrival: MediaTime,
        datagram: &[u8],
    ) -> Result<(), MediaError> {
        let packet = RtpPacket::parse(datagram)?;
        let src = self.source_mut(source)?;
        if src.removed {
            return Err(MediaError::SourceRemoved(source));
        }
        if COMFORT_NOISE.contains(&packet.payload_type)
            && src.codec_of(packet.payload_type).is_none()
        {
            return Ok(());
        }
        if src.codec_of(packet.payload_type).is_none() {
            return Err(MediaError::UnknownPayloadType {
                payload_type: packet.payload_type,
            });
        }
        src.sequencer.push(arrival, &packet);
        // The sequencer never holds more than its window: what is ready at
        // this arrival is placed now (emission still waits for `poll`).
        let (start, emitted, jitter) = (self.start, self.emitted, self.config.jitter_delay);
        let src = self.source_mut(source)?;
        while let Some(p) = src.sequencer.pop(arrival) {
            place(src, p, start, emitted, jitter);
        }
        Ok(())
    }

    /// Stops `source` at `at`: what it sent before stays, later packets are refused.
    pub fn remove_source(&mut self, source: SourceId, at: MediaTime) {
        let start = self.start;
        let emitted = self.emitted;
        let jitter = self.config.jitter_delay;
        let Ok(src) = self.source_mut(source) else {
            return;
        };
        if src.removed {
            return;
        }
        while let Some(p) = src.sequencer.drain() {
            place(src, p, start, emitted, jitter);
        }
        let end = time_to_pos(start, at);
        let keep = (end - emitted).max(0) as usize;
        src.ring.truncate(keep);
        src.removed = true;
    }

    /// Pauses the recording at `at` (ignored while already paused).
    pub fn pause(&mut self, at: MediaTime) {
        if self.spans.last().is_some_and(|s| s.end.is_none()) {
            return;
        }
        let pos = time_to_pos(self.start, at).max(self.emitted);
        let start_sample = self.output_position(pos);
        let public = PauseSpan {
            start: at,
            end: None,
            start_sample,
            end_sample: None,
        };
        self.spans.push(Span {
            public,
            start: pos,
            end: None,
        });
        self.public_spans.push(public);
    }

    /// Resumes the recording at `at` (ignored when not paused).
    pub fn resume(&mut self, at: MediaTime) {
        let Some(last) = self.spans.last().copied() else {
            return;
        };
        if last.end.is_some() {
            return;
        }
        // positions already emitted were emitted as paused
        let pos = time_to_pos(self.start, at)
            .max(last.start)
            .max(self.emitted);
        let end_sample = match self.config.pause_mode {
            PauseMode::Skip => last.public.start_sample,
            PauseMode::Silence => last.public.start_sample + (pos - last.start) as u64,
        };
        let span = self.spans.last_mut().expect("checked");
        span.end = Some(pos);
        span.public.end = Some(at);
        span.public.end_sample = Some(end_sample);
        *self.public_spans.last_mut().expect("same length") = span.public;
    }

    /// The output frame that timeline position `pos` (not yet emitted) will have.
    fn output_position(&self, pos: i64) -> u64 {
        let mut out = self.written as i64 + (pos - self.emitted).max(0);
        if self.config.pause_mode == PauseMode::Skip {
            for s in &self.spans {
                let a = s.start.max(self.emitted);
                let b = s.end.unwrap_or(i64::MAX).min(pos);
                if b > a {
                    out -= b - a;
                }
            }
        }
        out.max(0) as u64
    }

    /// The most samples any one source holds waiting to be emitted (the
    /// timeline's memory, which must stay bounded whatever the call's length).
    pub fn buffered_samples(&self) -> usize {
        self.sources
            .iter()
            .flatten()
            .map(|s| s.ring.len() + s.sequencer.held() * 160)
            .max()
            .unwrap_or(0)
    }

    /// Paused spans so far.
    pub fn pause_spans(&self) -> &[PauseSpan] {
        &self.public_spans
    }

    /// Stereo frames emitted so far.
    pub fn samples_written(&self) -> u64 {
        self.written
    }

    /// Counters of `source` (default values for an unknown source).
    pub fn stats(&self, source: SourceId) -> SourceStats {
        let Some(Some(src)) = self.sources.get(source.0 as usize) else {
            return SourceStats::default();
        };
        let SequencerStats {
            received,
            lost,
            late,
            duplicates,
            reanchors: _,
        } = src.sequencer.stats();
        SourceStats {
            received,
            lost,
            late: late + src.late_packets,
            duplicates,
            ..src.stats
        }
    }

    /// Appends interleaved stereo (left = end user, right = agent side) for
    /// every position older than `now - jitter_delay`.
    pub fn poll(&mut self, now: MediaTime, out: &mut Vec<i16>) {
        let (start, emitted, jitter) = (self.start, self.emitted, self.config.jitter_delay);
        for src in self.sources.iter_mut().flatten() {
            while let Some(p) = src.sequencer.pop(now) {
                place(src, p, start, emitted, jitter);
            }
        }
        let target = time_to_pos(self.start, now) - self.jitter_samples;
        self.emit_until(target, out);
    }

    /// Flushes everything received: waits for no gap, emits up to the last
    /// placed sample, and closes an open pause.
    pub fn finish(&mut self, out: &mut Vec<i16>) {
        let (start, emitted, jitter) = (self.start, self.emitted, self.config.jitter_delay);
        for src in self.sources.iter_mut().flatten() {
            while let Some(p) = src.sequencer.drain() {
                place(src, p, start, emitted, jitter);
            }
        }
        let end = self
            .sources
            .iter()
            .flatten()
            .map(|s| self.emitted + s.ring.len() as i64)
            .max()
            .unwrap_or(self.emitted);
        self.emit_until(end, out);
        if let Some(last) = self.spans.last()
            && last.end.is_none()
        {
            let end_time = pos_to_time(self.start, end.max(last.start));
            self.resume(end_time);
        }
    }

    fn emit_until(&mut self, target: i64, out: &mut Vec<i16>) {
        if target <= self.emitted {
            return;
        }
        let n = (target - self.emitted) as usize;
        let base = out.len();
        out.resize(base + 2 * n, 0);
        let frames = &mut out[base..];
        for src in self.sources.iter_mut().flatten() {
            let ch = src.role.channel_index();
            let take = n.min(src.ring.len());
            for (i, s) in src.ring.drain(..take).enumerate() {
                let slot = &mut frames[2 * i + ch];
                *slot = slot.saturating_add(s);
            }
        }
        // free the buffers of removed sources once emitted (their stats stay)
        for s in self.sources.iter_mut().flatten() {
            if s.removed && s.ring.is_empty() && s.decoder.is_some() {
                s.ring = VecDeque::new();
                s.scratch = Vec::new();
                s.decoder = None;
            }
        }
        // pauses
        let from = self.emitted;
        let mut kept = n as u64;
        if !self.spans.is_empty() {
            let mut write = base;
            for i in 0..n {
                let pos = from + i as i64;
                let paused = self
                    .spans
                    .iter()
                    .rev()
                    .take_while(|s| s.end.is_none_or(|e| e > from))
                    .any(|s| pos >= s.start && s.end.is_none_or(|e| pos < e));
                if paused {
                    match self.config.pause_mode {
                        PauseMode::Silence => {
                            out[write] = 0;
                            out[write + 1] = 0;
                            write += 2;
                        }
                        PauseMode::Skip => kept -= 1,
                    }
                } else {
                    out.copy_within(base + 2 * i..base + 2 * i + 2, write);
                    write += 2;
                }
            }
            out.truncate(write);
        }
        self.emitted = target;
        self.written += kept;
    }
}

/// Timeline position (8 kHz samples since `start`, rounded down) of `t`.
fn time_to_pos(start: MediaTime, t: MediaTime) -> i64 {
    let d = i128::from(t.0) - i128::from(start.0);
    (d * i128::from(RATE)).div_euclid(i128::from(NANOS_PER_SEC)) as i64
}

fn pos_to_time(start: MediaTime, pos: i64) -> MediaTime {
    MediaTime((i128::from(start.0) + i128::from(pos) * 125_000).max(0) as u64)
}
