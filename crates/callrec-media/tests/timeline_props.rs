//! Timeline property: for any two sender clocks within +-100 ppm, any loss
//! up to 5%, jitter up to a 15 ms mean, and any base delay, two legs
//! carrying bursts at the same true instants come out within 20 ms of each
//! other and of the arrival clock (three simulated minutes per case).

mod sim;

use callrec_media::Role;
use callrec_media::timeline::{MediaTime, PLACEMENT_DELAY, Timeline, TimelineConfig};
use proptest::prelude::*;
use sim::{Meter, Network, RATE, Sender, leg, nearest};

const SECS: f64 = 180.0;

proptest! {
    #![proptest_config(ProptestConfig { cases: 12, ..ProptestConfig::default() })]

    #[test]
    fn any_two_legs_within_spec_stay_aligned(
        ppm_a in -100.0f64..100.0,
        ppm_b in -100.0f64..100.0,
        loss in 0.0f64..0.05,
        jitter_mean in 0.0f64..0.015,
        base_delay in 0.005f64..0.150,
        start_a in 0.0f64..2.0,
        start_b in 0.0f64..2.0,
        seed in any::<u64>(),
    ) {
        let bursts: Vec<f64> = (0..).map(|i| 3.0 + 2.0 * f64::from(i)).take_while(|&t| t < SECS - 1.0).collect();
        let net = Network { base_delay, jitter_mean, jitter_max: 0.150, loss, duplicates: 0.01 };
        let mut a = Sender::new(seed, ppm_a, false, start_a, bursts.clone());
        let mut b = Sender::new(seed ^ 1, ppm_b, true, start_b, bursts.clone());
        let mut arrivals: Vec<(Role, sim::Arrival)> = leg(&mut a, &[], &net, seed ^ 2, SECS)
            .into_iter()
            .map(|x| (Role::EndUser, x))
            .chain(leg(&mut b, &[], &net, seed ^ 3, SECS).into_iter().map(|x| (Role::Agent, x)))
            .collect();
        arrivals.sort_by(|x, y| x.1.at.total_cmp(&y.1.at));

        let mut tl = Timeline::new(TimelineConfig::default(), MediaTime::ZERO);
        let sa = tl.add_rtp_source(Role::EndUser, &[]);
        let sb = tl.add_rtp_source(Role::Agent, &[]);
        let mut meter = Meter::default();
        let mut out = Vec::new();
        for (role, x) in &arrivals {
            let at = MediaTime::from_secs_f64(x.at);
            tl.push_rtp(if *role == Role::EndUser { sa } else { sb }, at, &x.datagram).unwrap();
            tl.poll(at, &mut out);
            meter.feed(&out);
            out.clear();
        }
        tl.finish(&mut out);
        meter.feed(&out);

        for &t in &bursts {
            let expected = (t + base_delay + PLACEMENT_DELAY.as_secs_f64()) * RATE;
            let l = nearest(&meter.left.found, expected, 800.0);
            let r = nearest(&meter.right.found, expected, 800.0);
            prop_assert!(l.is_some() && r.is_some(), "burst at {t} s: left {l:?}, right {r:?}");
            let (l, r) = (l.unwrap() as f64, r.unwrap() as f64);
            prop_assert!((l - r).abs() <= 160.0, "burst at {t} s: {:.1} ms apart", (l - r).abs() / 8.0);
            prop_assert!((l - expected).abs() <= 160.0 && (r - expected).abs() <= 160.0,
                "burst at {t} s off the arrival clock: left {:.1} ms, right {:.1} ms",
                (l - expected) / 8.0, (r - expected) / 8.0);
        }
    }
}
