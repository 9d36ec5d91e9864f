//! Timeline behaviour at the boundaries: placement on arrival time, channel
//! placement by role (no crosstalk), mixing of several sources into one
//! channel, pause spans, bad packets, late packets, re-anchoring.

mod sim;

use std::time::Duration;

use callrec_media::Role;
use callrec_media::codec::Codec;
use callrec_media::codec::g711::linear_to_ulaw;
use callrec_media::rtp::RtpPacket;
use callrec_media::timeline::{
    MediaError, MediaTime, PLACEMENT_DELAY, PauseMode, PauseSpan, Timeline, TimelineConfig,
};
use sim::{Meter, Sender};

/// A 20 ms PCMU packet of `samples` (160 of them).
fn pcmu(ssrc: u32, seq: u16, ts: u32, samples: impl Iterator<Item = i16>) -> Vec<u8> {
    let payload: Vec<u8> = samples.map(linear_to_ulaw).collect();
    let mut out = Vec::new();
    RtpPacket {
        marker: false,
        payload_type: 0,
        sequence: seq,
        timestamp: ts,
        ssrc,
        csrcs: vec![],
        extension: None,
        payload: &payload,
    }
    .write(&mut out);
    out
}

/// A 1 kHz square wave of amplitude `a`, 160 samples.
fn square(a: i16) -> impl Iterator<Item = i16> {
    (0..160).map(move |i| if i / 4 % 2 == 0 { a } else { -a })
}

/// Sends `count` 20 ms packets of `samples` from `first_arrival` (each
/// placed at its arrival: see `PLACEMENT_DELAY`), polling as it goes; returns nothing, output goes to `out`.
#[allow(clippy::too_many_arguments)]
fn send(
    tl: &mut Timeline,
    src: callrec_media::timeline::SourceId,
    ssrc: u32,
    seq0: u16,
    ts0: u32,
    first_arrival: f64,
    count: usize,
    amplitude: i16,
    out: &mut Vec<i16>,
) {
    for i in 0..count {
        let at = MediaTime::from_secs_f64(first_arrival + 0.020 * i as f64);
        let d = pcmu(
            ssrc,
            seq0.wrapping_add(i as u16),
            ts0.wrapping_add(160 * i as u32),
            square(amplitude),
        );
        tl.push_rtp(src, at, &d).unwrap();
        tl.poll(at, out);
    }
}

fn frames(out: &[i16]) -> impl Iterator<Item = (i16, i16)> + '_ {
    out.chunks_exact(2).map(|f| (f[0], f[1]))
}

fn first_loud(out: &[i16], channel: usize) -> Option<usize> {
    out.chunks_exact(2)
        .position(|f| f[channel].unsigned_abs() > 1000)
}

#[test]
fn a_late_first_packet_gives_leading_silence() {
    // the clock's origin is not zero: the recording starts at 100 s
    let start = 100.0;
    let mut tl = Timeline::new(TimelineConfig::default(), MediaTime::from_secs_f64(start));
    let src = tl.add_rtp_source(Role::EndUser, &[]);
    let mut out = Vec::new();
    // the first packet arrives 1.5 s after the start; it holds the 20 ms before that
    send(&mut tl, src, 1, 10, 5000, start + 1.5, 100, 8000, &mut out);
    tl.finish(&mut out);
    assert_eq!(first_loud(&out, 0), Some(12_000));
    assert_eq!(
        out.len() / 2,
        12_000 + 100 * 160,
        "ends with the last packet"
    );
    assert!(frames(&out).take(12_000).all(|(l, r)| l == 0 && r == 0));
}

