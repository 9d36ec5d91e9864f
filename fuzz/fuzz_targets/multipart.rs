//! Fuzzes the body splitter: the first line of the input is the
//! Content-Type header value, the rest the body.
#![no_main]

use callrec_siprec::{multipart, parse_body};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let split_at = data.iter().position(|&b| b == b'\n').unwrap_or(data.len());
    let content_type = String::from_utf8_lossy(&data[..split_at]);
    let body = data.get(split_at + 1..).unwrap_or(&[]);
    if let Ok(parts) = multipart::split(&content_type, body) {
        for part in &parts {
            assert!(part.body.len() <= body.len());
            let _ = part.media_type();
        }
    }
    let _ = parse_body(&content_type, body);
});
