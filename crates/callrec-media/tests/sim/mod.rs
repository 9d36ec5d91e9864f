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
    /// The first burst that may still be ahead (samples only go forward).
    next_burst: usize,
    noise: u64,
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
            next_burst: 0,
            noise: seed,
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
        while self.next_burst < self.bursts.len() && self.bursts[self.next_burst] + BURST_SECS <= t
        {
            self.next_burst += 1;
        }
        if let Some(&b) = self.bursts.get(self.next_burst)
            && b <= t
        {
            let first = self.sample_at(b);
            if k >= first {
                let phase = (k - first) / 4 % 2;
                return (if phase == 0 { BURST } else { -BURST }, first == k);
            }
        }
        // cheap noise (an LCG): the simulation makes 57 million samples
        self.noise = self
            .noise
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        let span = 2 * NOISE as u64 + 1;
        (((self.noise >> 33) % span) as i16 - NOISE, false)
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

/// A leg's script: (true time, event).
#[derive(Debug, Clone, Copy)]
pub enum Event {
    /// No packets for `secs`; the RTP clock runs on unless `freeze_ts`.
    Hold { secs: f64, freeze_ts: bool },
    /// A new SSRC, sequence and timestamp base.
    ChangeSsrc,
    /// The timestamp jumps by this many ticks.
    JumpTs(u32),
}

/// What the network does to a leg.
#[derive(Debug, Clone, Copy)]
pub struct Network {
    /// The least delay, seconds.
    pub base_delay: f64,
    /// Mean of the exponential jitter on top, seconds.
    pub jitter_mean: f64,
    /// Cap of the jitter, seconds.
    pub jitter_max: f64,
    /// Probability that a packet is lost (never the one holding a burst's first sample).
    pub loss: f64,
    /// Probability that a packet arrives twice.
    pub duplicates: f64,
}

/// All datagrams of one leg until true time `end`, with arrival times
/// (loss, duplicates, jitter applied), in sending order.
pub fn leg(
    sender: &mut Sender,
    script: &[(f64, Event)],
    net: &Network,
    seed: u64,
    end: f64,
) -> Vec<Arrival> {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut script = script.to_vec();
    script.sort_by(|a, b| a.0.total_cmp(&b.0));
    let mut next_event = 0;
    let mut out = Vec::new();
    loop {
        let t = sender.time_of(sender.k);
        if t >= end {
            break;
        }
        if next_event < script.len() && t >= script[next_event].0 {
            match script[next_event].1 {
                Event::Hold { secs, freeze_ts } => sender.hold(secs, freeze_ts),
                Event::ChangeSsrc => sender.change_ssrc(),
                Event::JumpTs(ticks) => sender.jump_ts(ticks),
            }
            next_event += 1;
            continue;
        }
        let (sent, datagram, has_onset) = sender.next_packet();
        if !has_onset && rng.random_bool(net.loss) {
            continue;
        }
        // jitter: exponential, capped (packets are 20 ms apart, so they reorder)
        let u: f64 = rng.random_range(1e-9..1.0);
        let jitter = (-u.ln() * net.jitter_mean).min(net.jitter_max);
        let at = sent + net.base_delay + jitter;
        if rng.random_bool(net.duplicates) {
            let again = at + rng.random_range(0.0..0.05);
            out.push(Arrival {
                at: again,
                datagram: datagram.clone(),
                has_onset,
            });
        }
        out.push(Arrival {
            at,
            datagram,
            has_onset,
        });
    }
    out
}
