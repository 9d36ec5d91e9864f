//! Fuzzes the RTP packet parser of callrec-media (build with
//! `--features rtp`).
#![no_main]

use callrec_media::rtp::RtpPacket;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = RtpPacket::parse(data);
});
