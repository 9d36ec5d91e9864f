//! Sequencer properties: any arrival order within the reorder window, with
//! duplicates, comes out once each and in order; sequence numbers and
//! timestamps extend across wrap-around; loss is counted; a new SSRC or a
//! confirmed sequence jump starts a new epoch.

use std::time::Duration;

use callrec_media::rtp::RtpPacket;
use callrec_media::sequencer::{PushOutcome, SequencedPacket, Sequencer, SequencerConfig};
use callrec_media::timeline::MediaTime;
use proptest::prelude::*;

/// One sent packet: sequence, timestamp, ssrc.
#[derive(Debug, Clone, Copy)]
struct Sent {
    seq: u16,
    ts: u32,
    ssrc: u32,
}

fn stream(ssrc: u32, seq0: u16, ts0: u32, n: usize) -> Vec<Sent> {
    (0..n)
        .map(|i| Sent {
            seq: seq0.wrapping_add(i as u16),
            ts: ts0.wrapping_add(160 * i as u32),
            ssrc,
        })
        .collect()
}

fn push(s: &mut Sequencer, at: MediaTime, p: Sent) -> PushOutcome {
    let payload = p.seq.to_be_bytes();
    let packet = RtpPacket {
        marker: false,
        payload_type: 0,
        sequence: p.seq,
        timestamp: p.ts,
        ssrc: p.ssrc,
        csrcs: vec![],
        extension: None,
        payload: &payload,
    };
    s.push(at, &packet)
}

/// Feeds `arrivals` 1 ms apart, popping after each, then drains.
fn run(config: SequencerConfig, arrivals: &[Sent]) -> (Vec<SequencedPacket>, Sequencer) {
    let mut s = Sequencer::new(config);
    let mut out = Vec::new();
    for (i, &p) in arrivals.iter().enumerate() {
        let now = MediaTime::from_millis(i as u64);
        push(&mut s, now, p);
        while let Some(p) = s.pop(now) {
            out.push(p);
        }
        assert!(s.held() <= config.max_reorder + 2, "holds {}", s.held());
    }
    while let Some(p) = s.drain() {
        out.push(p);
    }
    (out, s)
}

/// Reorders `packets` so that each moves at most `window - 1` places later,
/// and inserts duplicates (each within the window too).
fn shuffle_within(packets: &[Sent], keys: &[u16], window: usize, dups: &[bool]) -> Vec<Sent> {
    let mut keyed: Vec<(usize, usize, Sent)> = Vec::new();
    for (i, p) in packets.iter().enumerate() {
        let k = keys[i % keys.len()] as usize % window;
        keyed.push((i + k, i, *p));
        if dups[i % dups.len()] {
            keyed.push((i + (k + 3) % window, i, *p));
        }
    }
    keyed.sort_by_key(|&(key, i, _)| (key, i));
    keyed.into_iter().map(|(_, _, p)| p).collect()
}

fn wide_config() -> SequencerConfig {
    SequencerConfig {
        max_wait: Duration::from_secs(10),
        max_reorder: 64,
        ..SequencerConfig::default()
    }
}

fn start_values() -> impl Strategy<Value = (u16, u32)> {
    (
        prop_oneof![Just(65_500u16), Just(0u16), any::<u16>()],
        prop_oneof![Just(u32::MAX - 5_000), Just(0u32), any::<u32>()],
    )
}

