//! Placing one source's packets on the timeline: decoding, the lower
//! envelope of arrival minus RTP time, the cursor that follows it (drift
//! correction), and re-anchoring. See the parent module for the method.
//!
//! Nothing here emits audio or knows other sources: a source only writes
//! into its own ring of samples, from the emitted position on.

use std::collections::VecDeque;
use std::time::Duration;

use super::{MediaTime, NANOS_PER_SEC, PLACEMENT_DELAY, RATE, SourceStats};
use crate::codec::{Codec, Decoder, decoder_for};
use crate::role::Role;
use crate::sequencer::{SequencedPacket, Sequencer};

/// A placement further ahead of the emitted position than this is refused
/// (a broken timestamp must not make the timeline buffer a whole call).
const MAX_AHEAD_SAMPLES: i64 = 60 * RATE;
/// Cursor errors up to this many samples are left alone (0.5 ms).
const DEADBAND_SAMPLES: i64 = 4;
/// Cursor errors beyond this many samples are corrected at once (10 ms).
const JUMP_SAMPLES: i64 = 80;
/// A packet this much later than the envelope says (or `jitter_delay`, if
/// smaller) starts a late run: timestamps that went back, or a network path
/// that got slower.
const LATE_RUN_THRESHOLD: Duration = Duration::from_millis(60);
/// Packets in a row in a late run that make a re-anchor.
const LATE_RUN_PACKETS: usize = 10;
/// ... and the arrival time they must span (a burst after a network stall does not).
const LATE_RUN_SPAN: Duration = Duration::from_millis(100);
/// A silence in arrivals this long, followed by a late packet, re-anchors at once.
const ARRIVAL_GAP_REANCHOR: Duration = Duration::from_secs(1);
/// The envelope's minimum is kept per bucket of this many nanoseconds.
const BUCKET_NANOS: i64 = NANOS_PER_SEC;
/// Drift is reported once an epoch has lasted this long.
const DRIFT_MIN_SPAN_NANOS: i64 = 20 * NANOS_PER_SEC;

/// Lower envelope of arrival minus RTP time: minimum per 1-second bucket of
/// arrival time, over the last `buckets` buckets.
#[derive(Debug)]
pub(super) struct Envelope {
    buckets: VecDeque<(i64, i64)>,
    keep: i64,
}

impl Envelope {
    pub(super) fn new(window: Duration) -> Self {
        Envelope {
            buckets: VecDeque::new(),
            keep: (window.as_nanos() as i64 / BUCKET_NANOS).max(1),
        }
    }

    fn clear(&mut self) {
        self.buckets.clear();
    }

    fn add(&mut self, arrival: i64, offset: i64) {
        let bucket = arrival.div_euclid(BUCKET_NANOS);
        match self.buckets.back_mut() {
            Some((b, min)) if *b == bucket => *min = (*min).min(offset),
            Some((b, _)) if *b > bucket => {
                // an arrival earlier than the newest bucket: fold it in there
                let last = self.buckets.back_mut().expect("checked");
                last.1 = last.1.min(offset);
            }
            _ => self.buckets.push_back((bucket, offset)),
        }
        while let Some(&(b, _)) = self.buckets.front() {
            if b <= bucket - self.keep {
                self.buckets.pop_front();
            } else {
                break;
            }
        }
    }

    fn estimate(&self) -> Option<i64> {
        self.buckets.iter().map(|&(_, m)| m).min()
    }
}

/// Where a source stands in its current epoch.
#[derive(Debug)]
pub(super) struct Anchor {
    epoch: u32,
    codec: Codec,
    /// Timeline position where the next contiguous sample goes.
    cursor: i64,
    /// The RTP time (in 8 kHz samples) of the sample at the cursor.
    cursor_ts8: i64,
    /// First envelope reading of the epoch that is old enough, for the drift estimate.
    drift_origin: Option<(i64, i64)>,
    epoch_start_arrival: i64,
}

