//! `callrec mix` with two audio files: the recording meets the spec as a
//! decoder that is not ours sees it (ffprobe/ffmpeg, symphonia), the roles
//! land on the right channels without crosstalk, and bad input is one clear
//! error that leaves no output behind.

mod common;

use common::*;
use std::path::Path;

fn expected_frames(input: &Path) -> u64 {
    let frames = sox_frames(input);
    let rate = u64::from(sox_rate(input));
    (frames * 8000 + rate / 2) / rate
}

fn mix(end_user: &Path, agent: &Path, out: &Path) {
    let o = callrec(&[
        "mix",
        "--end-user",
        p(end_user),
        "--agent",
        p(agent),
        "-o",
        p(out),
    ]);
    assert!(
        o.status.success(),
        "callrec mix failed: {}",
        String::from_utf8_lossy(&o.stderr)
    );
}

#[test]
fn wav_output_is_8khz_stereo_16bit_with_the_inputs_length() {
    let dir = tempfile::tempdir().unwrap();
    let tone = sox_tone(dir.path(), "eu.wav", 440, 2.5, 44_100, 2);
    let talk = speech(
        dir.path(),
        "agent.wav",
        "Thank you for calling, how can I help you today?",
    );
    let out = dir.path().join("call.wav");
    mix(&tone, &talk, &out);

    let info = ffprobe(&out);
    assert_eq!(info["codec_name"], "pcm_s16le");
    assert_eq!(info["sample_rate"], "8000");
    assert_eq!(info["channels"], "2");
    assert_eq!(info["bits_per_sample"], "16");

    let want = expected_frames(&tone).max(expected_frames(&talk));
    assert_eq!(
        ffmpeg_decode(&out).len() as u64 / 2,
        want,
        "ffmpeg's decoded length"
    );
    assert_eq!(
        symphonia_decode(&out).len() as u64 / 2,
        want,
        "symphonia's decoded length"
    );
}

#[test]
fn mp3_output_is_mpeg25_layer3_32kbps_plain_stereo_with_the_exact_length() {
    let dir = tempfile::tempdir().unwrap();
    let talk = speech(
        dir.path(),
        "eu.wav",
        "I would like to check the status of my order, please.",
    );
    let tone = sox_tone(dir.path(), "agent.wav", 1000, 1.7, 16_000, 1);
    let out = dir.path().join("call.mp3");
    mix(&talk, &tone, &out);

    let info = ffprobe(&out);
    assert_eq!(info["codec_name"], "mp3");
    assert!(info["codec_long_name"].contains("layer 3"), "{info:?}");
    assert_eq!(info["sample_rate"], "8000");
    assert_eq!(info["channels"], "2");
    assert_eq!(info["bit_rate"], "32000");

    // Every frame header: MPEG-2.5 layer III, 32 kbps, 8 kHz, stereo mode 00 (not joint).
    let bytes = std::fs::read(&out).unwrap();
    assert_eq!(
        bytes.len() % 288,
        0,
        "CBR 32 kbps at 8 kHz: 288-byte frames"
    );
    for (i, frame) in bytes.chunks(288).enumerate() {
        assert_eq!(
            &frame[..2],
            &[0xFF, 0xE3],
            "frame {i}: MPEG-2.5 layer III sync"
        );
        assert_eq!(frame[2] >> 4, 4, "frame {i}: 32 kbps");
        assert_eq!(frame[3] >> 6, 0, "frame {i}: plain stereo");
    }

    let want = expected_frames(&talk).max(expected_frames(&tone));
    assert_eq!(
        ffmpeg_decode(&out).len() as u64 / 2,
        want,
        "ffmpeg's decoded length"
    );
    assert_eq!(
        symphonia_decode(&out).len() as u64 / 2,
        want,
        "symphonia's decoded length"
    );
}