proptest! {
    #[test]
    fn reordered_packets_with_duplicates_come_out_once_in_order(
        (seq0, ts0) in start_values(),
        n in 1usize..400,
        window in 1usize..32,
        keys in proptest::collection::vec(any::<u16>(), 1..50),
        dups in proptest::collection::vec(proptest::bool::weighted(0.1), 1..50),
    ) {
        let sent = stream(7, seq0, ts0, n);
        let arrivals = shuffle_within(&sent, &keys, window, &dups);
        let duplicates = arrivals.len() - sent.len();
        let (out, s) = run(wide_config(), &arrivals);
        prop_assert_eq!(out.len(), n);
        for (i, p) in out.iter().enumerate() {
            prop_assert_eq!(p.sequence as u16, sent[i].seq);
            prop_assert_eq!(p.payload.as_slice(), &sent[i].seq.to_be_bytes()[..]);
            // extended: strictly consecutive, no wrap visible
            prop_assert_eq!(p.sequence, out[0].sequence + i as u64);
            prop_assert_eq!(p.timestamp, i64::from(ts0) + 160 * i as i64);
            prop_assert_eq!(p.epoch, 0);
        }
        let stats = s.stats();
        prop_assert_eq!(stats.duplicates as usize, duplicates);
        prop_assert_eq!(stats.lost, 0);
        prop_assert_eq!(stats.late, 0);
        prop_assert_eq!(stats.received as usize, n);
    }

    #[test]
    fn lost_packets_are_skipped_and_counted(
        (seq0, ts0) in start_values(),
        n in 2usize..300,
        lose in proptest::collection::vec(proptest::bool::weighted(0.1), 1..40),
    ) {
        let sent = stream(9, seq0, ts0, n);
        // keep the first and last so that every loss is a gap between packets
        let kept: Vec<Sent> = sent
            .iter()
            .enumerate()
            .filter(|(i, _)| *i == 0 || *i == n - 1 || !lose[i % lose.len()])
            .map(|(_, p)| *p)
            .collect();
        let (out, s) = run(SequencerConfig::default(), &kept);
        prop_assert_eq!(out.len(), kept.len());
        let mut lost_before = 0;
        for (p, k) in out.iter().zip(&kept) {
            prop_assert_eq!(p.sequence as u16, k.seq);
            prop_assert_eq!(p.timestamp as u32, k.ts);
            lost_before += p.lost_before;
        }
        prop_assert_eq!(s.stats().lost as usize, n - kept.len());
        prop_assert_eq!(lost_before as usize, n - kept.len());
        prop_assert_eq!(out.last().unwrap().timestamp - out[0].timestamp, 160 * (n as i64 - 1));
    }

    #[test]
    fn a_new_ssrc_starts_a_new_epoch_after_the_old_one(
        (seq_a, ts_a) in start_values(),
        (seq_b, ts_b) in start_values(),
        n_a in 1usize..100,
        n_b in 1usize..100,
    ) {
        let a = stream(1, seq_a, ts_a, n_a);
        let b = stream(2, seq_b, ts_b, n_b);
        let arrivals: Vec<Sent> = a.iter().chain(&b).copied().collect();
        let (out, s) = run(SequencerConfig::default(), &arrivals);
        prop_assert_eq!(out.len(), n_a + n_b);
        for (p, sent) in out.iter().zip(&arrivals) {
            prop_assert_eq!(p.ssrc, sent.ssrc);
            prop_assert_eq!(p.sequence as u16, sent.seq);
            prop_assert_eq!(p.timestamp as u32, sent.ts);
            prop_assert_eq!(p.epoch, u32::from(sent.ssrc != 1));
        }
        prop_assert_eq!(s.stats().reanchors, 1);
        prop_assert_eq!(s.stats().lost, 0);
    }
}

#[test]
fn a_gap_is_waited_for_then_skipped_after_max_wait() {
    let config = SequencerConfig {
        max_wait: Duration::from_millis(60),
        ..SequencerConfig::default()
    };
    let mut s = Sequencer::new(config);
    let sent = stream(5, 100, 0, 4);
    push(&mut s, MediaTime::from_millis(0), sent[0]);
    assert_eq!(
        s.pop(MediaTime::from_millis(0)),
        None,
        "the first packet waits for reordering"
    );
    assert_eq!(
        s.pop(MediaTime::from_millis(60)).unwrap().sequence as u16,
        100
    );
    push(&mut s, MediaTime::from_millis(80), sent[2]);
    assert_eq!(
        s.pop(MediaTime::from_millis(100)),
        None,
        "101 may still come"
    );
    let p = s
        .pop(MediaTime::from_millis(140))
        .expect("waited 60 ms for 101");
    assert_eq!((p.sequence as u16, p.lost_before), (102, 1));
    assert_eq!(
        push(&mut s, MediaTime::from_millis(150), sent[1]),
        PushOutcome::Late
    );
    assert_eq!(
        push(&mut s, MediaTime::from_millis(150), sent[2]),
        PushOutcome::Duplicate
    );
    push(&mut s, MediaTime::from_millis(160), sent[3]);
    assert_eq!(
        s.pop(MediaTime::from_millis(160)).unwrap().sequence as u16,
        103,
        "in order: no wait"
    );
    let stats = s.stats();
    assert_eq!(
        (stats.lost, stats.late, stats.duplicates, stats.received),
        (1, 1, 1, 3)
    );
}

