//! The settings, policy and announcement endpoints, driven through the
//! router with `tower::ServiceExt::oneshot` (no network).

use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use callrec_api::{ApiState, router};
use serde_json::{Value, json};
use time::OffsetDateTime;
use tower::ServiceExt;

const T0: i64 = 1_790_000_000;

/// A router over in-memory stores whose clock moves one minute per reading.
fn app() -> Router {
    let minutes = Arc::new(AtomicI64::new(0));
    let clock = Arc::new(move || {
        let m = minutes.fetch_add(1, Ordering::SeqCst);
        OffsetDateTime::from_unix_timestamp(T0 + 60 * m).unwrap()
    });
    router(ApiState::in_memory(clock))
}

struct Call {
    method: &'static str,
    uri: String,
    user: Option<&'static str>,
    content_type: Option<String>,
    body: Vec<u8>,
}

fn get(uri: &str) -> Call {
    Call {
        method: "GET",
        uri: uri.to_owned(),
        user: None,
        content_type: None,
        body: Vec::new(),
    }
}

fn json_call(method: &'static str, uri: &str, user: Option<&'static str>, body: &Value) -> Call {
    Call {
        method,
        uri: uri.to_owned(),
        user,
        content_type: Some("application/json".to_owned()),
        body: serde_json::to_vec(body).unwrap(),
    }
}

async fn send_raw(app: &Router, call: Call) -> (StatusCode, Vec<u8>) {
    let mut request = Request::builder().method(call.method).uri(&call.uri);
    if let Some(user) = call.user {
        request = request.header("X-Callrec-User", user);
    }
    if let Some(ct) = &call.content_type {
        request = request.header(header::CONTENT_TYPE, ct);
    }
    let response = app
        .clone()
        .oneshot(request.body(Body::from(call.body)).unwrap())
        .await
        .unwrap();
    let status = response.status();
    let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
        .await
        .unwrap();
    (status, bytes.to_vec())
}

async fn send(app: &Router, call: Call) -> (StatusCode, Value) {
    let (status, bytes) = send_raw(app, call).await;
    let value = serde_json::from_slice(&bytes)
        .unwrap_or_else(|_| panic!("{status}: not JSON: {}", String::from_utf8_lossy(&bytes)));
    (status, value)
}

async fn save(app: &Router, version: u64, settings: &Value) -> (StatusCode, Value) {
    send(
        app,
        json_call(
            "PUT",
            "/api/v1/settings",
            Some("ana"),
            &json!({"version": version, "settings": settings}),
        ),
    )
    .await
}

#[tokio::test]
async fn get_settings_starts_with_version_1_and_the_defaults() {
    let app = app();
    let (status, body) = send(&app, get("/api/v1/settings")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["version"], 1);
    assert_eq!(body["changed_by"], "system");
    assert_eq!(body["settings"]["format"], "mp3");
    assert_eq!(
        body["settings"]["call_recording"]["continue_third_party_after_agent_leaves"],
        false
    );
    assert_eq!(
        body["settings"]["emergency_numbers"],
        json!(["911", "112", "999"])
    );
}

