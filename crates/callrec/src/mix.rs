//! `callrec mix`: one stereo recording from the two legs of a call.
//!
//! Two ways in: two audio files (`--end-user A --agent B`), or an RTP
//! capture (`--pcap CAPTURE`) whose streams are placed on the timeline by
//! their RTP timestamps, anchored to capture time. Either way the roles are
//! said by the user or by the capture's SIP, never guessed from packet
//! order. The output is written beside OUT under a temporary name and
//! renamed only when complete: a failed mix leaves no OUT behind.

use std::collections::BTreeMap;
use std::io::{BufWriter, IsTerminal};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};
use callrec_media::Role;
use callrec_media::codec::Codec;
use callrec_media::encode::{EncodeError, EncodeSummary, Format, RecordingEncoder, encoder_for};
use callrec_media::timeline::{MediaTime, Timeline, TimelineConfig};
use clap::{Args, ValueEnum};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::input::AudioInput;
use crate::pcap::{self, RtpStream, Scan, StreamKey};

/// Arguments of `callrec mix`.
#[derive(Debug, Args)]
#[command(after_help = "\
Examples:
  callrec mix --end-user customer.wav --agent agent.wav -o call.mp3
  callrec mix --end-user in.ulaw --agent out.ulaw -o call.wav
  callrec mix --pcap call.pcap -o call.mp3                  (roles from the SIP in the capture)
  callrec mix --pcap call.pcap --end-user 0x1A2B3C4D --agent 10.0.0.7:40002 -o call.mp3
  callrec mix --pcap call.pcap --list                       (only list the RTP streams)")]
pub struct MixArgs {
    /// The end user's leg, channel 1 (left). Without --pcap: an audio file
    /// (WAV of any rate and channel count, or headerless .ulaw/.alaw). With
    /// --pcap: the end user's RTP stream, as an SSRC (0x1A2B3C4D or decimal)
    /// or the stream's source ADDRESS:PORT.
    #[arg(long, value_name = "FILE|STREAM")]
    end_user: Option<String>,

    /// The agent's leg, channel 2 (right): a file, or with --pcap a stream
    /// (as for --end-user).
    #[arg(long, value_name = "FILE|STREAM")]
    agent: Option<String>,

    /// Read the legs from the RTP streams of this capture (pcap or pcapng).
    #[arg(long, value_name = "CAPTURE")]
    pcap: Option<PathBuf>,

    /// With --pcap and no stream given: the role of the caller (the side
    /// that sent the INVITE in the capture). An inbound contact-center call
    /// has the end user as caller; pass `agent` for an outbound call.
    #[arg(long, value_enum, default_value_t = CallerRole::EndUser)]
    caller: CallerRole,

    /// With --pcap: list the RTP streams found and exit.
    #[arg(long, requires = "pcap")]
    list: bool,

    /// The recording to write (.mp3 or .wav).
    #[arg(short, long, value_name = "OUT", required_unless_present = "list")]
    output: Option<PathBuf>,

    /// The format of OUT; by default it follows OUT's extension.
    #[arg(long, value_parser = parse_format)]
    format: Option<Format>,

    /// LAME quality for MP3 (0 .. 9; 7 and above skip LAME's noise
    /// shaping, which measured no better for 8 kHz speech: see BENCHMARKS.md).
    #[arg(long, default_value_t = callrec_media::encode::mp3::Mp3Settings::DEFAULT.quality, value_parser = clap::value_parser!(u8).range(0..=9))]
    mp3_quality: u8,
}

fn parse_format(s: &str) -> Result<Format, String> {
    s.parse()
        .map_err(|e: callrec_media::encode::UnknownFormat| e.to_string())
}

/// Who the caller is, for the default role mapping of a capture.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum CallerRole {
    EndUser,
    Agent,
}

/// Runs `callrec mix`.
pub fn run(args: MixArgs) -> Result<()> {
    if let Some(capture) = &args.pcap {
        let scan = pcap::scan(capture)?;
        if args.list {
            list_streams(capture, &scan);
            return Ok(());
        }
        let out = args.output.as_deref().expect("clap requires OUT");
        let format = output_format(out, args.format)?;
        let plan = plan_capture(capture, &scan, &args)?;
        let summary = write_aside(out, format, args.mp3_quality, |enc| {
            mix_capture(capture, &plan, enc)
        })?;
        report(out, format, &summary);
        return Ok(());
    }
    let (Some(end_user), Some(agent)) = (&args.end_user, &args.agent) else {
        bail!("give both legs: --end-user FILE and --agent FILE, or a capture with --pcap CAPTURE");
    };
    let out = args.output.as_deref().expect("clap requires OUT");
    let format = output_format(out, args.format)?;
    let (end_user, agent) = (Path::new(end_user), Path::new(agent));
    if same_file(end_user, agent) {
        bail!(
            "{} is claimed for both roles: give the end user's and the agent's legs as two files",
            end_user.display()
        );
    }
    let summary = write_aside(out, format, args.mp3_quality, |enc| {
        mix_files(end_user, agent, enc)
    })?;
    report(out, format, &summary);
    Ok(())
}

