//! The timeline under hostile input: random sequence numbers, timestamps,
//! SSRCs, payload types and payload lengths, arriving in time order. It must
//! never panic, never buffer more than its bound, and always emit exactly
//! the time that passed.

use callrec_media::Role;
use callrec_media::codec::Codec;
use callrec_media::rtp::RtpPacket;
use callrec_media::timeline::{MediaTime, PauseMode, Timeline, TimelineConfig};
use proptest::prelude::*;

#[derive(Debug, Clone)]
struct Input {
    source: usize,
    gap_micros: u32,
    ssrc: u32,
    sequence: u16,
    timestamp: u32,
    payload_type: u8,
    payload_len: usize,
    pause: Option<bool>,
}

fn input() -> impl Strategy<Value = Input> {
    (
        0usize..3,
        0u32..100_000,
        0u32..3,
        any::<u16>(),
        prop_oneof![any::<u32>(), 0u32..2000],
        prop_oneof![Just(0u8), Just(8), Just(9), Just(96), Just(13), Just(101)],
        0usize..400,
        proptest::option::weighted(0.02, any::<bool>()),
    )
        .prop_map(
            |(source, gap_micros, ssrc, sequence, timestamp, payload_type, payload_len, pause)| {
                Input {
                    source,
                    gap_micros,
                    ssrc,
                    sequence,
                    timestamp,
                    payload_type,
                    payload_len,
                    pause,
                }
            },
        )
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn hostile_streams_never_panic_and_time_is_kept(
        inputs in proptest::collection::vec(input(), 1..300),
        silence in any::<bool>(),
    ) {
        let config = TimelineConfig {
            pause_mode: if silence { PauseMode::Silence } else { PauseMode::Skip },
            ..TimelineConfig::default()
        };
        let mut tl = Timeline::new(config, MediaTime::from_secs(5));
        let sources = [
            tl.add_rtp_source(Role::EndUser, &[]),
            tl.add_rtp_source(Role::Agent, &[(96, Codec::Opus)]),
            tl.add_rtp_source(Role::Agent, &[]),
        ];
        let mut now = MediaTime::from_secs(5);
        let mut out = Vec::new();
        let mut payload = vec![0u8; 400];
        for (i, x) in inputs.iter().enumerate() {
            now = MediaTime(now.0 + u64::from(x.gap_micros) * 1000);
            for (j, b) in payload.iter_mut().enumerate() {
                *b = (i * 31 + j * 7) as u8;
            }
            let mut d = Vec::new();
            RtpPacket {
                marker: false,
                payload_type: x.payload_type,
                sequence: x.sequence,
                timestamp: x.timestamp,
                ssrc: x.ssrc,
                csrcs: vec![],
                extension: None,
                payload: &payload[..x.payload_len],
            }
            .write(&mut d);
            let _ = tl.push_rtp(sources[x.source], now, &d);
            match x.pause {
                Some(true) => tl.pause(now),
                Some(false) => tl.resume(now),
                None => {}
            }
            tl.poll(now, &mut out);
            prop_assert!(tl.buffered_samples() <= 61 * 8000, "buffered {}", tl.buffered_samples());
            prop_assert_eq!(out.len() % 2, 0);
            prop_assert_eq!(tl.samples_written() as usize, out.len() / 2);
        }
        let before_finish = out.len() / 2;
        tl.finish(&mut out);
        prop_assert_eq!(tl.samples_written() as usize, out.len() / 2);
        // what poll emitted is the time that passed, less the jitter delay and paused spans
        let elapsed = (now.0 - 5_000_000_000) as i64 * 8000 / 1_000_000_000 - 1600;
        let paused: i64 = if silence {
            0
        } else {
            tl.pause_spans()
                .iter()
                .map(|s| {
                    let end = s.end.map_or(now.0, |e| e.0).min(now.0.saturating_sub(200_000_000));
                    let start = s.start.0;
                    (end.saturating_sub(start) as i64 * 8000 / 1_000_000_000).max(0)
                })
                .sum()
        };
        if elapsed > 0 {
            let diff = before_finish as i64 - (elapsed - paused);
            prop_assert!(diff.abs() <= 2 * tl.pause_spans().len() as i64 + 1, "emitted {before_finish}, elapsed {elapsed}, paused {paused}");
        }
    }
}
