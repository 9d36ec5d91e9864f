//! The recording of one call: RTP of each stream into the media timeline,
//! the timeline's stereo into the file encoder, and at the end the file
//! finalized and the metadata JSON written beside it.
//!
//! Layout (the spool's): `<spool>/<call-id>/<call-id>.<mp3|wav>` and
//! `<call-id>.json`. The file is made readable up to "now" every
//! `checkpoint` (WAV header, MP3 frames), so a crash loses at most that.
//! This type never touches storage or the network: the delivery side reads
//! the [`RecordingFinished`] it returns.

use std::fs::File;
use std::io::{BufWriter, Read};
use std::path::{Path, PathBuf};
use std::time::Duration;

use callrec_media::Role;
use callrec_media::codec::Codec as MediaCodec;
use callrec_media::encode::{EncodeError, Format, RecordingEncoder, encoder_for};
use callrec_media::timeline::{
    MediaTime, PauseMode, SourceId, SourceStats, Timeline, TimelineConfig,
};
use callrec_siprec::sdp::Codec as SdpCodec;
use serde_json::json;
use sha2::{Digest, Sha256};
use time::OffsetDateTime;

/// A finished recording, ready for delivery: the audio and its metadata are
/// on disk in the spool when this is produced.
#[derive(Debug, Clone)]
pub struct RecordingFinished {
    /// The recording's call id (callrec's id, also the file name).
    pub call_id: String,
    /// The audio file.
    pub audio_path: PathBuf,
    /// The metadata JSON file beside it.
    pub metadata_path: PathBuf,
    /// The metadata (the content of `metadata_path`).
    pub metadata: serde_json::Value,
    /// The format.
    pub format: Format,
}

/// Converts the SDP codec names of callrec-siprec into the media core's.
pub fn media_codec(c: SdpCodec) -> Option<MediaCodec> {
    match c {
        SdpCodec::Pcmu => Some(MediaCodec::Pcmu),
        SdpCodec::Pcma => Some(MediaCodec::Pcma),
        SdpCodec::G722 => Some(MediaCodec::G722),
        SdpCodec::Opus => Some(MediaCodec::Opus),
        SdpCodec::TelephoneEvent { .. } => None,
    }
}

/// One recorded stream.
#[derive(Debug, Clone)]
struct Stream {
    label: String,
    source: SourceId,
}

/// The recording of one call while it runs.
pub struct Recorder {
    call_id: String,
    format: Format,
    audio_path: PathBuf,
    metadata_path: PathBuf,
    timeline: Timeline,
    encoder: Option<Box<dyn RecordingEncoder>>,
    /// An MP3 recording's PCM backup (see [`Recorder::keep_pcm_backup`]).
    backup: Option<Box<dyn RecordingEncoder>>,
    streams: Vec<Stream>,
    pcm: Vec<i16>,
    checkpoint_every: Duration,
    last_checkpoint: MediaTime,
    started_at: OffsetDateTime,
    write_error: Option<String>,
}