fn same_file(a: &Path, b: &Path) -> bool {
    match (a.canonicalize(), b.canonicalize()) {
        (Ok(a), Ok(b)) => a == b,
        _ => a == b,
    }
}

fn report(out: &Path, format: Format, summary: &EncodeSummary) {
    eprintln!(
        "wrote {} ({format}, {:.2} s, {} bytes)",
        out.display(),
        summary.frames as f64 / 8_000.0,
        summary.bytes
    );
}

fn output_format(out: &Path, given: Option<Format>) -> Result<Format> {
    given
        .or_else(|| Format::from_path_extension(out))
        .ok_or_else(|| {
            anyhow!(
                "cannot tell the format of {}: name it .mp3 or .wav, or pass --format mp3|wav",
                out.display()
            )
        })
}

/// Writes the recording under a temporary name beside `out`, then renames
/// it to `out` once `fill` succeeded and the file is on disk.
fn write_aside(
    out: &Path,
    format: Format,
    mp3_quality: u8,
    fill: impl FnOnce(&mut dyn RecordingEncoder) -> Result<()>,
) -> Result<EncodeSummary> {
    let dir = match out.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let tmp = tempfile::Builder::new()
        .prefix(".callrec-mix-")
        .suffix(".part")
        .tempfile_in(dir)
        .with_context(|| format!("cannot write in {}", dir.display()))?;
    let sink = BufWriter::with_capacity(256 * 1024, tmp.as_file().try_clone()?);
    let encoder: Box<dyn RecordingEncoder> = match format {
        Format::Mp3 => Box::new(callrec_media::encode::Mp3Writer::new(
            sink,
            callrec_media::encode::mp3::Mp3Settings {
                quality: mp3_quality,
            },
        )?),
        Format::Wav => encoder_for(format, sink)?,
    };
    let mut encoder: Box<dyn RecordingEncoder> = Box::new(PipelinedEncoder::spawn(encoder));
    fill(encoder.as_mut())?;
    let summary = encoder.finish()?;
    tmp.as_file()
        .sync_all()
        .with_context(|| format!("cannot write {}", out.display()))?;
    tmp.persist(out)
        .map_err(|e| anyhow!("cannot write {}: {}", out.display(), e.error))?;
    Ok(summary)
}

/// Runs an encoder on its own thread, fed through a bounded channel, so that
/// decoding and mixing (this thread) overlap with encoding (LAME is the
/// costly stage). Capacity: 8 chunks of at most a second each; when full,
/// the mixer waits for the encoder (back-pressure, bounded memory).
struct PipelinedEncoder {
    chunks: Option<std::sync::mpsc::SyncSender<Vec<i16>>>,
    worker: Option<std::thread::JoinHandle<Result<EncodeSummary, EncodeError>>>,
}

impl PipelinedEncoder {
    fn spawn(mut encoder: Box<dyn RecordingEncoder>) -> Self {
        let (tx, rx) = std::sync::mpsc::sync_channel::<Vec<i16>>(8);
        let worker = std::thread::spawn(move || {
            for chunk in rx {
                encoder.write(&chunk)?;
            }
            encoder.finish()
        });
        PipelinedEncoder {
            chunks: Some(tx),
            worker: Some(worker),
        }
    }

    /// Waits for the encoder thread and returns how it ended.
    fn join(&mut self) -> Result<EncodeSummary, EncodeError> {
        self.chunks = None;
        match self.worker.take().map(|w| w.join()) {
            Some(Ok(result)) => result,
            Some(Err(_)) => Err(EncodeError::Lame("the encoder thread panicked".into())),
            None => Err(EncodeError::Lame("the encoder has already finished".into())),
        }
    }
}

impl RecordingEncoder for PipelinedEncoder {
    fn write(&mut self, interleaved: &[i16]) -> Result<(), EncodeError> {
        let sent = self.chunks.as_ref().map(|tx| tx.send(interleaved.to_vec()));
        match sent {
            Some(Ok(())) => Ok(()),
            // The encoder thread stopped: its error says why.
            _ => Err(self
                .join()
                .err()
                .unwrap_or(EncodeError::Lame("the encoder stopped early".into()))),
        }
    }