pub(super) struct Source {
    pub(super) role: Role,
    pub(super) payload_types: Vec<(u8, Codec)>,
    pub(super) sequencer: Sequencer,
    pub(super) decoder: Option<Box<dyn Decoder>>,
    pub(super) anchor: Option<Anchor>,
    pub(super) envelope: Envelope,
    /// Offsets and arrivals of consecutive packets far later than the envelope.
    pub(super) late_run: Vec<(i64, i64)>,
    pub(super) last_arrival: Option<i64>,
    pub(super) removed: bool,
    /// Samples for positions `emitted..emitted + ring.len()`.
    pub(super) ring: VecDeque<i16>,
    pub(super) scratch: Vec<i16>,
    pub(super) stats: SourceStats,
    pub(super) late_packets: u64,
}

impl Source {
    pub(super) fn codec_of(&self, payload_type: u8) -> Option<Codec> {
        self.payload_types
            .iter()
            .find(|(pt, _)| *pt == payload_type)
            .map(|&(_, c)| c)
            .or_else(|| Codec::from_static_payload_type(payload_type))
    }
}

/// RTP time in nanoseconds of an extended timestamp.
fn ts_nanos(ts: i64, clock_rate: u32) -> i64 {
    (i128::from(ts) * i128::from(NANOS_PER_SEC) / i128::from(clock_rate)) as i64
}