#[test]
fn each_role_is_on_its_own_channel_only() {
    for (role, loud, quiet) in [(Role::EndUser, 0, 1), (Role::Agent, 1, 0)] {
        let mut tl = Timeline::new(TimelineConfig::default(), MediaTime::ZERO);
        let talker = tl.add_rtp_source(role, &[]);
        let other_role = if role == Role::EndUser {
            Role::Agent
        } else {
            Role::EndUser
        };
        let silent = tl.add_rtp_source(other_role, &[]);
        let mut out = Vec::new();
        for i in 0..500u16 {
            let at = MediaTime::from_millis(1000 + 20 * u64::from(i));
            let ts = 160 * u32::from(i);
            tl.push_rtp(talker, at, &pcmu(1, i, ts, square(10_000)))
                .unwrap();
            tl.push_rtp(silent, at, &pcmu(2, i, ts, std::iter::repeat_n(0, 160)))
                .unwrap();
            tl.poll(at, &mut out);
        }
        tl.finish(&mut out);
        let energy = |ch: usize| {
            out.chunks_exact(2)
                .map(|f| f64::from(f[ch]).powi(2))
                .sum::<f64>()
        };
        let (l, q) = (energy(loud), energy(quiet));
        assert!(l > 1e9, "{role}: the talker's channel has its audio ({l})");
        // mu-law has no exact zero code for 0: 0xff decodes to 0, so quiet is exactly silent
        assert_eq!(q, 0.0, "{role}: crosstalk into channel {}", quiet + 1);
    }
}

#[test]
fn a_third_party_is_mixed_into_the_agent_channel_with_saturation() {
    let mut tl = Timeline::new(TimelineConfig::default(), MediaTime::ZERO);
    let agent = tl.add_rtp_source(Role::Agent, &[]);
    let third = tl.add_rtp_source(Role::Agent, &[]);
    let mut out = Vec::new();
    for i in 0..200u16 {
        let at = MediaTime::from_millis(500 + 20 * u64::from(i));
        let ts = 4000 + 160 * u32::from(i);
        tl.push_rtp(agent, at, &pcmu(1, i, ts, std::iter::repeat_n(8000, 160)))
            .unwrap();
        // the third party joins after 2 s, loud enough to saturate the sum after 3 s
        if i >= 100 {
            let level = if i >= 150 { 30_000 } else { 8000 };
            tl.push_rtp(
                third,
                at,
                &pcmu(
                    9,
                    i,
                    77 + 160 * u32::from(i),
                    std::iter::repeat_n(level, 160),
                ),
            )
            .unwrap();
        }
        tl.poll(at, &mut out);
    }
    tl.finish(&mut out);
    let right: Vec<i16> = out.chunks_exact(2).map(|f| f[1]).collect();
    assert!(
        out.chunks_exact(2).all(|f| f[0] == 0),
        "nothing on the end user's channel"
    );
    // positions: agent from 0.48 s; third from 2.48 s; the loud part from 3.48 s
    let agent_alone = right[(0.6 * 8000.0) as usize];
    let both = right[(3.0 * 8000.0) as usize];
    let saturated = right[(4.0 * 8000.0) as usize];
    assert!((7900..=8200).contains(&agent_alone), "{agent_alone}");
    assert!((15_800..=16_400).contains(&both), "{both}");
    assert_eq!(saturated, i16::MAX);
}

fn paused_run(mode: PauseMode) -> (Vec<i16>, Vec<PauseSpan>) {
    let config = TimelineConfig {
        pause_mode: mode,
        ..TimelineConfig::default()
    };
    let mut tl = Timeline::new(config, MediaTime::ZERO);
    let src = tl.add_rtp_source(Role::EndUser, &[]);
    let mut out = Vec::new();
    for i in 0..1000u16 {
        let at = MediaTime::from_millis(20 * u64::from(i));
        tl.push_rtp(src, at, &pcmu(3, i, 160 * u32::from(i), square(5000)))
            .unwrap();
        if i == 250 {
            tl.pause(MediaTime::from_secs(5));
        }
        if i == 400 {
            tl.resume(MediaTime::from_secs(8));
        }
        tl.poll(at, &mut out);
    }
    tl.finish(&mut out);
    assert_eq!(tl.samples_written() as usize, out.len() / 2);
    (out, tl.pause_spans().to_vec())
}