    fn checkpoint(&mut self) -> Result<(), EncodeError> {
        Ok(())
    }

    fn finish(mut self: Box<Self>) -> Result<EncodeSummary, EncodeError> {
        self.join()
    }
}

fn progress_bar(len: u64, unit: &str) -> ProgressBar {
    if !std::io::stderr().is_terminal() {
        return ProgressBar::with_draw_target(Some(len), ProgressDrawTarget::hidden());
    }
    let bar = ProgressBar::new(len);
    let template =
        format!("{{spinner}} mixing [{{bar:40}}] {{percent}}% {{pos}}/{{len}} {unit} eta {{eta}}");
    bar.set_style(
        ProgressStyle::with_template(&template)
            .expect("valid template")
            .progress_chars("=> "),
    );
    bar
}

/// Frames per chunk handed to the encoder when mixing files.
const CHUNK: usize = 8_000;

fn mix_files(end_user: &Path, agent: &Path, enc: &mut dyn RecordingEncoder) -> Result<()> {
    let mut left = AudioInput::open(end_user)?;
    let mut right = AudioInput::open(agent)?;
    let bar = progress_bar(left.input_frames + right.input_frames, "frames");
    let (mut l, mut r) = (Vec::with_capacity(CHUNK * 2), Vec::with_capacity(CHUNK * 2));
    let (mut l_done, mut r_done) = (false, false);
    let mut interleaved = Vec::with_capacity(CHUNK * 4);
    loop {
        while !l_done && l.len() < CHUNK {
            let n = left.read_chunk(&mut l)?;
            l_done = n == 0;
            bar.inc(n);
        }
        while !r_done && r.len() < CHUNK {
            let n = right.read_chunk(&mut r)?;
            r_done = n == 0;
            bar.inc(n);
        }
        let n = match (l_done, r_done) {
            (true, true) => l.len().max(r.len()),
            (true, false) => r.len(),
            (false, true) => l.len(),
            (false, false) => l.len().min(r.len()),
        };
        if n == 0 {
            break;
        }
        // A leg that has ended is silence until the other one ends too.
        if l_done && l.len() < n {
            l.resize(n, 0);
        }
        if r_done && r.len() < n {
            r.resize(n, 0);
        }
        interleaved.clear();
        for (a, b) in l.drain(..n).zip(r.drain(..n)) {
            interleaved.push(a);
            interleaved.push(b);
        }
        enc.write(&interleaved)?;
    }
    bar.finish_and_clear();
    Ok(())
}

fn list_streams(capture: &Path, scan: &Scan) {
    println!(
        "{} RTP stream(s) in {}:",
        scan.streams.len(),
        capture.display()
    );
    for s in &scan.streams {
        println!("  {s}");
    }
    match (&scan.caller_sdp, &scan.callee_sdp) {
        (Some(a), Some(b)) => println!(
            "SIP: caller receives at {}, callee at {}",
            fmt_addr(a.addr),
            fmt_addr(b.addr)
        ),
        (Some(a), None) => println!(
            "SIP: caller receives at {} (no answer captured)",
            fmt_addr(a.addr)
        ),
        _ => println!("SIP: no INVITE with SDP in the capture"),
    }
}

fn fmt_addr(a: Option<SocketAddr>) -> String {
    a.map_or_else(|| "?".into(), |a| a.to_string())
}

/// Which capture streams feed which role, and how to decode them.
struct CapturePlan {
    roles: BTreeMap<StreamKey, Role>,
    codecs: BTreeMap<u8, Codec>,
    /// Payload types that carry no audio and are left out (DTMF events, comfort noise).
    skipped: Vec<u8>,
    start: Duration,
    packets: u64,
}

/// A stream as named on the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Selector {
    Ssrc(u32),
    Source(SocketAddr),
}

fn parse_selector(option: &str, s: &str) -> Result<Selector> {
    let t = s.trim();
    let parsed = if let Some(hex) = t.strip_prefix("0x").or_else(|| t.strip_prefix("0X")) {
        u32::from_str_radix(hex, 16).ok().map(Selector::Ssrc)
    } else if !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit()) {
        t.parse().ok().map(Selector::Ssrc)
    } else {
        t.parse().ok().map(Selector::Source)
    };
    parsed.ok_or_else(|| {
        anyhow!("{option} {s:?} is not a stream: with --pcap give an SSRC (0x1A2B3C4D) or a source address:port (10.0.0.7:40002)")
    })
}

