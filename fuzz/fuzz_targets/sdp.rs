//! Fuzzes the SDP offer parser and the answer built from what it accepts:
//! no panic, and the answer always has one m-line per offered m-line.
#![no_main]

use callrec_siprec::sdp::{AnswerParams, SessionDescription, build_answer};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(offer) = SessionDescription::parse(data) else {
        return;
    };
    let ports: Vec<Option<u16>> = (0..offer.media.len())
        .map(|i| (i % 3 != 2).then_some(40000 + (i as u16 % 1000) * 2))
        .collect();
    let params = AnswerParams {
        address: "192.0.2.1".parse().unwrap(),
        session_id: 1,
        session_version: 1,
    };
    let answer = build_answer(&offer, &ports, &params).expect("one port per m-line");
    let reparsed = SessionDescription::parse(answer.sdp.as_bytes()).expect("our answer parses");
    assert_eq!(reparsed.media.len(), offer.media.len());
    let _ = offer.recordable_labels();
});