#[tokio::test]
async fn put_settings_saves_a_new_version_with_who_when_and_what() {
    let app = app();
    let (_, current) = send(&app, get("/api/v1/settings")).await;
    let mut settings = current["settings"].clone();
    settings["call_details"]["ask_user_permission"] = json!(true);
    settings["call_details"]["leave_ongoing_calls_with_third_parties"] = json!(true);
    settings["call_recording"]["continue_third_party_after_agent_leaves"] = json!(true);
    settings["queues"] =
        json!([{"id": "sales", "name": "Sales", "recording_mode": "ask_permission"}]);

    let (status, saved) = save(&app, 1, &settings).await;
    assert_eq!(status, StatusCode::OK, "{saved}");
    assert_eq!(saved["version"], 2);
    assert_eq!(saved["changed_by"], "ana");
    assert_eq!(saved["changed_at"], "2026-09-21T14:14:20Z");
    assert_eq!(
        saved["changes"],
        json!([
            "call_details.ask_user_permission",
            "call_details.leave_ongoing_calls_with_third_parties",
            "call_recording.continue_third_party_after_agent_leaves",
            "queues"
        ])
    );
    let (_, now) = send(&app, get("/api/v1/settings")).await;
    assert_eq!(now, saved);

    // The same base again is stale: 409 with the current version, nothing saved.
    let (status, body) = save(&app, 1, &settings).await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(body["current_version"], 2);
    assert!(body["error"].as_str().unwrap().contains("reload"), "{body}");

    let (status, body) = send(&app, get("/api/v1/settings/history")).await;
    assert_eq!(status, StatusCode::OK);
    let versions: Vec<u64> = body["versions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["version"].as_u64().unwrap())
        .collect();
    assert_eq!(versions, [2, 1]);
    assert_eq!(body["versions"][0]["changed_by"], "ana");
    let (_, one) = send(&app, get("/api/v1/settings/history?limit=1")).await;
    assert_eq!(one["versions"].as_array().unwrap().len(), 1);

    let (status, v1) = send(&app, get("/api/v1/settings/versions/1")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(v1["settings"]["call_details"]["ask_user_permission"], false);
    let (status, body) = send(&app, get("/api/v1/settings/versions/9")).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
}

#[tokio::test]
async fn put_settings_refuses_what_is_wrong_with_every_field_listed() {
    let app = app();
    let (_, current) = send(&app, get("/api/v1/settings")).await;
    let mut settings = current["settings"].clone();
    settings["call_recording"]["continue_emergency_after_agent_leaves"] = json!(true);

    // The prerequisite refusal names each missing prerequisite.
    let (status, body) = save(&app, 1, &settings).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    let problems = body["problems"].as_array().unwrap();
    let fields: Vec<&str> = problems
        .iter()
        .map(|p| p["field"].as_str().unwrap())
        .collect();
    assert_eq!(
        fields,
        ["call_recording.continue_emergency_after_agent_leaves"; 2]
    );
    let messages: Vec<&str> = problems
        .iter()
        .map(|p| p["message"].as_str().unwrap())
        .collect();
    assert!(
        messages[0].contains("call_details.ask_user_permission"),
        "{messages:?}"
    );
    assert!(
        messages[1].contains("call_details.leave_ongoing_calls_with_third_parties"),
        "{messages:?}"
    );

    // A field of the wrong shape comes back with its path.
    let mut settings = current["settings"].clone();
    settings["queues"] = json!([{"id": "sales", "name": "Sales", "recording_mode": "maybe"}]);
    let (status, body) = save(&app, 1, &settings).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(body["problems"][0]["field"], "queues[0].recording_mode");
    let mut settings = current["settings"].clone();
    settings["emergency_numbers"] = json!(["911", "call 112"]);
    let (_, body) = save(&app, 1, &settings).await;
    assert_eq!(body["problems"][0]["field"], "emergency_numbers[1]");
    assert!(
        body["problems"][0]["message"]
            .as_str()
            .unwrap()
            .contains("not a phone number"),
        "{body}"
    );

    // Not JSON, no user: 400. Nothing was saved.
    let mut not_json = json_call("PUT", "/api/v1/settings", Some("ana"), &json!(null));
    not_json.body = b"{\"version\": 1,".to_vec();
    let (status, _) = send(&app, not_json).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, body) = send(
        &app,
        json_call(
            "PUT",
            "/api/v1/settings",
            None,
            &json!({"version": 1, "settings": current["settings"]}),
        ),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        body["error"].as_str().unwrap().contains("x-callrec-user"),
        "{body}"
    );
    let (_, now) = send(&app, get("/api/v1/settings")).await;
    assert_eq!(now["version"], 1);
}

#[tokio::test]
async fn policy_evaluate_explains_a_described_call() {
    let app = app();
    let (_, current) = send(&app, get("/api/v1/settings")).await;
    let mut settings = current["settings"].clone();
    settings["call_details"]["ask_user_permission"] = json!(true);
    settings["queues"] =
        json!([{"id": "collections", "name": "Collections", "recording_mode": "ask_permission"}]);
    let (status, _) = save(&app, 1, &settings).await;
    assert_eq!(status, StatusCode::OK);

    let request = json!({
        "call": {"direction": "inbound", "entry": "phone_or_ivr", "queue": "collections", "language": "es-MX"},
        "consent": "timeout",
        "events": [
            {"event": "third_party_added", "number": "(911)"},
            {"event": "pause"},
            {"event": "agent_left"}
        ]
    });
    let (status, body) = send(
        &app,
        json_call("POST", "/api/v1/policy/evaluate", None, &request),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["settings_version"], 2);
    assert_eq!(body["call"]["recording"], "after_consent");
    assert_eq!(body["call"]["wait_for_opt_out_key"], true);
    let prompts: Vec<(&str, &str)> = body["call"]["prompts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["message"].as_str().unwrap(),
                p["language"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        prompts,
        [
            ("recording_announcement", "en"),
            ("permission_prompt", "en")
        ]
    );
    assert_eq!(body["consent"]["outcome"], "no_answer");
    assert_eq!(body["consent"]["action"], "start");
    assert_eq!(body["events"][0]["decision"]["channel"], "agent");
    assert_eq!(body["events"][0]["decision"]["party"], "emergency_number");
    assert_eq!(body["events"][1]["decision"]["action"], "pause");
    assert_eq!(body["events"][2]["decision"]["action"], "stop");
    assert!(
        body["events"][2]["decision"]["reason"]
            .as_str()
            .unwrap()
            .contains("needs call_details.leave_ongoing_calls_with_third_parties on"),
        "{body}"
    );
    assert_eq!(body["final_state"], "stopped");

    // The same call with version 1, where asking permission was off.
    let mut old = request.clone();
    old["settings_version"] = json!(1);
    let (_, body) = send(
        &app,
        json_call("POST", "/api/v1/policy/evaluate", None, &old),
    )
    .await;
    assert_eq!(body["settings_version"], 1);
    assert_eq!(body["call"]["recording"], "now");
    assert_eq!(body["consent"]["outcome"], Value::Null);

    // An outbound kind that is not an inbound announcement case.
    let scheduled = json!({"call": {"direction": "outbound", "kind": "scheduled_call"}});
    let (_, body) = send(
        &app,
        json_call("POST", "/api/v1/policy/evaluate", None, &scheduled),
    )
    .await;
    assert_eq!(
        body["call"]["prompts"][0]["message"],
        "outbound_recording_message"
    );

    let bad = json!({"call": {"direction": "inbound", "entry": "fax"}});
    let (status, body) = send(
        &app,
        json_call("POST", "/api/v1/policy/evaluate", None, &bad),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    let missing =
        json!({"settings_version": 5, "call": {"direction": "outbound", "kind": "dialpad"}});
    let (status, _) = send(
        &app,
        json_call("POST", "/api/v1/policy/evaluate", None, &missing),
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[test]
fn policy_channels_match_media_roles() {
    use callrec_media::Role;
    use callrec_policy::Channel;
    assert_eq!(Channel::EndUser.number(), Role::EndUser.channel_number());
    assert_eq!(Channel::Agent.number(), Role::Agent.channel_number());
}

// --- announcement upload ---

/// A sine tone as a 16-bit WAV.
fn tone_wav(rate: u32, channels: u16, seconds: f64, hz: f64, amplitude: f64) -> Vec<u8> {
    let spec = hound::WavSpec {
        channels,
        sample_rate: rate,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let mut cursor = std::io::Cursor::new(Vec::new());
    let mut writer = hound::WavWriter::new(&mut cursor, spec).unwrap();
    let frames = (f64::from(rate) * seconds) as usize;
    for i in 0..frames {
        let s = (amplitude
            * 32767.0
            * (2.0 * std::f64::consts::PI * hz * i as f64 / f64::from(rate)).sin())
            as i16;
        for _ in 0..channels {
            writer.write_sample(s).unwrap();
        }
    }
    writer.finalize().unwrap();
    cursor.into_inner()
}

/// Reads a WAV: (rate, channels, samples).
fn read_wav(bytes: &[u8]) -> (u32, u16, Vec<i16>) {
    let reader = hound::WavReader::new(bytes).unwrap();
    let spec = reader.spec();
    let samples = reader.into_samples::<i16>().map(Result::unwrap).collect();
    (spec.sample_rate, spec.channels, samples)
}

fn rms(samples: &[i16]) -> f64 {
    (samples.iter().map(|&s| f64::from(s).powi(2)).sum::<f64>() / samples.len() as f64).sqrt()
}

/// The frequency of a tone, from its upward zero crossings.
fn frequency(samples: &[i16], rate: u32) -> f64 {
    let crossings = samples.windows(2).filter(|w| w[0] < 0 && w[1] >= 0).count();
    crossings as f64 * f64::from(rate) / samples.len() as f64
}

fn upload(uri: &str, content_type: &str, body: Vec<u8>) -> Call {
    Call {
        method: "PUT",
        uri: uri.to_owned(),
        user: Some("ana"),
        content_type: Some(content_type.to_owned()),
        body,
    }
}

fn multipart(file: &[u8], filename: &str) -> (String, Vec<u8>) {
    let boundary = "callrec-test-boundary";
    let mut body = Vec::new();
    body.extend_from_slice(
        format!("--{boundary}\r\nContent-Disposition: form-data; name=\"note\"\r\n\r\nhello\r\n")
            .as_bytes(),
    );
    body.extend_from_slice(
        format!("--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{filename}\"\r\nContent-Type: application/octet-stream\r\n\r\n").as_bytes(),
    );
    body.extend_from_slice(file);
    body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    (format!("multipart/form-data; boundary={boundary}"), body)
}

#[tokio::test]
async fn announcement_upload_converts_to_8_khz_mono_and_saves_a_version() {
    let app = app();
    let wav = tone_wav(44_100, 2, 1.5, 440.0, 0.5);
    let (status, body) = send(
        &app,
        upload(
            "/api/v1/settings/languages/es-mx/messages/recording_announcement/audio?version=1",
            "audio/wav",
            wav,
        ),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["audio"]["sample_rate"], 8000);
    assert_eq!(body["audio"]["channels"], 1);
    assert_eq!(body["audio"]["source_sample_rate"], 44100);
    assert_eq!(body["audio"]["source_channels"], 2);
    assert_eq!(body["audio"]["duration_ms"], 1500);
    assert_eq!(body["settings"]["version"], 2);
    assert_eq!(body["settings"]["changed_by"], "ana");
    assert_eq!(
        body["settings"]["changes"],
        json!(["languages.messages.es-MX"])
    );
    let reference = body["audio"]["reference"].as_str().unwrap().to_owned();
    assert_eq!(
        body["settings"]["settings"]["languages"]["messages"]["es-MX"]["recording_announcement"],
        json!({"audio": reference})
    );

    // The stored audio, measured: 8 kHz mono, 1.5 s, a 440 Hz tone at the same level.
    let (status, stored) = send_raw(&app, get(&format!("/api/v1/announcements/{reference}"))).await;
    assert_eq!(status, StatusCode::OK);
    let (rate, channels, samples) = read_wav(&stored);
    assert_eq!((rate, channels, samples.len()), (8000, 1, 12_000));
    let middle = &samples[2000..10_000];
    let expected_rms = 0.5 * 32767.0 / 2f64.sqrt();
    assert!(
        (rms(middle) - expected_rms).abs() < expected_rms * 0.05,
        "rms {}",
        rms(middle)
    );
    let hz = frequency(middle, 8000);
    assert!((hz - 440.0).abs() < 5.0, "{hz} Hz");

    // A caller in es-MX now hears the uploaded audio.
    let call = json!({"call": {"direction": "inbound", "entry": "web_or_mobile_sdk", "language": "es-MX"}});
    let (_, decision) = send(
        &app,
        json_call("POST", "/api/v1/policy/evaluate", None, &call),
    )
    .await;
    assert_eq!(
        decision["call"]["prompts"][0]["content"],
        json!({"audio": reference})
    );

    // The same base version again is stale.
    let (status, body) = send(
        &app,
        upload(
            "/api/v1/settings/languages/es-MX/messages/recording_announcement/audio?version=1",
            "audio/wav",
            tone_wav(8000, 1, 0.5, 440.0, 0.5),
        ),
    )
    .await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(body["current_version"], 2);
}

#[tokio::test]
async fn announcement_upload_takes_multipart_and_common_formats() {
    let app = app();
    let dir = tempfile::tempdir().unwrap();
    let speech = dir.path().join("speech.wav");
    let status = Command::new("espeak-ng")
        .arg("-w")
        .arg(&speech)
        .arg("Para no ser grabado, marque uno.")
        .status()
        .expect("espeak-ng is installed (the test makes its speech with it)");
    assert!(status.success());
    let speech_bytes = std::fs::read(&speech).unwrap();
    let (speech_rate, _, speech_samples) = read_wav(&speech_bytes);
    let (ct, body) = multipart(&speech_bytes, "prompt.wav");
    let (status, body) = send(
        &app,
        upload(
            "/api/v1/settings/languages/es/messages/permission_prompt/audio?version=1",
            &ct,
            body,
        ),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let expected_ms = speech_samples.len() as u64 * 1000 / u64::from(speech_rate);
    let got_ms = body["audio"]["duration_ms"].as_u64().unwrap();
    assert!(
        got_ms.abs_diff(expected_ms) <= 1,
        "{got_ms} ms for {expected_ms} ms of speech"
    );

    let mp3 = dir.path().join("tone.mp3");
    let status = Command::new("ffmpeg")
        .args([
            "-loglevel",
            "error",
            "-f",
            "lavfi",
            "-i",
            "sine=frequency=1000:duration=2",
            "-ar",
            "48000",
            "-ac",
            "2",
        ])
        .arg(&mp3)
        .status()
        .expect("ffmpeg is installed (the test makes its mp3 with it)");
    assert!(status.success());
    let (status, body) = send(
        &app,
        upload(
            "/api/v1/settings/languages/en/messages/outbound_recording_message/audio?version=2",
            "audio/mpeg",
            std::fs::read(&mp3).unwrap(),
        ),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["audio"]["source_sample_rate"], 48000);
    let ms = body["audio"]["duration_ms"].as_u64().unwrap();
    assert!(ms.abs_diff(2000) <= 30, "{ms} ms");
    let reference = body["audio"]["reference"].as_str().unwrap().to_owned();
    let (_, stored) = send_raw(&app, get(&format!("/api/v1/announcements/{reference}"))).await;
    let (rate, channels, samples) = read_wav(&stored);
    assert_eq!((rate, channels), (8000, 1));
    let hz = frequency(&samples[1000..15_000], 8000);
    assert!((hz - 1000.0).abs() < 10.0, "{hz} Hz");
}

#[tokio::test]
async fn announcement_upload_refuses_what_is_not_audio() {
    let app = app();
    let uri = "/api/v1/settings/languages/en/messages/recording_announcement/audio?version=1";
    for body in [
        b"this is a text file, not audio".to_vec(),
        Vec::new(),
        b"RIFF\x10\x00\x00\x00WAVEfmt ".to_vec(),
    ] {
        let (status, answer) = send(&app, upload(uri, "application/octet-stream", body)).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{answer}");
        let error = answer["error"].as_str().unwrap();
        assert!(
            error.contains("not audio") && error.contains("send a wav, mp3"),
            "{error}"
        );
    }
    let (ct, body) = multipart(b"%PDF-1.4", "contract.pdf");
    let (status, _) = send(&app, upload(uri, &ct, body)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);

    let tone = || tone_wav(8000, 1, 0.2, 440.0, 0.5);
    let (status, body) = send(
        &app,
        upload(
            "/api/v1/settings/languages/en/messages/recording_announcement/audio",
            "audio/wav",
            tone(),
        ),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(body["error"].as_str().unwrap().contains("?version="));
    let (status, _) = send(
        &app,
        upload(
            "/api/v1/settings/languages/en/messages/jingle/audio?version=1",
            "audio/wav",
            tone(),
        ),
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = send(
        &app,
        upload(
            "/api/v1/settings/languages/e!/messages/permission_prompt/audio?version=1",
            "audio/wav",
            tone(),
        ),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, _) = send(&app, get("/api/v1/announcements/en.permission_prompt.99")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // Nothing was saved by the refused uploads.
    let (_, now) = send(&app, get("/api/v1/settings")).await;
    assert_eq!(now["version"], 1);
}