/// Why a recording could not be started or finished.
#[derive(Debug, thiserror::Error)]
pub enum RecordingError {
    /// The spool folder or file could not be created or read.
    #[error(
        "cannot write the recording at {path}: {source}; check free disk space and permissions of the data directory"
    )]
    Io {
        /// The path.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The encoder failed.
    #[error(transparent)]
    Encode(#[from] EncodeError),
}

impl Recorder {
    /// Creates `<spool>/<call_id>/` and the audio file, with a timeline
    /// whose sample 0 is `start`.
    pub fn create(
        spool: &Path,
        call_id: &str,
        format: Format,
        pause_mode: PauseMode,
        jitter_delay: Duration,
        checkpoint_every: Duration,
        start: MediaTime,
    ) -> Result<Recorder, RecordingError> {
        let dir = spool.join(call_id);
        std::fs::create_dir_all(&dir).map_err(|source| RecordingError::Io {
            path: dir.clone(),
            source,
        })?;
        let audio_path = dir.join(format!("{call_id}.{}", format.extension()));
        let metadata_path = dir.join(format!("{call_id}.json"));
        let file = File::create(&audio_path).map_err(|source| RecordingError::Io {
            path: audio_path.clone(),
            source,
        })?;
        let encoder = encoder_for(format, BufWriter::with_capacity(8 * 1024, file))?;
        let config = TimelineConfig {
            pause_mode,
            jitter_delay,
            sequencer: callrec_media::sequencer::SequencerConfig {
                max_wait: jitter_delay / 2,
                ..TimelineConfig::default().sequencer
            },
            ..TimelineConfig::default()
        };
        Ok(Recorder {
            call_id: call_id.to_owned(),
            format,
            audio_path,
            metadata_path,
            timeline: Timeline::new(config, start),
            encoder: Some(encoder),
            backup: None,
            streams: Vec::new(),
            pcm: Vec::with_capacity(2048),
            checkpoint_every,
            last_checkpoint: start,
            started_at: OffsetDateTime::now_utc(),
            write_error: None,
        })
    }

    /// For an MP3 recording: also writes the audio as WAV to
    /// [`PCM_BACKUP`](callrec_storage::spool::PCM_BACKUP) beside it,
    /// checkpointed with it, so that a crash mid-call loses no more of the
    /// MP3 than of a WAV (the spool re-encodes from it at the next start and
    /// removes it once the recording is finished). Costs 32 kB/s of disk
    /// writes per call. Nothing for a WAV recording.
    pub fn keep_pcm_backup(&mut self) -> Result<(), RecordingError> {
        if self.format != Format::Mp3 {
            return Ok(());
        }
        let path = self
            .audio_path
            .with_file_name(callrec_storage::spool::PCM_BACKUP);
        let file = File::create(&path).map_err(|source| RecordingError::Io {
            path: path.clone(),
            source,
        })?;
        // The writer buffers itself; header sizes at every checkpoint only
        // (the spool repairs them from the length anyway).
        let wav = callrec_media::encode::WavWriter::with_header_interval(file, u64::MAX)?;
        self.backup = Some(Box::new(wav));
        Ok(())
    }

    /// The audio file.
    pub fn audio_path(&self) -> &Path {
        &self.audio_path
    }

    /// Adds the stream `label` on `role`'s channel; returns its index for
    /// [`Recorder::push`].
    pub fn add_stream(&mut self, label: &str, role: Role, codecs: &[(u8, SdpCodec)]) -> usize {
        let pts: Vec<(u8, MediaCodec)> = codecs
            .iter()
            .filter_map(|&(pt, c)| media_codec(c).map(|m| (pt, m)))
            .collect();
        let source = self.timeline.add_rtp_source(role, &pts);
        self.streams.push(Stream {
            label: label.to_owned(),
            source,
        });
        self.streams.len() - 1
    }

    /// Stops recording stream `index` at `at` (a participant left).
    pub fn remove_stream(&mut self, index: usize, at: MediaTime) {
        if let Some(s) = self.streams.get(index) {
            self.timeline.remove_source(s.source, at);
        }
    }

    /// One datagram of stream `index`. A bad packet is dropped (and counted
    /// by the timeline); the call goes on.
    pub fn push(&mut self, index: usize, arrival: MediaTime, datagram: &[u8]) -> bool {
        match self.streams.get(index) {
            Some(s) => self.timeline.push_rtp(s.source, arrival, datagram).is_ok(),
            None => false,
        }
    }

    /// Pauses at `at`.
    pub fn pause(&mut self, at: MediaTime) {
        self.timeline.pause(at);
    }

    /// Resumes at `at`.
    pub fn resume(&mut self, at: MediaTime) {
        self.timeline.resume(at);
    }

    /// Whether a pause is open.
    pub fn is_paused(&self) -> bool {
        self.timeline
            .pause_spans()
            .last()
            .is_some_and(|s| s.end.is_none())
    }

    /// Emits what is due at `now` into the file, and checkpoints the file
    /// when it is time.
    pub fn tick(&mut self, now: MediaTime) {
        self.pcm.clear();
        self.timeline.poll(now, &mut self.pcm);
        self.write_pcm();
        if now.saturating_duration_since(self.last_checkpoint) >= self.checkpoint_every {
            self.last_checkpoint = now;
            if let Some(enc) = self.encoder.as_mut()
                && let Err(e) = enc.checkpoint()
            {
                self.note_error(e);
            }
            if let Some(b) = self.backup.as_mut()
                && let Err(e) = b.checkpoint()
            {
                self.drop_backup(e);
            }
        }
    }

    /// The backup failed (full disk): the recording goes on without it.
    fn drop_backup(&mut self, e: EncodeError) {
        tracing::warn!(call_id = %self.call_id, error = %e, "the PCM backup of the recording failed; a crash now would keep only the MP3 as far as it got");
        self.backup = None;
    }

    fn write_pcm(&mut self) {
        if self.pcm.is_empty() {
            return;
        }
        if let Some(enc) = self.encoder.as_mut()
            && let Err(e) = enc.write(&self.pcm)
        {
            self.note_error(e);
        }
        if let Some(b) = self.backup.as_mut()
            && let Err(e) = b.write(&self.pcm)
        {
            self.drop_backup(e);
        }
    }

    fn note_error(&mut self, e: EncodeError) {
        if self.write_error.is_none() {
            tracing::error!(call_id = %self.call_id, error = %e, "recording write failed; the file is kept as far as it got");
            self.write_error = Some(e.to_string());
        }
    }

    /// Per stream: label and counters.
    pub fn stream_stats(&self) -> Vec<(String, SourceStats)> {
        self.streams
            .iter()
            .map(|s| (s.label.clone(), self.timeline.stats(s.source)))
            .collect()
    }

    /// Flushes the timeline, ends the file and returns what the metadata
    /// needs; `extra` (call-level metadata: participants, channel map,
    /// reasons) is merged into the JSON. Blocking (file I/O and hashing):
    /// call it from a blocking task.
    pub fn finish(mut self, extra: serde_json::Value) -> Result<RecordingFinished, RecordingError> {
        self.pcm.clear();
        self.timeline.finish(&mut self.pcm);
        self.write_pcm();
        // The spool removes the backup once the entry is finished; until
        // then a crash re-encodes from it.
        if let Some(b) = self.backup.take()
            && let Err(e) = b.finish()
        {
            tracing::warn!(call_id = %self.call_id, error = %e, "the PCM backup could not be closed");
        }
        let summary = match self.encoder.take() {
            Some(enc) => Some(enc.finish()?),
            None => None,
        };
        let (size, sha256) = sha256_file(&self.audio_path)?;
        let pause_spans: Vec<serde_json::Value> = self
            .timeline
            .pause_spans()
            .iter()
            .map(|p| {
                json!({
                    "start_ms": p.start_sample * 1000 / 8000,
                    "end_ms": p.end_sample.map(|e| e * 1000 / 8000),
                    "paused_ms": p.end.map(|e| e.saturating_duration_since(p.start).as_millis() as u64),
                })
            })
            .collect();
        let streams: Vec<serde_json::Value> = self
            .stream_stats()
            .into_iter()
            .map(|(label, s)| {
                json!({
                    "label": label,
                    "packets_received": s.received,
                    "packets_lost": s.lost,
                    "packets_late": s.late,
                    "duplicates": s.duplicates,
                    "decode_errors": s.decode_errors,
                })
            })
            .collect();
        let ended_at = OffsetDateTime::now_utc();
        let fmt = &time::format_description::well_known::Rfc3339;
        let mut metadata = json!({
            "call_id": self.call_id,
            "format": self.format.extension(),
            "sample_rate": callrec_media::SAMPLE_RATE,
            "channels": callrec_media::CHANNELS,
            "duration_ms": summary.map(|s| s.duration_ms()).unwrap_or(0),
            "started_at": self.started_at.format(fmt).unwrap_or_default(),
            "ended_at": ended_at.format(fmt).unwrap_or_default(),
            "pause_spans": pause_spans,
            "streams": streams,
            "size_bytes": size,
            "sha256": sha256,
            "partial": self.write_error,
        });
        if let (Some(obj), serde_json::Value::Object(extra)) = (metadata.as_object_mut(), extra) {
            for (k, v) in extra {
                obj.insert(k, v);
            }
        }
        let text = serde_json::to_vec_pretty(&metadata).expect("json value serializes");
        std::fs::write(&self.metadata_path, text).map_err(|source| RecordingError::Io {
            path: self.metadata_path.clone(),
            source,
        })?;
        Ok(RecordingFinished {
            call_id: self.call_id,
            audio_path: self.audio_path,
            metadata_path: self.metadata_path,
            metadata,
            format: self.format,
        })
    }
}

fn sha256_file(path: &Path) -> Result<(u64, String), RecordingError> {
    let io = |source| RecordingError::Io {
        path: path.to_owned(),
        source,
    };
    let mut f = File::open(path).map_err(io)?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 64 * 1024];
    let mut size = 0u64;
    loop {
        let n = f.read(&mut buf).map_err(io)?;
        if n == 0 {
            break;
        }
        size += n as u64;
        hasher.update(&buf[..n]);
    }
    Ok((size, hex::encode(hasher.finalize())))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An RTP packet of PCMU silence-free audio (a constant byte).
    fn rtp(seq: u16, ts: u32, ssrc: u32, byte: u8) -> Vec<u8> {
        let mut p = vec![0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0];
        p[2..4].copy_from_slice(&seq.to_be_bytes());
        p[4..8].copy_from_slice(&ts.to_be_bytes());
        p[8..12].copy_from_slice(&ssrc.to_be_bytes());
        p.extend(std::iter::repeat_n(byte, 160));
        p
    }

    #[test]
    fn two_streams_go_to_their_channels_and_metadata_is_written() {
        let dir = tempfile::tempdir().unwrap();
        let mut r = Recorder::create(
            dir.path(),
            "c1",
            Format::Wav,
            PauseMode::Skip,
            Duration::from_millis(60),
            Duration::from_secs(1),
            MediaTime::ZERO,
        )
        .unwrap();
        // Added agent first: channels follow roles, not order.
        let agent = r.add_stream("1", Role::Agent, &[(0, SdpCodec::Pcmu)]);
        let user = r.add_stream("2", Role::EndUser, &[(0, SdpCodec::Pcmu)]);
        for i in 0..50u16 {
            let at = MediaTime::from_millis(u64::from(i) * 20);
            // mu-law 0x00 is a loud negative sample, 0xff is silence
            assert!(r.push(user, at, &rtp(i, u32::from(i) * 160, 1, 0x00)));
            assert!(r.push(agent, at, &rtp(i, u32::from(i) * 160, 2, 0xff)));
            r.tick(at);
        }
        let done = r
            .finish(json!({"channel_map": [{"channel": 1, "label": "2"}]}))
            .unwrap();
        assert_eq!(done.metadata["duration_ms"], 1000);
        assert_eq!(done.metadata["channel_map"][0]["label"], "2");
        assert_eq!(done.metadata["streams"][1]["packets_received"], 50);
        let on_disk: serde_json::Value =
            serde_json::from_slice(&std::fs::read(&done.metadata_path).unwrap()).unwrap();
        assert_eq!(on_disk["sha256"].as_str().unwrap().len(), 64);
        let mut wav = hound::WavReader::open(&done.audio_path).unwrap();
        let samples: Vec<i16> = wav.samples::<i16>().map(Result::unwrap).collect();
        let left: i64 = samples.iter().step_by(2).map(|s| i64::from(s.abs())).sum();
        let right: i64 = samples
            .iter()
            .skip(1)
            .step_by(2)
            .map(|s| i64::from(s.abs()))
            .sum();
        assert!(left > 1000 * right.max(1) / 10, "left {left} right {right}");
        assert!(right < 8000, "right must be near silence: {right}");
    }
}