#[test]
fn pause_skip_and_silence_differ_by_exactly_the_paused_span() {
    let (skip, skip_spans) = paused_run(PauseMode::Skip);
    let (silence, silence_spans) = paused_run(PauseMode::Silence);
    assert_eq!(silence.len() / 2, 20 * 8000);
    assert_eq!(
        silence.len() / 2 - skip.len() / 2,
        3 * 8000,
        "the paused span is 3 s"
    );
    // silence mode: exactly the span is zero, and audio on both sides
    let left: Vec<i16> = silence.chunks_exact(2).map(|f| f[0]).collect();
    assert!(left[40_000..64_000].iter().all(|&s| s == 0));
    assert!(left[39_990..40_000].iter().all(|&s| s != 0));
    assert!(left[64_000..64_010].iter().all(|&s| s != 0));
    // skip mode: no silence at all
    assert!(skip.chunks_exact(2).all(|f| f[0] != 0));
    let expected = |end_sample| PauseSpan {
        start: MediaTime::from_secs(5),
        end: Some(MediaTime::from_secs(8)),
        start_sample: 40_000,
        end_sample: Some(end_sample),
    };
    assert_eq!(skip_spans, vec![expected(40_000)]);
    assert_eq!(silence_spans, vec![expected(64_000)]);
}

#[test]
fn a_pause_open_at_the_end_is_closed_by_finish() {
    let mut tl = Timeline::new(TimelineConfig::default(), MediaTime::ZERO);
    let src = tl.add_rtp_source(Role::Agent, &[]);
    let mut out = Vec::new();
    send(&mut tl, src, 1, 0, 0, 0.0, 50, 4000, &mut out);
    tl.pause(MediaTime::from_secs(1));
    send(&mut tl, src, 1, 50, 50 * 160, 1.0, 50, 4000, &mut out);
    tl.finish(&mut out);
    assert_eq!(out.len() / 2, 8000, "the 1 s after the pause is left out");
    let span = tl.pause_spans()[0];
    assert_eq!((span.start_sample, span.end_sample), (8000, Some(8000)));
    assert_eq!(span.end, Some(MediaTime::from_secs(2)));
}

#[test]
fn a_bad_packet_is_an_error_for_itself_only() {
    let mut tl = Timeline::new(TimelineConfig::default(), MediaTime::ZERO);
    let src = tl.add_rtp_source(Role::EndUser, &[(96, Codec::Opus)]);
    let mut out = Vec::new();
    let at = MediaTime::from_millis(20);
    assert!(matches!(
        tl.push_rtp(src, at, &[0x80, 1, 2]),
        Err(MediaError::Rtp(_))
    ));
    let mut dynamic = pcmu(1, 0, 0, square(1000));
    dynamic[1] = 97; // not in the SDP, not static
    let err = tl.push_rtp(src, at, &dynamic).unwrap_err();
    assert!(
        matches!(err, MediaError::UnknownPayloadType { payload_type: 97 }),
        "{err}"
    );
    assert!(err.to_string().contains("payload type 97"), "{err}");
    let other = tl.add_rtp_source(Role::Agent, &[]);
    let _ = other;
    // the source keeps working
    send(&mut tl, src, 1, 0, 0, 0.0, 50, 6000, &mut out);
    tl.finish(&mut out);
    assert_eq!(first_loud(&out, 0), Some(0));
    assert_eq!(tl.stats(src).received, 50);
}

#[test]
fn comfort_noise_is_a_gap_not_an_error() {
    let mut tl = Timeline::new(TimelineConfig::default(), MediaTime::ZERO);
    let src = tl.add_rtp_source(Role::EndUser, &[]);
    let mut cn = pcmu(1, 0, 0, std::iter::empty());
    cn[1] = 13;
    cn.push(40);
    assert!(tl.push_rtp(src, MediaTime::from_millis(20), &cn).is_ok());
}

