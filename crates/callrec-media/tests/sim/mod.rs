//! A simulated RTP sender with its own clock, for timeline tests: it makes
//! 20 ms G.711 packets of a known signal (quiet noise with loud bursts at
//! known true instants) and sends them at the true time its clock says.

#![allow(dead_code)]

use callrec_media::codec::g711::{linear_to_alaw, linear_to_ulaw};
use callrec_media::rtp::RtpPacket;
use rand::{RngExt, SeedableRng, rngs::StdRng};

pub const RATE: f64 = 8000.0;
/// Amplitude of a burst; detection threshold is well below, noise well below that.
pub const BURST: i16 = 12_000;
pub const NOISE: i16 = 200;
pub const THRESHOLD: i16 = 3_000;
/// A burst lasts this long.
pub const BURST_SECS: f64 = 0.060;

/// One datagram as it arrives: arrival true time in seconds, bytes.
#[derive(Debug, Clone)]
pub struct Arrival {
    pub at: f64,
    pub datagram: Vec<u8>,
    /// The packet holds the first sample of a burst.
    pub has_onset: bool,
}

/// A sender: its clock runs at `1 + ppm/1e6` times true time.
pub struct Sender {
    pub ssrc: u32,
    pub seq: u16,
    pub ts: u32,
    pub ppm: f64,
    pub alaw: bool,
    pub payload_type: u8,
    /// Sender samples produced so far.
    pub k: u64,
    /// True time of sender sample 0.
    pub t0: f64,
    /// True instants of burst onsets (sorted).
    pub bursts: Vec<f64>,
    rng: StdRng,
}

impl Sender {
    pub fn new(seed: u64, ppm: f64, alaw: bool, t0: f64, bursts: Vec<f64>) -> Self {
        let mut rng = StdRng::seed_from_u64(seed);
        Sender {
            ssrc: rng.random(),
            seq: rng.random(),
            ts: rng.random(),
            ppm,
            alaw,
            payload_type: if alaw { 8 } else { 0 },
            k: 0,
            t0,
            bursts,
            rng,
        }
    }

    /// True time of sender sample `k`.
    pub fn time_of(&self, k: u64) -> f64 {
        self.t0 + k as f64 / (RATE * (1.0 + self.ppm * 1e-6))
    }

    /// The first sender sample at or after true time `t`.
    pub fn sample_at(&self, t: f64) -> u64 {
        let k = ((t - self.t0) * RATE * (1.0 + self.ppm * 1e-6))
            .max(0.0)
            .ceil() as u64;
        // guard the float rounding: the sample must not be before `t`
        if self.time_of(k) < t { k + 1 } else { k }
    }

    fn sample(&mut self, k: u64) -> (i16, bool) {
        let t = self.time_of(k);
        // bursts are found by binary search on their onset times
        let i = self.bursts.partition_point(|&b| b <= t);
        if i > 0 {
            let b = self.bursts[i - 1];
            let first = self.sample_at(b);
            if t - b < BURST_SECS && k >= first {
                let onset = first == k;
                let phase = (k - first) / 4 % 2;
                return (if phase == 0 { BURST } else { -BURST }, onset);
            }
        }
        (self.rng.random_range(-NOISE..=NOISE), false)
    }

    /// Makes the next 20 ms packet; returns (send true time, datagram, has_onset).
    pub fn next_packet(&mut self) -> (f64, Vec<u8>, bool) {
        let send_at = self.time_of(self.k + 160);
        let mut payload = Vec::with_capacity(160);
        let mut has_onset = false;
        for j in 0..160 {
            let (s, onset) = self.sample(self.k + j);
            has_onset |= onset;
            payload.push(if self.alaw {
                linear_to_alaw(s)
            } else {
                linear_to_ulaw(s)
            });
        }
        let packet = RtpPacket {
            marker: false,
            payload_type: self.payload_type,
            sequence: self.seq,
            timestamp: self.ts,
            ssrc: self.ssrc,
            csrcs: vec![],
            extension: None,
            payload: &payload,
        };
        let mut bytes = Vec::with_capacity(172);
        packet.write(&mut bytes);
        self.seq = self.seq.wrapping_add(1);
        self.ts = self.ts.wrapping_add(160);
        self.k += 160;
        (send_at, bytes, has_onset)
    }

    /// Skips `secs` of sender time without sending (hold); the RTP clock
    /// keeps running unless `freeze_ts`.
    pub fn hold(&mut self, secs: f64, freeze_ts: bool) {
        let samples = (secs * RATE * (1.0 + self.ppm * 1e-6)).round() as u64 / 160 * 160;
        self.k += samples;
        if !freeze_ts {
            self.ts = self.ts.wrapping_add(samples as u32);
        }
    }

    /// A new SSRC with fresh sequence and timestamp bases (a new stream).
    pub fn change_ssrc(&mut self) {
        self.ssrc = self.rng.random();
        self.seq = self.rng.random();
        self.ts = self.rng.random();
    }

    /// A timestamp jump on the same SSRC and sequence (a re-INVITE through an SBC).
    pub fn jump_ts(&mut self, ticks: u32) {
        self.ts = self.ts.wrapping_add(ticks);
    }
}

/// Streaming onset detector on one channel of the output.
#[derive(Debug, Default)]
pub struct Onsets {
    quiet: u64,
    pub found: Vec<u64>,
}

impl Onsets {
    pub fn feed(&mut self, index: u64, s: i16) {
        if s.unsigned_abs() > THRESHOLD as u16 {
            if self.quiet >= 800 {
                self.found.push(index);
            }
            self.quiet = 0;
        } else {
            self.quiet += 1;
        }
    }
}

/// Measures interleaved stereo output as it streams by.
#[derive(Debug, Default)]
pub struct Meter {
    pub frames: u64,
    pub left: Onsets,
    pub right: Onsets,
    /// Sum of squares per channel.
    pub energy: [f64; 2],
}

impl Meter {
    pub fn feed(&mut self, interleaved: &[i16]) {
        for f in interleaved.chunks_exact(2) {
            self.left.feed(self.frames, f[0]);
            self.right.feed(self.frames, f[1]);
            self.energy[0] += f64::from(f[0]).powi(2);
            self.energy[1] += f64::from(f[1]).powi(2);
            self.frames += 1;
        }
    }
}

/// The onset in `found` nearest to `expected` (samples), if within `tolerance`.
pub fn nearest(found: &[u64], expected: f64, tolerance: f64) -> Option<u64> {
    let i = found.partition_point(|&x| (x as f64) < expected);
    [i.checked_sub(1), Some(i)]
        .into_iter()
        .flatten()
        .filter_map(|j| found.get(j).copied())
        .filter(|&x| (x as f64 - expected).abs() <= tolerance)
        .min_by(|a, b| {
            (*a as f64 - expected)
                .abs()
                .total_cmp(&(*b as f64 - expected).abs())
        })
}