#[test]
fn a_full_reorder_window_forces_the_gap_to_be_skipped() {
    let config = SequencerConfig {
        max_wait: Duration::from_secs(100),
        max_reorder: 4,
        ..SequencerConfig::default()
    };
    let mut s = Sequencer::new(config);
    let sent = stream(5, 65_534, 0, 10);
    push(&mut s, MediaTime::ZERO, sent[0]);
    assert_eq!(s.drain().unwrap().sequence as u16, 65_534);
    // 65535 is lost; 0, 1, 2, 3 fill the window, 4 overflows it
    for p in &sent[2..6] {
        push(&mut s, MediaTime::ZERO, *p);
        assert_eq!(s.pop(MediaTime::ZERO), None);
    }
    push(&mut s, MediaTime::ZERO, sent[6]);
    let p = s.pop(MediaTime::ZERO).unwrap();
    assert_eq!((p.sequence as u16, p.lost_before), (0, 1));
    assert_eq!(p.sequence, out_ext(65_534) + 2, "extended across the wrap");
    assert_eq!(p.timestamp, 320);
}

fn out_ext(first: u16) -> u64 {
    (1 << 16) + u64::from(first)
}

#[test]
fn a_sequence_jump_confirmed_by_a_second_packet_reanchors() {
    let mut s = Sequencer::new(SequencerConfig::default());
    let a = stream(5, 1000, 50_000, 3);
    let b = stream(5, 30_000, 7, 3);
    for p in &a {
        push(&mut s, MediaTime::ZERO, *p);
    }
    assert_eq!(push(&mut s, MediaTime::ZERO, b[0]), PushOutcome::Probation);
    assert_eq!(push(&mut s, MediaTime::ZERO, b[1]), PushOutcome::Reanchored);
    push(&mut s, MediaTime::ZERO, b[2]);
    let out: Vec<SequencedPacket> = std::iter::from_fn(|| s.drain()).collect();
    let seqs: Vec<(u16, u32, u32)> = out
        .iter()
        .map(|p| (p.sequence as u16, p.timestamp as u32, p.epoch))
        .collect();
    assert_eq!(
        seqs,
        vec![
            (1000, 50_000, 0),
            (1001, 50_160, 0),
            (1002, 50_320, 0),
            (30_000, 7, 1),
            (30_001, 167, 1),
            (30_002, 327, 1)
        ]
    );
    assert_eq!(s.stats().reanchors, 1);
}

#[test]
fn a_single_stray_packet_does_not_reanchor() {
    let mut s = Sequencer::new(SequencerConfig::default());
    let a = stream(5, 1000, 0, 4);
    push(&mut s, MediaTime::ZERO, a[0]);
    push(&mut s, MediaTime::ZERO, a[1]);
    assert_eq!(
        push(
            &mut s,
            MediaTime::ZERO,
            Sent {
                seq: 40_000,
                ts: 9,
                ssrc: 5
            }
        ),
        PushOutcome::Probation
    );
    push(&mut s, MediaTime::ZERO, a[2]);
    push(&mut s, MediaTime::ZERO, a[3]);
    let seqs: Vec<u16> = std::iter::from_fn(|| s.drain())
        .map(|p| p.sequence as u16)
        .collect();
    assert_eq!(seqs, vec![1000, 1001, 1002, 1003]);
    assert_eq!(s.stats().reanchors, 0);
}

#[test]
fn stragglers_of_an_old_ssrc_are_late() {
    let mut s = Sequencer::new(SequencerConfig::default());
    let a = stream(1, 10, 0, 3);
    let b = stream(2, 500, 0, 2);
    push(&mut s, MediaTime::ZERO, a[0]);
    push(&mut s, MediaTime::ZERO, a[1]);
    push(&mut s, MediaTime::ZERO, b[0]);
    assert_eq!(push(&mut s, MediaTime::ZERO, a[2]), PushOutcome::Late);
    push(&mut s, MediaTime::ZERO, b[1]);
    let ssrcs: Vec<u32> = std::iter::from_fn(|| s.drain()).map(|p| p.ssrc).collect();
    assert_eq!(ssrcs, vec![1, 1, 2, 2]);
}
