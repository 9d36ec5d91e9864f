//! The spec's alignment promise, measured: two legs of a simulated one-hour
//! call, one sender clock at +100 ppm and the other at -100 ppm against the
//! arrival clock, 20 ms G.711 packets with 2% loss, 0.5% duplicates, jitter
//! that reorders, a 30 s hold on each leg (one with the RTP clock running,
//! one frozen), an SSRC change and a timestamp jump. Both legs carry a 60 ms
//! burst at the same true instants every 3 s; the output must have them
//! within 20 ms of each other, all along.
//!
//! Loss is random except for the packets that carry a burst's first sample:
//! losing that one would move the measured onset by up to 20 ms for reasons
//! that have nothing to do with alignment.

mod sim;

use callrec_media::Role;
use callrec_media::codec::Codec;
use callrec_media::timeline::{MediaTime, PLACEMENT_DELAY, Timeline, TimelineConfig};
use sim::{Arrival, Event, Meter, Network, RATE, Sender, leg, nearest};

const HOUR: f64 = 3600.0;
const BASE_DELAY: f64 = 0.040;
const NETWORK: Network = Network {
    base_delay: BASE_DELAY,
    jitter_mean: 0.008,
    jitter_max: 0.150,
    loss: 0.02,
    duplicates: 0.005,
};

#[test]
fn two_drifting_lossy_legs_stay_within_20_ms_over_an_hour() {
    let bursts: Vec<f64> = (0..)
        .map(|i| 2.0 + 3.0 * f64::from(i))
        .take_while(|&t| t < HOUR - 2.0)
        .collect();
    // End user: +100 ppm, PCMU, hold at 20:00 with its RTP clock running, a timestamp jump at 45:00.
    let mut end_user = Sender::new(1, 100.0, false, 0.300, bursts.clone());
    let end_user_script = [
        (
            1200.0,
            Event::Hold {
                secs: 30.0,
                freeze_ts: false,
            },
        ),
        (2700.0, Event::JumpTs(123_456_789)),
    ];
    // Agent: -100 ppm, PCMA, an SSRC change at 30:00, hold at 50:00 with its RTP clock frozen.
    let mut agent = Sender::new(2, -100.0, true, 0.450, bursts.clone());
    let agent_script = [
        (1800.0, Event::ChangeSsrc),
        (
            3000.0,
            Event::Hold {
                secs: 30.0,
                freeze_ts: true,
            },
        ),
    ];
    let holds = [(1200.0, 1230.0), (3000.0, 3030.0)];

    let a = leg(&mut end_user, &end_user_script, &NETWORK, 11, HOUR);
    let b = leg(&mut agent, &agent_script, &NETWORK, 12, HOUR);
    let mut arrivals: Vec<(Role, Arrival)> = a
        .into_iter()
        .map(|x| (Role::EndUser, x))
        .chain(b.into_iter().map(|x| (Role::Agent, x)))
        .collect();
    arrivals.sort_by(|x, y| x.1.at.total_cmp(&y.1.at));
    let reordered = {
        let mut n = 0;
        for role in [Role::EndUser, Role::Agent] {
            let seqs: Vec<u16> = arrivals
                .iter()
                .filter(|(r, _)| *r == role)
                .map(|(_, x)| u16::from_be_bytes([x.datagram[2], x.datagram[3]]))
                .collect();
            n += seqs
                .windows(2)
                .filter(|w| (w[1].wrapping_sub(w[0]) as i16) < 0)
                .count();
        }
        n
    };

    let mut timeline = Timeline::new(TimelineConfig::default(), MediaTime::ZERO);
    let src_end_user = timeline.add_rtp_source(Role::EndUser, &[]);
    let src_agent = timeline.add_rtp_source(Role::Agent, &[(8, Codec::Pcma)]);
    let mut meter = Meter::default();
    let mut out = Vec::new();
    let mut max_buffered = 0;
    for (role, x) in &arrivals {
        let at = MediaTime::from_secs_f64(x.at);
        let src = if *role == Role::EndUser {
            src_end_user
        } else {
            src_agent
        };
        timeline.push_rtp(src, at, &x.datagram).unwrap();
        timeline.poll(at, &mut out);
        meter.feed(&out);
        out.clear();
        max_buffered = max_buffered.max(timeline.buffered_samples());
    }
    timeline.finish(&mut out);
    meter.feed(&out);

    // Pair the bursts: each expected at its true instant plus the network's base delay.
    let mut worst_between = 0.0f64;
    let mut worst_between_at = 0.0;
    let mut worst_absolute = 0.0f64;
    let mut paired = 0;
    let mut missing = Vec::new();
    for &t in &bursts {
        let expected = (t + BASE_DELAY + PLACEMENT_DELAY.as_secs_f64()) * RATE;
        let in_hold = holds.iter().any(|&(h0, h1)| t > h0 - 1.0 && t < h1 + 1.0);
        let l = nearest(&meter.left.found, expected, 1600.0);
        let r = nearest(&meter.right.found, expected, 1600.0);
        if let (Some(l), Some(r)) = (l, r) {
            let between = (l as f64 - r as f64).abs() / RATE * 1000.0;
            if between > worst_between {
                worst_between = between;
                worst_between_at = t;
            }
            for x in [l, r] {
                worst_absolute = worst_absolute.max((x as f64 - expected).abs() / RATE * 1000.0);
            }
            paired += 1;
        } else if !in_hold {
            missing.push((t, l, r));
        }
    }
    let stats_end_user = timeline.stats(src_end_user);
    let stats_agent = timeline.stats(src_agent);
    println!(
        "simulated hour: {} bursts paired, worst left/right offset {worst_between:.2} ms (at {worst_between_at:.0} s), \
         worst offset from the arrival clock {worst_absolute:.2} ms, {reordered} reordered arrivals, \
         max buffered {max_buffered} samples, output {} frames",
        paired, meter.frames
    );
    println!("end user: {stats_end_user:?}");
    println!("agent:    {stats_agent:?}");

    assert!(
        missing.is_empty(),
        "bursts not found in both channels: {missing:?}"
    );
    assert!(
        paired >= bursts.len() - 22,
        "only {paired} of {} bursts paired",
        bursts.len()
    );
    assert!(
        worst_between <= 20.0,
        "channels {worst_between:.2} ms apart at {worst_between_at} s"
    );
    assert!(
        worst_absolute <= 20.0,
        "a channel is {worst_absolute:.2} ms off the arrival clock"
    );
    assert!(
        reordered > 1000,
        "the simulation must reorder ({reordered})"
    );
    // the output is the call's length (last packets arrive at about 1 h + base delay)
    let expected_frames = (HOUR + BASE_DELAY + PLACEMENT_DELAY.as_secs_f64()) * RATE;
    assert!(
        (meter.frames as f64 - expected_frames).abs() < 0.1 * RATE,
        "{} frames",
        meter.frames
    );
    // bounded memory: the jitter delay plus a little, not the call
    assert!(max_buffered < 4000, "buffered {max_buffered} samples");
    // the drift was seen for what it is
    assert!(
        (stats_end_user.drift_ppm - 100.0).abs() < 10.0,
        "{stats_end_user:?}"
    );
    assert!(
        (stats_agent.drift_ppm + 100.0).abs() < 10.0,
        "{stats_agent:?}"
    );
    // loss and duplicates were counted (2% and 0.5% of 180,000 packets)
    for s in [stats_end_user, stats_agent] {
        assert!((3000..4300).contains(&s.lost), "{s:?}");
        assert!((600..1200).contains(&s.duplicates), "{s:?}");
        assert!(s.reanchors >= 1, "{s:?}");
    }
}
