//! Fuzzes the first look at a SIP datagram (`sip_check`): it never panics,
//! and an answer is always one `400` status line with the reason on one
//! line, the copied headers, and an empty line at the end.
#![no_main]

use callrec_siprec::sip_check::{Verdict, check, refuse};
use libfuzzer_sys::fuzz_target;

fn check_answer(v: &Verdict) {
    if let Verdict::Answer { response, .. } = v {
        let text = String::from_utf8_lossy(response);
        assert!(text.starts_with("SIP/2.0 400 "), "{text}");
        assert!(text.ends_with("\r\n\r\n"), "{text}");
        let status = text.split("\r\n").next().unwrap_or("");
        assert!(!status.contains('\r') && !status.contains('\n'));
        assert!(status.len() < 260, "{status}");
    }
}

fuzz_target!(|data: &[u8]| {
    check_answer(&check(data, "callrec-fuzz"));
    check_answer(&refuse(data, "the stack's parser said no", "callrec-fuzz"));
});