/// Decodes one in-order packet and writes it on the source's ring.
pub(super) fn place(
    src: &mut Source,
    p: SequencedPacket,
    start: MediaTime,
    emitted: i64,
    jitter: Duration,
) {
    let Some(codec) = src.codec_of(p.payload_type) else {
        return;
    };
    let arrival = i64::try_from(p.arrival.0).unwrap_or(i64::MAX);

    // A codec change needs a new decoder (and re-anchors below).
    if src.decoder.as_ref().is_none_or(|d| d.codec() != codec) {
        match decoder_for(codec) {
            Ok(d) => src.decoder = Some(d),
            Err(_) => {
                src.stats.decode_errors += 1;
                return;
            }
        }
    }
    let decoder = src.decoder.as_mut().expect("created above");
    src.scratch.clear();
    if decoder.decode(&p.payload, &mut src.scratch).is_err() {
        src.stats.decode_errors += 1;
        return;
    }
    let n = src.scratch.len() as i64;

    // The packet was complete when its last sample was taken: its offset is
    // arrival minus the RTP time of its end, so that packets of different
    // lengths (20 ms G.711, 60 ms Opus) land where they were spoken. It is
    // then placed to end PLACEMENT_DELAY after that.
    let ts_ns = ts_nanos(p.timestamp, codec.clock_rate());
    let offset = arrival - (ts_ns + n * (NANOS_PER_SEC / RATE));
    let arrival_gap = src.last_arrival.map_or(0, |last| arrival - last);
    src.last_arrival = Some(src.last_arrival.map_or(arrival, |l| l.max(arrival)));

    // New epoch or codec, or timestamps that no longer match arrival: re-anchor.
    let same_stream = src
        .anchor
        .as_ref()
        .is_some_and(|a| a.epoch == p.epoch && a.codec == codec);
    let mut reanchor = !same_stream;
    if same_stream {
        let est = src.envelope.estimate().unwrap_or(offset);
        let threshold = jitter.as_nanos() as i64;
        let late_threshold = threshold.min(LATE_RUN_THRESHOLD.as_nanos() as i64);
        if offset < est - threshold {
            // RTP time leapt ahead of arrival: a forward timestamp jump
            reanchor = true;
        } else if offset > est + late_threshold {
            if arrival_gap >= ARRIVAL_GAP_REANCHOR.as_nanos() as i64 {
                // after a silence in arrivals: a sender that froze its clock on hold
                reanchor = true;
            } else {
                // a backward jump, or a burst after a network stall: wait for a run
                if src.late_run.len() >= 4 * LATE_RUN_PACKETS {
                    src.late_run.remove(0);
                }
                src.late_run.push((offset, arrival));
                let span = arrival - src.late_run[0].1;
                if src.late_run.len() >= LATE_RUN_PACKETS && span >= LATE_RUN_SPAN.as_nanos() as i64
                {
                    reanchor = true;
                }
            }
        } else {
            src.late_run.clear();
        }
    }
    if reanchor {
        if src.anchor.is_some() {
            src.stats.reanchors += 1;
        }
        src.envelope.clear();
        for &(o, a) in &src.late_run {
            src.envelope.add(a, o);
        }
        src.late_run.clear();
        src.anchor = None;
    }
    src.envelope.add(arrival, offset);
    let est = src.envelope.estimate().expect("just added");

    let ts8 = codec.ticks_to_samples(p.timestamp);
    let start_ns = i64::try_from(start.0).unwrap_or(i64::MAX);
    let placement = PLACEMENT_DELAY.as_nanos() as i64;
    let ideal = (i128::from(ts_ns + est + placement - start_ns) * i128::from(RATE))
        .div_euclid(i128::from(NANOS_PER_SEC)) as i64;

    let pos = match &mut src.anchor {
        None => {
            src.anchor = Some(Anchor {
                epoch: p.epoch,
                codec,
                cursor: ideal,
                cursor_ts8: ts8,
                drift_origin: None,
                epoch_start_arrival: arrival,
            });
            ideal
        }
        Some(a) => {
            let nominal = a.cursor + (ts8 - a.cursor_ts8);
            let error = ideal - nominal;
            if error.abs() > JUMP_SAMPLES {
                ideal
            } else if nominal > a.cursor {
                // a gap: correct inside it, without going back over written audio
                if error.abs() > DEADBAND_SAMPLES {
                    src.stats.drift_corrections += error.unsigned_abs();
                    ideal.max(a.cursor)
                } else {
                    nominal
                }
            } else if error.abs() > DEADBAND_SAMPLES {
                // contiguous: insert or drop a sample or two per packet
                let slew = (n / 80).max(1);
                let step = error.clamp(-slew, slew);
                src.stats.drift_corrections += step.unsigned_abs();
                nominal + step
            } else {
                nominal
            }
        }
    };

    // Drift estimate over the epoch.
    let a = src.anchor.as_mut().expect("set above");
    if arrival - a.epoch_start_arrival >= src.envelope.keep * BUCKET_NANOS {
        match a.drift_origin {
            None => a.drift_origin = Some((arrival, est)),
            Some((t0, e0)) if arrival - t0 >= DRIFT_MIN_SPAN_NANOS => {
                src.stats.drift_ppm = -((est - e0) as f64) / ((arrival - t0) as f64) * 1e6;
            }
            Some(_) => {}
        }
    }

    // Write.
    let prev_cursor = a.cursor;
    a.cursor = pos + n;
    a.cursor_ts8 = ts8 + n;
    let first = pos - emitted;
    if first + n > MAX_AHEAD_SAMPLES {
        // a broken timestamp: refuse to buffer that far ahead
        src.stats.decode_errors += 1;
        return;
    }
    if first + n <= 0 {
        src.late_packets += 1;
        return;
    }
    let end = (first + n) as usize;
    if src.ring.len() < end {
        src.ring.resize(end, 0);
    }
    // an inserted sample repeats the last one instead of leaving a zero
    if pos > prev_cursor && pos - prev_cursor <= DEADBAND_SAMPLES.max(2) {
        let hold = src
            .ring
            .get((prev_cursor - emitted - 1).max(0) as usize)
            .copied()
            .unwrap_or(0);
        for q in prev_cursor.max(emitted)..pos {
            src.ring[(q - emitted) as usize] = hold;
        }
    }
    let skip = (-first).max(0) as usize;
    for (i, &s) in src.scratch.iter().enumerate().skip(skip) {
        src.ring[(first + i as i64) as usize] = s;
    }
}