#[test]
fn a_packet_later_than_the_jitter_delay_is_dropped_and_counted() {
    let mut tl = Timeline::new(TimelineConfig::default(), MediaTime::ZERO);
    let src = tl.add_rtp_source(Role::EndUser, &[]);
    let mut out = Vec::new();
    for i in 0..100u16 {
        if i == 50 {
            continue; // arrives 500 ms late, below
        }
        let at = MediaTime::from_millis(20 * u64::from(i));
        tl.push_rtp(src, at, &pcmu(1, i, 160 * u32::from(i), square(5000)))
            .unwrap();
        tl.poll(at, &mut out);
        if i == 74 {
            let late = MediaTime::from_millis(20 * 50 + 500);
            tl.push_rtp(src, late, &pcmu(1, 50, 160 * 50, square(5000)))
                .unwrap();
        }
    }
    tl.finish(&mut out);
    let left: Vec<i16> = out.chunks_exact(2).map(|f| f[0]).collect();
    assert!(
        left[50 * 160..51 * 160].iter().all(|&s| s == 0),
        "the lost packet is silence"
    );
    assert!(left[49 * 160..50 * 160].iter().all(|&s| s != 0));
    assert!(left[51 * 160..52 * 160].iter().all(|&s| s != 0));
    let stats = tl.stats(src);
    assert_eq!(
        (stats.lost, stats.late, stats.received),
        (1, 1, 99),
        "{stats:?}"
    );
}

/// Something that happens to a sender before packet number `.0`.
type SenderEvent<'a> = (usize, &'a dyn Fn(&mut Sender));

