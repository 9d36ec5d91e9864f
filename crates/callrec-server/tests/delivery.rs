//! The whole server as `callrec serve` runs it ([`callrec_server::App::open`]):
//! a SIPREC call from SIPp is recorded, cataloged and delivered to the local
//! storage with its metadata; the settings saved through the API decide the
//! next calls. Checked through the API, the storage directory and by
//! measuring the delivered audio.
//!
//! Needs `sipp` (Debian sip-tester), `espeak-ng` and `sox` on the PATH.

mod common;

use common::*;

const AGENT_TONE_HZ: f64 = 1000.0;

/// End user speech on label 2, agent tone on label 1 (from 0.5 s).
fn two_party_capture(dir: &std::path::Path, secs: f64) -> (std::path::PathBuf, Vec<i16>) {
    let mut speech = speech(
        dir,
        "Hello, I am calling about my invoice, the number is four two seven one.",
        "en-us",
    );
    speech.resize((secs * 8000.0) as usize, 0);
    let mut agent = vec![0i16; 4000];
    agent.extend(tone(AGENT_TONE_HZ, secs - 0.5, 0.25));
    let pcap = dir.join("call.pcap");
    write_pcap(
        &pcap,
        &[
            PcapStream {
                dport: 6000,
                ssrc: 0x1111,
                samples: agent,
            },
            PcapStream {
                dport: 6002,
                ssrc: 0x2222,
                samples: speech.clone(),
            },
        ],
    );
    (pcap, speech)
}