fn select<'a>(option: &str, sel: Selector, streams: &'a [RtpStream]) -> Result<Vec<&'a RtpStream>> {
    let found: Vec<&RtpStream> = streams
        .iter()
        .filter(|s| match sel {
            Selector::Ssrc(ssrc) => s.key.ssrc == ssrc,
            Selector::Source(addr) => s.key.src == addr,
        })
        .collect();
    if found.is_empty() {
        bail!(
            "{option}: no RTP stream in the capture matches {sel:?}; run with --list to see the streams"
        );
    }
    Ok(found)
}

fn plan_capture(capture: &Path, scan: &Scan, args: &MixArgs) -> Result<CapturePlan> {
    let name = capture.display();
    if scan.streams.is_empty() {
        bail!("{name} holds no RTP stream (UDP packets with RTP version 2): nothing to record");
    }
    let mut roles: BTreeMap<StreamKey, Role> = BTreeMap::new();
    let claim = |roles: &mut BTreeMap<StreamKey, Role>, s: &RtpStream, role: Role| -> Result<()> {
        if let Some(other) = roles.insert(s.key.clone(), role)
            && other != role
        {
            bail!(
                "stream {s} is claimed by both --end-user and --agent: give each role its own stream"
            );
        }
        Ok(())
    };
    match (&args.end_user, &args.agent) {
        (None, None) => {
            // Roles from the capture's SIP: audio is sent to the address the
            // receiver advertised in its SDP.
            let (Some(caller), callee) = (&scan.caller_sdp, &scan.callee_sdp) else {
                bail!(
                    "cannot tell which stream is the end user and which the agent: {name} has no SIP INVITE with SDP; \
                     pick them with --end-user and --agent (an SSRC or source address:port; --list shows the streams)"
                );
            };
            let (caller_role, callee_role) = match args.caller {
                CallerRole::EndUser => (Role::EndUser, Role::Agent),
                CallerRole::Agent => (Role::Agent, Role::EndUser),
            };
            for s in &scan.streams {
                let to_caller = caller.addr == Some(s.key.dst);
                let to_callee = callee.as_ref().is_some_and(|c| c.addr == Some(s.key.dst));
                let from_caller = caller.addr == Some(s.key.src);
                let role = if to_callee || (from_caller && !to_caller) {
                    Some(caller_role)
                } else if to_caller {
                    Some(callee_role)
                } else {
                    None
                };
                if let Some(role) = role {
                    claim(&mut roles, s, role)?;
                }
            }
            if roles.is_empty() {
                bail!(
                    "no RTP stream in {name} goes to or comes from the addresses in its SIP; \
                     pick the streams with --end-user and --agent (--list shows them)"
                );
            }
        }
        (end_user, agent) => {
            for (option, value, role) in [
                ("--end-user", end_user, Role::EndUser),
                ("--agent", agent, Role::Agent),
            ] {
                if let Some(v) = value {
                    for s in select(option, parse_selector(option, v)?, &scan.streams)? {
                        claim(&mut roles, s, role)?;
                    }
                }
            }
            // One role given: the other is the rest, if the rest is one source.
            let given = if end_user.is_some() {
                Role::EndUser
            } else {
                Role::Agent
            };
            if end_user.is_none() || agent.is_none() {
                let other = if given == Role::EndUser {
                    Role::Agent
                } else {
                    Role::EndUser
                };
                let rest: Vec<&RtpStream> = scan
                    .streams
                    .iter()
                    .filter(|s| !roles.contains_key(&s.key))
                    .collect();
                let sources: std::collections::BTreeSet<SocketAddr> =
                    rest.iter().map(|s| s.key.src).collect();
                match sources.len() {
                    0 => eprintln!(
                        "note: no other stream in the capture: the {other} channel is silent"
                    ),
                    1 => {
                        for s in rest {
                            roles.insert(s.key.clone(), other);
                        }
                    }
                    n => bail!(
                        "cannot tell which of the {n} other sources is the {other}: name it with --{}",
                        if other == Role::Agent {
                            "agent"
                        } else {
                            "end-user"
                        }
                    ),
                }
            }
        }
    }
    // Decoding: static payload types, or dynamic ones named in the SDP.
    let mut rtpmap = BTreeMap::new();
    for sdp in [&scan.caller_sdp, &scan.callee_sdp].into_iter().flatten() {
        for (pt, m) in &sdp.rtpmap {
            rtpmap.entry(*pt).or_insert_with(|| m.clone());
        }
    }
    let mut codecs = BTreeMap::new();
    let mut skipped = Vec::new();
    for s in scan.streams.iter().filter(|s| roles.contains_key(&s.key)) {
        let main = s.main_payload_type();
        for (&pt, &count) in &s.payload_types {
            if codecs.contains_key(&pt) || skipped.contains(&pt) {
                continue;
            }
            let named = rtpmap.get(&pt);
            if pt == 13
                || named.is_some_and(|(n, _, _)| {
                    n.eq_ignore_ascii_case("telephone-event") || n.eq_ignore_ascii_case("CN")
                })
            {
                skipped.push(pt);
                continue;
            }
            let codec = named
                .and_then(|(n, rate, ch)| Codec::from_rtpmap(n, *rate, *ch))
                .or_else(|| {
                    if pt < 96 {
                        Codec::from_static_payload_type(pt)
                    } else {
                        None
                    }
                });
            match codec {
                Some(c) => {
                    codecs.insert(pt, c);
                }
                // A few packets of an unnamed dynamic type beside the audio are
                // events (DTMF) or comfort noise: left out, with a note.
                None if Some(pt) != main && count * 10 <= s.packets => {
                    eprintln!(
                        "note: {count} packet(s) of payload type {pt} in stream 0x{:08X} carry no known audio and are left out",
                        s.key.ssrc
                    );
                    skipped.push(pt);
                }
                None => bail!(
                    "stream {s} uses payload type {pt}{}, which callrec cannot decode: it knows PCMU (0), PCMA (8), \
                     G.722 (9), and Opus or L16 when the capture's SDP names them",
                    named
                        .map(|(n, r, _)| format!(" ({n}/{r})"))
                        .unwrap_or_default()
                ),
            }
        }
    }
    let chosen = scan.streams.iter().filter(|s| roles.contains_key(&s.key));
    // A packet leaves its sender once its audio is spoken; the timeline
    // places a packet to end PLACEMENT_DELAY after its arrival. Start the
    // recording early enough that the first captured packet is whole.
    let lead = chosen
        .clone()
        .filter_map(|s| {
            let rate = codecs.get(&s.main_payload_type()?)?.clock_rate();
            Some(Duration::from_secs_f64(
                f64::from(s.frame_ticks?) / f64::from(rate),
            ))
        })
        .max()
        .unwrap_or_default()
        .saturating_sub(callrec_media::timeline::PLACEMENT_DELAY);
    let start = chosen
        .clone()
        .map(|s| s.first)
        .min()
        .unwrap_or_default()
        .saturating_sub(lead);
    let packets = chosen.map(|s| s.packets).sum();
    for (role, label) in [
        (Role::EndUser, "end user (left)"),
        (Role::Agent, "agent (right)"),
    ] {
        for s in scan
            .streams
            .iter()
            .filter(|s| roles.get(&s.key) == Some(&role))
        {
            eprintln!("{label}: {s}");
        }
    }
    Ok(CapturePlan {
        roles,
        codecs,
        skipped,
        start,
        packets,
    })
}