fn crosstalk_case(format: &str) {
    let dir = tempfile::tempdir().unwrap();
    let tone = sox_tone(dir.path(), "eu.wav", 1000, 2.0, 16_000, 1);
    let quiet = sox_silence(dir.path(), "agent.wav", 2.0, 8_000);
    let out = dir.path().join(format!("call.{format}"));
    mix(&tone, &quiet, &out);
    let pcm = ffmpeg_decode(&out);
    let (left, right) = (channel(&pcm, 0), channel(&pcm, 1));
    let l = rms_dbfs(&left);
    let r = rms_dbfs(&right);
    assert!(
        l > -12.0 && l < -6.0,
        "{format}: the end user's tone is on the left at {l:.1} dBFS"
    );
    assert!(
        r - l <= -60.0,
        "{format}: crosstalk into the agent channel is {:.1} dB",
        r - l
    );
}

#[test]
fn an_end_user_tone_is_on_the_left_only_in_wav() {
    crosstalk_case("wav");
}

#[test]
fn an_end_user_tone_is_on_the_left_only_in_mp3() {
    crosstalk_case("mp3");
}

#[test]
fn agent_speech_is_on_the_right_only() {
    let dir = tempfile::tempdir().unwrap();
    let quiet = sox_silence(dir.path(), "eu.wav", 1.0, 8_000);
    let talk = speech(
        dir.path(),
        "agent.wav",
        "Your call may be recorded for quality purposes.",
    );
    let out = dir.path().join("call.mp3");
    mix(&quiet, &talk, &out);
    let pcm = ffmpeg_decode(&out);
    let (l, r) = (rms_dbfs(&channel(&pcm, 0)), rms_dbfs(&channel(&pcm, 1)));
    assert!(
        r > -40.0,
        "the agent's speech is on the right at {r:.1} dBFS"
    );
    assert!(
        l - r <= -60.0,
        "crosstalk into the end user channel is {:.1} dB",
        l - r
    );
}

#[test]
fn headerless_ulaw_and_alaw_legs_are_mixed() {
    let dir = tempfile::tempdir().unwrap();
    let tone = sox_tone(dir.path(), "t.wav", 600, 3.0, 8_000, 1);
    let talk = speech(dir.path(), "s.wav", "one two three four five");
    let ulaw = dir.path().join("eu.ulaw");
    let alaw = dir.path().join("agent.alaw");
    tool(
        "sox",
        &[p(&tone), "-t", "ul", "-r", "8000", "-c", "1", p(&ulaw)],
    );
    tool(
        "sox",
        &[p(&talk), "-t", "al", "-r", "8000", "-c", "1", p(&alaw)],
    );
    let out = dir.path().join("call.wav");
    mix(&ulaw, &alaw, &out);
    let pcm = ffmpeg_decode(&out);
    let want = std::fs::metadata(&ulaw)
        .unwrap()
        .len()
        .max(std::fs::metadata(&alaw).unwrap().len());
    assert_eq!(
        pcm.len() as u64 / 2,
        want,
        "one G.711 byte is one 8 kHz sample"
    );
    let left = channel(&pcm, 0);
    assert!(
        tone_dbfs(&left, 600.0, 8000.0) > -12.0,
        "the u-law tone is on the left"
    );
}

/// The files in `dir` other than the inputs: a failed mix must leave none.
fn leftovers(dir: &Path, inputs: &[&Path]) -> Vec<String> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|path| !inputs.contains(&path.as_path()))
        .map(|path| path.display().to_string())
        .collect()
}

fn fails_with(args: &[&str], needle: &str) -> String {
    let o = callrec(args);
    assert!(!o.status.success(), "callrec {args:?} should fail");
    let err = String::from_utf8_lossy(&o.stderr).to_string();
    assert_eq!(
        err.trim_end().lines().count(),
        1,
        "one error line, got: {err}"
    );
    assert!(err.contains(needle), "the error names {needle:?}: {err}");
    err
}