#[test]
fn a_siprec_call_is_delivered_to_storage_with_its_metadata_and_cataloged() {
    let server = Server::start_wired(|_| {});
    let dir = tempfile::tempdir().unwrap();
    let (pcap, speech) = two_party_capture(dir.path(), 4.0);
    let mut body = establish("sendonly");
    body.push_str(&play_and_wait(&pcap, 4500));
    body.push_str(&hang_up(2));
    let (ok, log) = run_sipp(dir.path(), &scenario(&body), server.sip, "u1");
    assert!(ok, "sipp failed:\n{log}");

    let list = wait_for_recordings(server.http, 120, |l| {
        l.len() == 1 && l[0]["status"] == "delivered"
    });
    let rec = &list[0];
    let call_id = rec["call_id"].as_str().unwrap();
    assert_eq!(rec["format"], "wav");
    assert_eq!(rec["partial"], false);
    assert_eq!(rec["delivery"]["backend"], "local");
    // recordings/YYYY/MM/DD/<call-id>.wav, with the JSON beside it.
    let key = rec["delivery"]["key"].as_str().unwrap();
    let parts: Vec<&str> = key.split('/').collect();
    assert_eq!(parts.len(), 5, "{key}");
    assert_eq!(parts[0], "recordings");
    assert_eq!(parts[1].len(), 4);
    assert_eq!(parts[2].len(), 2);
    assert_eq!(parts[3].len(), 2);
    assert_eq!(parts[4], format!("{call_id}.wav"));
    let storage = server.data.path().join("storage");
    let audio = storage.join(key);
    let json_path = audio.with_extension("json");
    let sha = sha256_hex(&audio);
    assert_eq!(
        rec["sha256"],
        sha.as_str(),
        "catalog sha256 differs from the stored file"
    );
    assert_eq!(
        rec["size_bytes"].as_u64().unwrap(),
        std::fs::metadata(&audio).unwrap().len()
    );
    let md: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&json_path).unwrap()).unwrap();
    assert_eq!(md["call_id"], call_id);
    assert_eq!(md["sha256"], sha.as_str());
    assert_eq!(md["format"], "wav");
    let map = md["channel_map"].as_array().unwrap();
    assert!(map.iter().any(|c| c["label"] == "2" && c["channel"] == 1));
    // The spool keeps nothing once delivered.
    let left_over: Vec<_> = std::fs::read_dir(server.spool()).unwrap().collect();
    assert!(left_over.is_empty(), "spool not empty: {left_over:?}");

    // The catalog's detail: participants with roles and channels, and the
    // policy's decision with its reason.
    let (status, detail) = http_get(
        server.http,
        &format!("/api/v1/recordings/{}", rec["id"].as_str().unwrap()),
    );
    assert_eq!(status, 200, "{detail}");
    let detail: serde_json::Value = serde_json::from_str(&detail).unwrap();
    let text = detail.to_string();
    assert!(text.contains("\"end_user\""), "{detail:#}");
    assert!(text.contains("\"agent\""), "{detail:#}");
    assert!(text.contains("\"record\""), "{detail:#}");

    // The delivered audio, measured: the agent's tone on the right only,
    // the end user's speech on the left.
    let (left, right) = read_stereo_wav(&audio);
    let secs = left.len() as f64 / 8000.0;
    assert!((3.5..5.0).contains(&secs), "duration {secs} s");
    let right_tone = tone_db(&right, AGENT_TONE_HZ);
    let left_tone = tone_db(&left, AGENT_TONE_HZ);
    assert!(
        right_tone > -20.0,
        "agent tone on the right: {right_tone:.1} dB"
    );
    assert!(
        right_tone - left_tone > 40.0,
        "crosstalk: tone {right_tone:.1} dB right, {left_tone:.1} dB left"
    );
    // Every 100 ms probe of the sent speech that has speech in it is found
    // on the left (r > 0.9) near where it was sent, for 80 % of the probes
    // (a saturated test machine may stall a few packets).
    let (mut probes, mut found) = (0, 0);
    for off in (800..speech.len() - 1600).step_by(1600) {
        let probe = &speech[off..off + 800];
        if level_db(probe) < -35.0 {
            continue;
        }
        probes += 1;
        if best_match_near(&left, probe, off, 4000).1 > 0.9 {
            found += 1;
        }
    }
    assert!(probes >= 10, "too little speech: {probes} probes");
    assert!(
        found * 10 >= probes * 8,
        "left is not the end user's speech: {found} of {probes} probes found"
    );
    let (_, corr_right) = best_match(&right, &speech[4000..12000], 16000);
    assert!(
        corr_right < 0.3,
        "speech leaks into the right: r = {corr_right:.3}"
    );

    let m = server.metrics();
    assert_eq!(
        metric(&m, "callrec_catalog_recordings{status=\"delivered\"}"),
        1
    );
    assert_eq!(metric(&m, "callrec_deliveries_total"), 1);
    assert_eq!(metric(&m, "callrec_delivery_failures_total"), 0);
    // The upload is in the latency histogram: counted once, in the +Inf
    // bucket and in every bucket at least as long as its sum.
    assert_eq!(metric(&m, "callrec_upload_duration_seconds_count"), 1);
    assert_eq!(
        metric(&m, "callrec_upload_duration_seconds_bucket{le=\"+Inf\"}"),
        1
    );
    assert_eq!(
        metric(&m, "callrec_upload_duration_seconds_bucket{le=\"60\"}"),
        1
    );
}