/// Runs one `sender` (EndUser) with `events` at given packet indices; returns the meter.
fn run_one(mut sender: Sender, packets: usize, events: &[SenderEvent<'_>]) -> (Meter, u64) {
    let mut tl = Timeline::new(TimelineConfig::default(), MediaTime::ZERO);
    let src = tl.add_rtp_source(Role::EndUser, &[]);
    let mut meter = Meter::default();
    let mut out = Vec::new();
    for i in 0..packets {
        for (at, f) in events {
            if *at == i {
                f(&mut sender);
            }
        }
        let (sent, d, _) = sender.next_packet();
        let at = MediaTime::from_secs_f64(sent + 0.030);
        tl.push_rtp(src, at, &d).unwrap();
        tl.poll(at, &mut out);
        meter.feed(&out);
        out.clear();
    }
    tl.finish(&mut out);
    meter.feed(&out);
    (meter, tl.stats(src).reanchors)
}

/// Every burst at its true time plus 30 ms network delay plus the placement
/// delay, within 2 ms.
fn assert_bursts_in_place(meter: &Meter, bursts: &[f64]) {
    for &b in bursts {
        let expected = (b + 0.030 + PLACEMENT_DELAY.as_secs_f64()) * 8000.0;
        let found = sim::nearest(&meter.left.found, expected, 800.0)
            .unwrap_or_else(|| panic!("burst at {b} s missing: {:?}", meter.left.found));
        assert!(
            (found as f64 - expected).abs() <= 16.0,
            "burst at {b} s found at {found}, expected {expected}"
        );
    }
}

#[test]
fn an_ssrc_change_reanchors_on_arrival_time() {
    let bursts: Vec<f64> = (1..20).map(|i| f64::from(i) * 0.5).collect();
    let sender = Sender::new(5, 0.0, false, 0.0, bursts.clone());
    let (meter, reanchors) = run_one(sender, 500, &[(200, &|s: &mut Sender| s.change_ssrc())]);
    assert_eq!(reanchors, 1);
    assert_bursts_in_place(&meter, &bursts);
}

#[test]
fn timestamp_jumps_either_way_reanchor_on_arrival_time() {
    let bursts: Vec<f64> = (1..40).map(|i| f64::from(i) * 0.5).collect();
    let sender = Sender::new(6, 0.0, false, 0.0, bursts.clone());
    let (meter, reanchors) = run_one(
        sender,
        1000,
        &[
            (200, &|s: &mut Sender| s.jump_ts(8000 * 3600)),
            (600, &|s: &mut Sender| {
                s.jump_ts(0u32.wrapping_sub(8000 * 10))
            }),
        ],
    );
    assert_eq!(reanchors, 2);
    // a backward jump costs the packets of the confirmation run (about 200 ms)
    let kept: Vec<f64> = bursts
        .iter()
        .copied()
        .filter(|&b| !(12.0..12.5).contains(&b))
        .collect();
    assert_bursts_in_place(&meter, &kept);
}

#[test]
fn a_small_backward_timestamp_jump_is_followed_within_a_second() {
    // 100 ms back: less than the jitter delay, so no packet is dropped as late,
    // but the lower envelope would remember the old offset for its whole window
    let bursts: Vec<f64> = (1..40).map(|i| f64::from(i) * 0.5).collect();
    let sender = Sender::new(8, 0.0, false, 0.0, bursts.clone());
    let (meter, reanchors) = run_one(
        sender,
        1000,
        &[(400, &|s: &mut Sender| s.jump_ts(0u32.wrapping_sub(800)))],
    );
    assert_eq!(reanchors, 1);
    let kept: Vec<f64> = bursts
        .iter()
        .copied()
        .filter(|&b| !(8.0..9.0).contains(&b))
        .collect();
    assert_bursts_in_place(&meter, &kept);
}

#[test]
fn a_hold_with_a_frozen_rtp_clock_resumes_on_arrival_time() {
    let bursts: Vec<f64> = (1..30)
        .map(|i| f64::from(i) * 0.5)
        .filter(|b| !(4.0..10.0).contains(b))
        .collect();
    let sender = Sender::new(7, 0.0, false, 0.0, bursts.clone());
    let (meter, reanchors) = run_one(sender, 600, &[(200, &|s: &mut Sender| s.hold(6.0, true))]);
    assert_eq!(reanchors, 1);
    assert_bursts_in_place(&meter, &bursts);
}

#[test]
fn a_removed_source_keeps_what_it_sent_and_refuses_more() {
    let mut tl = Timeline::new(TimelineConfig::default(), MediaTime::ZERO);
    let src = tl.add_rtp_source(Role::Agent, &[]);
    let mut out = Vec::new();
    send(&mut tl, src, 1, 0, 0, 0.0, 50, 6000, &mut out);
    tl.remove_source(src, MediaTime::from_secs(1));
    let after = pcmu(1, 50, 50 * 160, square(6000));
    assert!(matches!(
        tl.push_rtp(src, MediaTime::from_millis(1020), &after),
        Err(MediaError::SourceRemoved(_))
    ));
    tl.poll(MediaTime::from_secs(3), &mut out);
    tl.finish(&mut out);
    let right: Vec<i16> = out.chunks_exact(2).map(|f| f[1]).collect();
    assert!(
        right[..8000].iter().all(|&s| s != 0),
        "the second it sent is there"
    );
    assert!(right[8000..].iter().all(|&s| s == 0));
}

#[test]
fn poll_emits_only_what_is_older_than_the_jitter_delay() {
    let config = TimelineConfig {
        jitter_delay: Duration::from_millis(200),
        ..TimelineConfig::default()
    };
    let mut tl = Timeline::new(config, MediaTime::ZERO);
    let _src = tl.add_rtp_source(Role::EndUser, &[]);
    let mut out = Vec::new();
    tl.poll(MediaTime::from_millis(1000), &mut out);
    assert_eq!(out.len() / 2, 800 * 8, "0.8 s of silence");
    tl.poll(MediaTime::from_millis(1000), &mut out);
    assert_eq!(out.len() / 2, 6400, "nothing twice");
    tl.poll(MediaTime::from_millis(500), &mut out);
    assert_eq!(out.len() / 2, 6400, "time going back emits nothing");
    assert_eq!(tl.samples_written(), 6400);
}