#[test]
fn a_missing_file_is_one_clear_error_and_no_output() {
    let dir = tempfile::tempdir().unwrap();
    let tone = sox_tone(dir.path(), "eu.wav", 440, 0.5, 8_000, 1);
    let missing = dir.path().join("nope.wav");
    let out = dir.path().join("call.mp3");
    fails_with(
        &[
            "mix",
            "--end-user",
            p(&tone),
            "--agent",
            p(&missing),
            "-o",
            p(&out),
        ],
        "nope.wav",
    );
    assert!(
        leftovers(dir.path(), &[&tone]).is_empty(),
        "{:?}",
        leftovers(dir.path(), &[&tone])
    );
}

#[test]
fn a_file_that_is_not_audio_is_refused_and_no_output() {
    let dir = tempfile::tempdir().unwrap();
    let tone = sox_tone(dir.path(), "eu.wav", 440, 0.5, 8_000, 1);
    let text = dir.path().join("notes.wav");
    std::fs::write(&text, "these are meeting notes, not audio\n".repeat(20)).unwrap();
    let out = dir.path().join("call.wav");
    let err = fails_with(
        &[
            "mix",
            "--end-user",
            p(&tone),
            "--agent",
            p(&text),
            "-o",
            p(&out),
        ],
        "notes.wav",
    );
    assert!(err.contains("not audio"), "{err}");
    assert!(leftovers(dir.path(), &[&tone, &text]).is_empty());
}

#[test]
fn an_output_name_without_a_known_format_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let tone = sox_tone(dir.path(), "eu.wav", 440, 0.5, 8_000, 1);
    let out = dir.path().join("call.ogg");
    fails_with(
        &[
            "mix",
            "--end-user",
            p(&tone),
            "--agent",
            p(&tone),
            "-o",
            p(&out),
        ],
        "--format",
    );
    // --format decides when given.
    let other = sox_tone(dir.path(), "agent.wav", 440, 0.5, 8_000, 1);
    let o = callrec(&[
        "mix",
        "--end-user",
        p(&tone),
        "--agent",
        p(&other),
        "-o",
        p(&out),
        "--format",
        "wav",
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(ffprobe(&out)["codec_name"], "pcm_s16le");
}

#[test]
fn one_file_claimed_for_both_roles_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let tone = sox_tone(dir.path(), "eu.wav", 440, 0.5, 8_000, 1);
    let out = dir.path().join("call.mp3");
    fails_with(
        &[
            "mix",
            "--end-user",
            p(&tone),
            "--agent",
            p(&tone),
            "-o",
            p(&out),
        ],
        "both roles",
    );
    assert!(!out.exists());
}

#[test]
fn the_progress_bar_is_drawn_on_a_terminal_only() {
    let dir = tempfile::tempdir().unwrap();
    let a = sox_tone(dir.path(), "eu.wav", 440, 120.0, 8_000, 1);
    let b = sox_tone(dir.path(), "agent.wav", 700, 120.0, 8_000, 1);
    let out = dir.path().join("call.mp3");

    // Not a terminal (a pipe): only the summary line.
    let o = callrec(&["mix", "--end-user", p(&a), "--agent", p(&b), "-o", p(&out)]);
    assert!(o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        !err.contains("mixing") && !err.contains('\r'),
        "no progress bar on a pipe: {err:?}"
    );
    assert_eq!(err.lines().count(), 1, "{err:?}");

    // A terminal: `script` runs callrec on a pseudo-terminal.
    let cmd = format!(
        "{} mix --end-user {} --agent {} -o {}",
        env!("CARGO_BIN_EXE_callrec"),
        p(&a),
        p(&b),
        p(&dir.path().join("tty.mp3"))
    );
    let o = tool("script", &["-qec", &cmd, "/dev/null"]);
    let screen = String::from_utf8_lossy(&o.stdout);
    assert!(
        screen.contains("mixing"),
        "a progress bar on a terminal: {screen:?}"
    );
}