#[test]
fn settings_saved_through_the_api_decide_the_next_call_and_a_declined_call_is_cataloged() {
    let server = Server::start_wired(|_| {});
    let (status, body) = http_get(server.http, "/api/v1/settings");
    assert_eq!(status, 200, "{body}");
    let current: serde_json::Value = serde_json::from_str(&body).unwrap();
    let mut settings = current["settings"].clone();
    settings["call_details"]["use_call_recording"] = false.into();
    let request = serde_json::json!({"version": current["version"], "settings": settings});
    let (status, body) = http_send(server.http, "PUT", "/api/v1/settings", &request.to_string());
    assert_eq!(status, 200, "{body}");

    let dir = tempfile::tempdir().unwrap();
    let body = invite_refused(403);
    let (ok, log) = run_sipp(dir.path(), &scenario(&body), server.sip, "u1");
    assert!(ok, "sipp failed:\n{log}");

    let list = wait_for_recordings(server.http, 30, |l| l.len() == 1);
    let rec = &list[0];
    assert_eq!(rec["status"], "declined");
    let reason = rec["status_reason"].as_str().unwrap();
    assert!(reason.contains("recording"), "reason: {reason}");
    assert!(
        rec["sha256"].is_null() && rec["size_bytes"].is_null(),
        "{rec:#}"
    );
    let (_, detail) = http_get(
        server.http,
        &format!("/api/v1/recordings/{}", rec["id"].as_str().unwrap()),
    );
    assert!(detail.contains("do_not_record"), "{detail}");
    assert!(
        server.try_recording(1).is_none(),
        "a declined call was recorded"
    );
    let spool: Vec<_> = std::fs::read_dir(server.spool()).unwrap().collect();
    assert!(
        spool.is_empty(),
        "audio spooled for a declined call: {spool:?}"
    );
    let storage = server.data.path().join("storage");
    assert!(
        !storage.join("recordings").exists(),
        "audio delivered for a declined call"
    );
}

#[test]
fn the_mounted_api_is_behind_the_api_token() {
    let server = Server::start_wired(|c| {
        c.http.api_token = Some(callrec_server::config::Secret::new("t0ken"));
    });
    for path in ["/api/v1/recordings", "/api/v1/settings", "/api/v1/storage"] {
        let (status, body) = http_get(server.http, path);
        assert_eq!(status, 401, "{path}: {body}");
    }
    assert_eq!(http_get(server.http, "/healthz").0, 200);
}

#[test]
fn participants_joining_and_leaving_are_in_the_catalog_with_their_times() {
    let server = Server::start_wired(|_| {});
    let dir = tempfile::tempdir().unwrap();
    let (pcap, _) = two_party_capture(dir.path(), 4.0);
    let body = third_party_joins_then_agent_leaves(&pcap, 1000);
    let (ok, log) = run_sipp(dir.path(), &scenario(&body), server.sip, "u1");
    assert!(ok, "sipp failed:\n{log}");

    let list = wait_for_recordings(server.http, 120, |l| {
        l.len() == 1 && l[0]["status"] == "delivered"
    });
    let id = list[0]["id"].as_str().unwrap();
    let (status, text) = http_get(server.http, &format!("/api/v1/recordings/{id}"));
    assert_eq!(status, 200, "{text}");
    let detail: serde_json::Value = serde_json::from_str(&text).unwrap();
    let ps = detail["participants"].as_array().unwrap();
    let find = |number: &str| {
        ps.iter()
            .find(|p| p["number"] == number)
            .unwrap_or_else(|| panic!("no participant {number} in {ps:#?}"))
    };
    let customer = find("+15550100200");
    assert_eq!(customer["role"], "end_user");
    assert_eq!(customer["channel"], 1);
    assert!(customer["left_at"].is_null(), "{customer}");
    let agent = find("1001");
    assert_eq!(agent["role"], "agent");
    assert_eq!(agent["channel"], 2);
    let third = find("+15550100999");
    assert_eq!(third["role"], "third_party");
    assert_eq!(third["channel"], 2);
    assert!(third["left_at"].is_null(), "{third}");
    // The third party joined after the start, the agent left after the
    // third party joined (RFC 3339 times).
    let t = |v: &serde_json::Value| {
        time::OffsetDateTime::parse(
            v.as_str().unwrap(),
            &time::format_description::well_known::Rfc3339,
        )
        .unwrap()
    };
    assert!(t(&third["joined_at"]) > t(&agent["joined_at"]), "{ps:#?}");
    assert!(t(&agent["left_at"]) >= t(&third["joined_at"]), "{ps:#?}");
    assert_eq!(ps.len(), 3, "{ps:#?}");
}