fn mix_capture(capture: &Path, plan: &CapturePlan, enc: &mut dyn RecordingEncoder) -> Result<()> {
    let mut timeline = Timeline::new(TimelineConfig::default(), MediaTime(0));
    let payload_types: Vec<(u8, Codec)> = plan.codecs.iter().map(|(pt, c)| (*pt, *c)).collect();
    let sources: BTreeMap<StreamKey, _> = plan
        .roles
        .iter()
        .map(|(key, role)| (key.clone(), timeline.add_rtp_source(*role, &payload_types)))
        .collect();
    let bar = progress_bar(plan.packets, "packets");
    let mut out = Vec::with_capacity(32 * 1024);
    let mut last_poll = Duration::ZERO;
    let mut rejected = 0u64;
    let mut first_rejection: Option<String> = None;
    pcap::for_each_datagram(capture, |d| {
        let p = d.payload;
        let Some(&source) = pcap::stream_key(&d).and_then(|key| sources.get(&key)) else {
            return Ok(());
        };
        bar.inc(1);
        if plan.skipped.contains(&(p[1] & 0x7F)) {
            return Ok(());
        }
        let at = d.at.saturating_sub(plan.start);
        if let Err(e) = timeline.push_rtp(source, MediaTime(at.as_nanos() as u64), p) {
            rejected += 1;
            first_rejection.get_or_insert_with(|| e.to_string());
        }
        if at >= last_poll + Duration::from_secs(1) {
            last_poll = at;
            timeline.poll(MediaTime(at.as_nanos() as u64), &mut out);
            enc.write(&out)?;
            out.clear();
        }
        Ok(())
    })?;
    timeline.finish(&mut out);
    enc.write(&out)?;
    bar.finish_and_clear();
    if let Some(first) = first_rejection {
        eprintln!(
            "warning: {rejected} packet(s) were left out as silence; the first because: {first}"
        );
    }
    Ok(())
}
