//! The spool: a directory under the data directory where each recording
//! stays, on local disk and fsynced, from the moment the call is reported
//! finalized until the delivery worker has verified it in storage.
//!
//! One folder per call, `<spool>/<call-id>/`, holding `<call-id>.<ext>` (the
//! audio, written there by the encoder while the call runs), `<call-id>.json`
//! (the metadata) and `spool.json` (this module's manifest: state, format,
//! start time, and why the recording is partial if it is). While an MP3
//! recording runs, the recorder also keeps [`PCM_BACKUP`], the same audio as
//! WAV: an MP3 cut off by a crash is re-encoded from it at the next start
//! (the backup is removed once the entry is finished). Every file is
//! written to a temporary name, fsynced, renamed, and the folder fsynced, so
//! a crash leaves either the old or the new version.
//!
//! This module never deletes a recording that was not delivered: only
//! [`Spool::remove`] deletes, and only the delivery worker calls it, after
//! verification. It never talks to storage or the catalog.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use callrec_media::encode::Format;
use callrec_media::encode::wav;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use time::OffsetDateTime;

use crate::store::{RecordingKeys, StoredCallId};

const MANIFEST: &str = "spool.json";

/// The file name, inside a recording's spool folder, of the PCM backup an
/// MP3 recording keeps while its call runs (WAV, 8 kHz stereo s16le, its
/// header brought up to date at every checkpoint). See [`Spool::recover`].
pub const PCM_BACKUP: &str = "pcm-backup.wav";

/// What went wrong in the spool. Every message names the path and what to do.
#[derive(Debug, thiserror::Error)]
pub enum SpoolError {
    /// The spool directory is not a directory.
    #[error(
        "the spool path {0} is not a directory: point the data directory elsewhere or remove that file"
    )]
    NotADirectory(PathBuf),
    /// Reading or writing a spool file failed (permissions, full disk, ...).
    #[error(
        "cannot {action} {path} in the spool: {source}: check free disk space and that callrec may write there"
    )]
    Io {
        /// What was being done.
        action: &'static str,
        /// The file or folder.
        path: PathBuf,
        /// The system's error.
        #[source]
        source: io::Error,
    },
    /// A call id that cannot name a spool folder.
    #[error("{0}")]
    InvalidCallId(#[from] crate::store::StoreError),
    /// The call already has a recording in the spool.
    #[error("call {0} already has a recording in the spool: it is not overwritten")]
    AlreadySpooled(String),
    /// No recording for that call is in the spool.
    #[error("call {0} has no recording in the spool")]
    NotSpooled(String),
    /// The recording is still being written (call [`Spool::finish`] first).
    #[error("the recording of call {0} is still being written: finish it first")]
    StillRecording(String),
    /// The metadata given is not a JSON object.
    #[error("the metadata of call {0} is not a json object: pass an object")]
    MetadataNotAnObject(String),
    /// Re-encoding a cut-off MP3 from its PCM backup failed.
    #[error(
        "cannot re-encode {path} from its PCM backup: {source}; the backup is kept, check free disk space"
    )]
    Reencode {
        /// The MP3 being written.
        path: PathBuf,
        /// The encoder's error.
        #[source]
        source: callrec_media::encode::EncodeError,
    },
    /// A spool file is unreadable as what it should be.
    #[error("the spool file {path} is damaged ({why}): it is kept; inspect it by hand")]
    Damaged {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        why: String,
    },
}

/// Where a spool entry is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum EntryState {
    /// The encoder is writing the audio (or was, when the process died).
    Recording,
    /// Audio and metadata are complete and fsynced: waiting for delivery.
    Finished,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Manifest {
    call_id: String,
    /// The catalog's id of the recording (opaque to the spool).
    recording_id: String,
    #[serde(with = "time::serde::rfc3339")]
    started_at: OffsetDateTime,
    format: String,
    state: EntryState,
    #[serde(default)]
    partial: Option<String>,
}

/// A finished recording waiting in the spool for delivery.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpooledRecording {
    /// The call.
    pub call_id: StoredCallId,
    /// The catalog's id of the recording, as given to [`Spool::begin`].
    pub recording_id: String,
    /// When the call started (it decides the storage folder).
    pub started_at: OffsetDateTime,
    /// The audio format.
    pub format: Format,
    /// The audio file in the spool.
    pub audio_path: PathBuf,
    /// The metadata JSON in the spool.
    pub metadata_path: PathBuf,
    /// Why the recording is partial (cut off by a crash), if it is.
    pub partial: Option<String>,
    /// Size of the audio file in bytes.
    pub audio_size: u64,
    /// Lowercase hex sha256 of the audio file, as recorded in the metadata.
    pub audio_sha256: String,
    /// Length of the audio in milliseconds: from the WAV's size, or the
    /// metadata's `duration_ms` for an MP3 (0 if it has none).
    pub duration_ms: u64,
}

impl SpooledRecording {
    /// Where this recording goes in storage.
    pub fn keys(&self) -> RecordingKeys {
        RecordingKeys::new(&self.call_id, self.started_at, self.format)
    }
}

/// What [`Spool::recover`] did with a recording cut off by a crash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recovered {
    /// The call.
    pub call_id: StoredCallId,
    /// The catalog's id of the recording.
    pub recording_id: String,
    /// Why it is partial, if it is (a recording whose metadata was already
    /// written was complete and is not partial).
    pub partial: Option<String>,
}

/// The spool directory. Cheap to clone; all methods are blocking file I/O
/// (call them from `spawn_blocking` on a runtime).
#[derive(Debug, Clone)]
pub struct Spool {
    dir: PathBuf,
}

fn io_err<'a>(action: &'static str, path: &'a Path) -> impl FnOnce(io::Error) -> SpoolError + 'a {
    move |source| SpoolError::Io {
        action,
        path: path.to_owned(),
        source,
    }
}

/// Fsyncs a directory, so that creations and renames in it survive a crash.
fn sync_dir(dir: &Path) -> Result<(), SpoolError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io_err("fsync the folder", dir))
}

/// Writes `bytes` to `path` durably: temporary file, fsync, rename, fsync
/// of the folder.
fn write_durably(path: &Path, bytes: &[u8]) -> Result<(), SpoolError> {
    let tmp = path.with_extension("tmp");
    let mut f = File::create(&tmp).map_err(io_err("create", &tmp))?;
    f.write_all(bytes).map_err(io_err("write", &tmp))?;
    f.sync_all().map_err(io_err("fsync", &tmp))?;
    drop(f);
    fs::rename(&tmp, path).map_err(io_err("rename into place", path))?;
    sync_dir(path.parent().unwrap_or(Path::new(".")))
}

fn sha256_file(path: &Path) -> Result<(u64, String), SpoolError> {
    let mut f = File::open(path).map_err(io_err("read", path))?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 256 * 1024];
    let mut size = 0u64;
    loop {
        let n = io::Read::read(&mut f, &mut buf).map_err(io_err("read", path))?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        size += n as u64;
    }
    Ok((size, hex::encode(hasher.finalize())))
}

impl Spool {
    /// Opens (creating if needed) the spool at `dir` and checks that files
    /// can be created, fsynced and removed there, so that a broken spool is
    /// found at start-up and not when a call ends.
    pub fn open(dir: impl Into<PathBuf>) -> Result<Spool, SpoolError> {
        let dir = dir.into();
        if dir.exists() && !dir.is_dir() {
            return Err(SpoolError::NotADirectory(dir));
        }
        fs::create_dir_all(&dir).map_err(|e| {
            if e.kind() == io::ErrorKind::NotADirectory || e.kind() == io::ErrorKind::AlreadyExists
            {
                SpoolError::NotADirectory(dir.clone())
            } else {
                io_err("create the folder", &dir)(e)
            }
        })?;
        let probe = dir.join(".write-probe");
        write_durably(&probe, b"callrec spool write probe\n")?;
        fs::remove_file(&probe).map_err(io_err("remove", &probe))?;
        Ok(Spool { dir })
    }

    /// Opens the spool in its place under the data directory,
    /// `<data_dir>/spool` (see [`open`](Self::open)).
    pub fn open_in_data_dir(data_dir: &Path) -> Result<Spool, SpoolError> {
        Spool::open(data_dir.join("spool"))
    }

    /// The spool directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn entry_dir(&self, call_id: &StoredCallId) -> PathBuf {
        self.dir.join(call_id.as_str())
    }

    fn paths(&self, call_id: &StoredCallId, format: Format) -> (PathBuf, PathBuf, PathBuf) {
        let d = self.entry_dir(call_id);
        (
            d.join(format!("{call_id}.{}", format.extension())),
            d.join(format!("{call_id}.json")),
            d.join(MANIFEST),
        )
    }

    fn read_manifest(&self, entry: &Path) -> Result<Option<Manifest>, SpoolError> {
        let path = entry.join(MANIFEST);
        let text = match fs::read(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(io_err("read", &path)(e)),
        };
        serde_json::from_slice(&text)
            .map(Some)
            .map_err(|e| SpoolError::Damaged {
                path,
                why: e.to_string(),
            })
    }

    /// Starts the recording of a call: creates its spool folder and returns
    /// the path where the encoder writes the audio. Until [`finish`](Self::finish),
    /// the entry is "recording"; if the process dies, [`recover`](Self::recover)
    /// repairs it at the next start.
    pub fn begin(
        &self,
        call_id: &StoredCallId,
        recording_id: &str,
        started_at: OffsetDateTime,
        format: Format,
    ) -> Result<PathBuf, SpoolError> {
        let entry = self.entry_dir(call_id);
        match fs::create_dir(&entry) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                return Err(SpoolError::AlreadySpooled(call_id.to_string()));
            }
            Err(e) => return Err(io_err("create the folder", &entry)(e)),
        }
        sync_dir(&self.dir)?;
        let (audio, _, manifest) = self.paths(call_id, format);
        let m = Manifest {
            call_id: call_id.to_string(),
            recording_id: recording_id.to_owned(),
            started_at,
            format: format.extension().to_owned(),
            state: EntryState::Recording,
            partial: None,
        };
        write_durably(
            &manifest,
            &serde_json::to_vec_pretty(&m).expect("manifest serializes"),
        )?;
        Ok(audio)
    }

    /// Ends the recording of a call: fsyncs the audio the encoder wrote,
    /// writes the metadata (with `sha256`, `size_bytes` and `partial` set by
    /// the spool from the audio itself) and marks the entry finished. When
    /// this returns, the recording survives a crash: the call may be
    /// reported finalized.
    pub fn finish(
        &self,
        call_id: &StoredCallId,
        metadata: serde_json::Value,
    ) -> Result<SpooledRecording, SpoolError> {
        let entry = self.entry_dir(call_id);
        let mut m = self
            .read_manifest(&entry)?
            .ok_or_else(|| SpoolError::NotSpooled(call_id.to_string()))?;
        if m.state == EntryState::Finished {
            return Err(SpoolError::AlreadySpooled(call_id.to_string()));
        }
        let format = parse_format(&m, &entry)?;
        let (audio, meta_path, manifest) = self.paths(call_id, format);
        File::open(&audio)
            .and_then(|f| f.sync_all())
            .map_err(io_err("fsync", &audio))?;
        let (size, sha) = sha256_file(&audio)?;
        // A recorder that could not write everything says why in `partial`.
        m.partial = metadata
            .get("partial")
            .and_then(|p| p.as_str())
            .map(str::to_owned);
        let metadata = complete_metadata(call_id, metadata, size, &sha, m.partial.as_deref())?;
        write_durably(&meta_path, &metadata)?;
        m.state = EntryState::Finished;
        write_durably(
            &manifest,
            &serde_json::to_vec_pretty(&m).expect("manifest serializes"),
        )?;
        remove_pcm_backup(&entry)?;
        self.get(call_id)?
            .ok_or_else(|| SpoolError::NotSpooled(call_id.to_string()))
    }

    /// Where the recording of `call_id` keeps its PCM backup while it runs
    /// (see [`PCM_BACKUP`]).
    pub fn pcm_backup_path(&self, call_id: &StoredCallId) -> PathBuf {
        self.entry_dir(call_id).join(PCM_BACKUP)
    }

    /// Puts a finished recording whose audio is the file `audio` (copied)
    /// into the spool: [`begin`](Self::begin), copy, [`finish`](Self::finish).
    /// If anything fails the half-made entry is removed, so that a retry can
    /// succeed; what was accepted before is untouched.
    pub fn put(
        &self,
        call_id: &StoredCallId,
        recording_id: &str,
        started_at: OffsetDateTime,
        format: Format,
        audio: &Path,
        metadata: serde_json::Value,
    ) -> Result<SpooledRecording, SpoolError> {
        let mut src = File::open(audio).map_err(io_err("read", audio))?;
        let dest = self.begin(call_id, recording_id, started_at, format)?;
        let result = (|| {
            let mut out = File::create(&dest).map_err(io_err("create", &dest))?;
            io::copy(&mut src, &mut out).map_err(io_err("write", &dest))?;
            drop(out);
            self.finish(call_id, metadata)
        })();
        if result.is_err() {
            let _ = fs::remove_dir_all(self.entry_dir(call_id));
        }
        result
    }

    /// At start-up, before any new call: every entry left "recording" by a
    /// crash is made deliverable. A WAV gets its header sizes from its length
    /// (torn last frame cut). An MP3 cut off during its call is re-encoded
    /// from its PCM backup (repaired the same way), so that it holds
    /// everything up to the backup's last checkpoint with a correct Info tag;
    /// without a backup it is kept as is (decoders skip a torn last frame).
    /// An entry whose metadata was never written was cut off: it gets
    /// minimal metadata and is marked partial. Call once, while no call runs:
    /// a recording in progress looks exactly like one cut off.
    pub fn recover(&self) -> Result<Vec<Recovered>, SpoolError> {
        let mut recovered = Vec::new();
        for entry in self.entry_dirs()? {
            let Some(mut m) = self.read_manifest(&entry)? else {
                // A folder whose manifest was never written held no audio yet.
                if fs::read_dir(&entry)
                    .map(|mut d| d.next().is_none())
                    .unwrap_or(false)
                {
                    let _ = fs::remove_dir(&entry);
                } else {
                    tracing::warn!(path = %entry.display(), "spool folder without manifest kept for inspection");
                }
                continue;
            };
            if m.state == EntryState::Finished {
                // A crash between the manifest and the backup's removal.
                remove_pcm_backup(&entry)?;
                continue;
            }
            let call_id = StoredCallId::new(m.call_id.clone())?;
            let format = parse_format(&m, &entry)?;
            let (audio, meta_path, manifest) = self.paths(&call_id, format);
            if !audio.exists() {
                // Nothing was recorded: write an empty-but-valid file so that
                // the call's entry is still delivered (and visibly partial).
                let mut f = File::create(&audio).map_err(io_err("create", &audio))?;
                if format == Format::Wav {
                    f.write_all(&wav::header(0))
                        .map_err(io_err("write", &audio))?;
                }
            }
            let cut_off = !meta_path.exists();
            let backup = entry.join(PCM_BACKUP);
            let mut reencoded_ms = None;
            if format == Format::Wav {
                repair_wav(&audio)?;
            } else if cut_off && backup.exists() {
                reencoded_ms = Some(reencode_mp3(&backup, &audio)?);
            }
            File::open(&audio)
                .and_then(|f| f.sync_all())
                .map_err(io_err("fsync", &audio))?;
            let (size, sha) = sha256_file(&audio)?;
            let partial = if !cut_off {
                // `finish` had fsynced the audio before writing metadata:
                // the audio is complete, only the manifest update was lost.
                let existing: serde_json::Value = serde_json::from_slice(
                    &fs::read(&meta_path).map_err(io_err("read", &meta_path))?,
                )
                .unwrap_or_else(|_| serde_json::json!({}));
                let meta = complete_metadata(&call_id, existing, size, &sha, None)?;
                write_durably(&meta_path, &meta)?;
                None
            } else {
                let reason = match reencoded_ms {
                    Some(_) => "the recording was cut off when callrec stopped unexpectedly; the MP3 was re-encoded from the spooled PCM up to its last checkpoint",
                    None => "the recording was cut off when callrec stopped unexpectedly",
                }
                .to_owned();
                let mut minimal = serde_json::json!({
                    "call_id": call_id.as_str(),
                    "format": format.extension(),
                    "started_at": m.started_at.format(&time::format_description::well_known::Rfc3339).unwrap_or_default(),
                });
                if let Some(ms) = reencoded_ms {
                    minimal["duration_ms"] = ms.into();
                }
                let meta = complete_metadata(&call_id, minimal, size, &sha, Some(&reason))?;
                write_durably(&meta_path, &meta)?;
                Some(reason)
            };
            m.state = EntryState::Finished;
            m.partial = partial.clone();
            write_durably(
                &manifest,
                &serde_json::to_vec_pretty(&m).expect("manifest serializes"),
            )?;
            remove_pcm_backup(&entry)?;
            tracing::warn!(call_id = %call_id, partial = partial.is_some(), "recovered a recording cut off by a restart");
            recovered.push(Recovered {
                call_id,
                recording_id: m.recording_id.clone(),
                partial,
            });
        }
        Ok(recovered)
    }

    fn entry_dirs(&self) -> Result<Vec<PathBuf>, SpoolError> {
        let mut out = Vec::new();
        for e in fs::read_dir(&self.dir).map_err(io_err("list", &self.dir))? {
            let e = e.map_err(io_err("list", &self.dir))?;
            if e.file_type().map(|t| t.is_dir()).unwrap_or(false) {
                out.push(e.path());
            }
        }
        out.sort();
        Ok(out)
    }

    /// The finished recording of `call_id`, if it is in the spool.
    pub fn get(&self, call_id: &StoredCallId) -> Result<Option<SpooledRecording>, SpoolError> {
        let entry = self.entry_dir(call_id);
        match self.read_manifest(&entry)? {
            None => Ok(None),
            Some(m) if m.state == EntryState::Recording => {
                Err(SpoolError::StillRecording(call_id.to_string()))
            }
            Some(m) => self.load(&entry, m).map(Some),
        }
    }

    fn load(&self, entry: &Path, m: Manifest) -> Result<SpooledRecording, SpoolError> {
        let call_id = StoredCallId::new(m.call_id.clone())?;
        let format = parse_format(&m, entry)?;
        let (audio_path, metadata_path, _) = self.paths(&call_id, format);
        let meta: serde_json::Value = serde_json::from_slice(
            &fs::read(&metadata_path).map_err(io_err("read", &metadata_path))?,
        )
        .map_err(|e| SpoolError::Damaged {
            path: metadata_path.clone(),
            why: e.to_string(),
        })?;
        let audio_sha256 = meta
            .get("sha256")
            .and_then(|v| v.as_str())
            .ok_or_else(|| SpoolError::Damaged {
                path: metadata_path.clone(),
                why: "no sha256".into(),
            })?
            .to_owned();
        let audio_size = meta
            .get("size_bytes")
            .and_then(|v| v.as_u64())
            .ok_or_else(|| SpoolError::Damaged {
                path: metadata_path.clone(),
                why: "no size_bytes".into(),
            })?;
        let duration_ms = match format {
            // 8,000 frames of 4 bytes per second.
            Format::Wav => audio_size.saturating_sub(44) / 4 / 8,
            Format::Mp3 => meta
                .get("duration_ms")
                .and_then(|v| v.as_u64())
                .unwrap_or(0),
        };
        Ok(SpooledRecording {
            duration_ms,
            call_id,
            recording_id: m.recording_id,
            started_at: m.started_at,
            format,
            audio_path,
            metadata_path,
            partial: m.partial,
            audio_size,
            audio_sha256,
        })
    }

    /// Every finished recording in the spool, oldest call first. Entries
    /// still recording are left out (they belong to calls in progress, or
    /// to [`recover`](Self::recover)). A damaged entry is reported in the log
    /// and skipped, never deleted.
    pub fn list(&self) -> Result<Vec<SpooledRecording>, SpoolError> {
        let mut out = Vec::new();
        for entry in self.entry_dirs()? {
            match self.read_manifest(&entry) {
                Ok(Some(m)) if m.state == EntryState::Finished => match self.load(&entry, m) {
                    Ok(r) => out.push(r),
                    Err(e) => tracing::error!(error = %e, "spool entry skipped"),
                },
                Ok(_) => {}
                Err(e) => tracing::error!(error = %e, "spool entry skipped"),
            }
        }
        out.sort_by(|a, b| (a.started_at, &a.call_id).cmp(&(b.started_at, &b.call_id)));
        Ok(out)
    }

    /// Deletes the recording of `call_id` from the spool. Only for a
    /// recording whose delivery was verified (or that was declined).
    pub fn remove(&self, call_id: &StoredCallId) -> Result<(), SpoolError> {
        let entry = self.entry_dir(call_id);
        // The manifest goes first: a crash midway leaves a folder without
        // manifest, which `list` ignores and `recover` cleans when empty.
        let manifest = entry.join(MANIFEST);
        match fs::remove_file(&manifest) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(io_err("remove", &manifest)(e)),
        }
        match fs::remove_dir_all(&entry) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(io_err("remove", &entry)(e)),
        }
        sync_dir(&self.dir)
    }
}

fn parse_format(m: &Manifest, entry: &Path) -> Result<Format, SpoolError> {
    m.format.parse().map_err(|_| SpoolError::Damaged {
        path: entry.join(MANIFEST),
        why: format!("unknown format {:?}", m.format),
    })
}

/// Adds what the spool knows for sure to the metadata: the audio's sha256
/// and size, and whether it is partial.
fn complete_metadata(
    call_id: &StoredCallId,
    metadata: serde_json::Value,
    size: u64,
    sha256: &str,
    partial: Option<&str>,
) -> Result<Vec<u8>, SpoolError> {
    let serde_json::Value::Object(mut map) = metadata else {
        return Err(SpoolError::MetadataNotAnObject(call_id.to_string()));
    };
    map.insert("sha256".into(), sha256.into());
    map.insert("size_bytes".into(), size.into());
    // `partial` is always a bool, with `partial_reason` when true: the
    // caller may have given a reason as the value (or null for none).
    let given = match map.remove("partial") {
        Some(serde_json::Value::String(why)) => Some(why),
        Some(serde_json::Value::Bool(true)) => Some(
            map.get("partial_reason")
                .and_then(|r| r.as_str())
                .unwrap_or("partial")
                .to_owned(),
        ),
        _ => None,
    };
    match partial.map(str::to_owned).or(given) {
        Some(reason) => {
            map.insert("partial".into(), true.into());
            map.insert("partial_reason".into(), reason.into());
        }
        None => {
            map.insert("partial".into(), false.into());
        }
    }
    Ok(serde_json::to_vec_pretty(&serde_json::Value::Object(map)).expect("json serializes"))
}

/// Removes the PCM backup of a finished entry, if there is one.
fn remove_pcm_backup(entry: &Path) -> Result<(), SpoolError> {
    let backup = entry.join(PCM_BACKUP);
    match fs::remove_file(&backup) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(io_err("remove", &backup)(e)),
    }
}

/// Re-encodes the MP3 `audio` from the PCM backup `backup` (repaired first):
/// written aside, fsynced and renamed over `audio`. Returns the duration in
/// milliseconds.
fn reencode_mp3(backup: &Path, audio: &Path) -> Result<u64, SpoolError> {
    use callrec_media::encode::RecordingEncoder;
    use callrec_media::encode::mp3::{Mp3Settings, Mp3Writer};
    use io::{BufWriter, Read, Seek};

    repair_wav(backup)?;
    let encode_err = |source| SpoolError::Reencode {
        path: audio.to_owned(),
        source,
    };
    let mut src = File::open(backup).map_err(io_err("read", backup))?;
    src.seek(io::SeekFrom::Start(wav::HEADER_LEN))
        .map_err(io_err("read", backup))?;
    let tmp = audio.with_extension("mp3.tmp");
    let out = File::create(&tmp).map_err(io_err("create", &tmp))?;
    let mut enc = Mp3Writer::new(
        BufWriter::with_capacity(64 * 1024, out),
        Mp3Settings::default(),
    )
    .map_err(encode_err)?;
    // 0.5 s of stereo per read; `repair_wav` left whole frames only.
    let mut bytes = vec![0u8; 16_000];
    let mut samples = Vec::with_capacity(bytes.len() / 2);
    loop {
        let mut n = 0;
        while n < bytes.len() {
            match src.read(&mut bytes[n..]).map_err(io_err("read", backup))? {
                0 => break,
                k => n += k,
            }
        }
        let whole = n - n % 4;
        if whole == 0 {
            break;
        }
        samples.clear();
        samples.extend(
            bytes[..whole]
                .chunks_exact(2)
                .map(|b| i16::from_le_bytes([b[0], b[1]])),
        );
        enc.write(&samples).map_err(encode_err)?;
        if n < bytes.len() {
            break;
        }
    }
    let (out, summary) = enc.into_inner().map_err(encode_err)?;
    let out = out
        .into_inner()
        .map_err(|e| io_err("write", &tmp)(e.into_error()))?;
    out.sync_all().map_err(io_err("fsync", &tmp))?;
    drop(out);
    fs::rename(&tmp, audio).map_err(io_err("rename into place", audio))?;
    sync_dir(audio.parent().unwrap_or(Path::new(".")))?;
    Ok(summary.duration_ms())
}

/// Repairs a WAV cut off by a crash (sizes from the length, torn frame cut).
fn repair_wav(path: &Path) -> Result<(), SpoolError> {
    let mut f = OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
        .map_err(io_err("open", path))?;
    let len = f.metadata().map_err(io_err("read", path))?.len();
    let r = wav::repair(&mut f, len).map_err(|e| SpoolError::Damaged {
        path: path.to_owned(),
        why: e.to_string(),
    })?;
    if r.file_len != len {
        f.set_len(r.file_len).map_err(io_err("truncate", path))?;
    }
    f.sync_all().map_err(io_err("fsync", path))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t() -> OffsetDateTime {
        time::macros::datetime!(2026-11-24 10:00 UTC)
    }

    #[test]
    fn begin_write_finish_list_remove() {
        let dir = tempfile::tempdir().unwrap();
        let spool = Spool::open_in_data_dir(dir.path()).unwrap();
        let id = StoredCallId::new("c1").unwrap();
        let path = spool.begin(&id, "r1", t(), Format::Mp3).unwrap();
        std::fs::write(&path, b"mp3 frames").unwrap();
        // In progress: not listed, not deliverable.
        assert!(spool.list().unwrap().is_empty());
        assert!(matches!(spool.get(&id), Err(SpoolError::StillRecording(_))));
        let done = spool
            .finish(&id, serde_json::json!({"duration_ms": 1500}))
            .unwrap();
        assert_eq!(done.audio_size, 10);
        assert_eq!(done.duration_ms, 1500);
        assert_eq!(done.partial, None);
        assert_eq!(done.keys().audio.as_str(), "recordings/2026/11/24/c1.mp3");
        let meta: serde_json::Value =
            serde_json::from_slice(&fs::read(&done.metadata_path).unwrap()).unwrap();
        assert_eq!(meta["sha256"], hex::encode(Sha256::digest(b"mp3 frames")));
        assert_eq!(meta["partial"], false);
        assert_eq!(spool.list().unwrap(), vec![done]);
        spool.remove(&id).unwrap();
        assert!(spool.list().unwrap().is_empty());
        assert!(fs::read_dir(spool.dir()).unwrap().next().is_none());
    }

    #[test]
    fn recover_tells_cut_off_from_complete() {
        let dir = tempfile::tempdir().unwrap();
        let spool = Spool::open(dir.path().join("spool")).unwrap();
        // Cut off during the call: no metadata yet.
        let cut = StoredCallId::new("cut").unwrap();
        let p = spool.begin(&cut, "r1", t(), Format::Mp3).unwrap();
        std::fs::write(&p, b"abc").unwrap();
        // Died in `finish` after the metadata, before the manifest.
        let whole = StoredCallId::new("whole").unwrap();
        let p = spool.begin(&whole, "r2", t(), Format::Mp3).unwrap();
        std::fs::write(&p, b"abcdef").unwrap();
        std::fs::write(p.with_extension("json"), b"{\"queue\":\"sales\"}").unwrap();
        let mut rec = spool.recover().unwrap();
        rec.sort_by(|a, b| a.call_id.cmp(&b.call_id));
        assert_eq!(rec.len(), 2);
        assert!(rec[0].partial.is_some(), "{rec:?}");
        assert_eq!(rec[1].partial, None, "{rec:?}");
        let listed = spool.list().unwrap();
        assert_eq!(listed.len(), 2);
        let whole_meta: serde_json::Value =
            serde_json::from_slice(&fs::read(&listed[1].metadata_path).unwrap()).unwrap();
        assert_eq!(whole_meta["queue"], "sales", "existing metadata kept");
        assert_eq!(whole_meta["size_bytes"], 6);
        // Recovering again changes nothing.
        assert!(spool.recover().unwrap().is_empty());
    }

    /// Decodes with ffmpeg (not our decoder) to interleaved 8 kHz stereo.
    fn ffmpeg_decode(path: &Path) -> Vec<i16> {
        let out = std::process::Command::new("ffmpeg")
            .args(["-v", "error", "-i"])
            .arg(path)
            .args(["-f", "s16le", "-ac", "2", "-ar", "8000", "-"])
            .output()
            .expect("ffmpeg must be installed (scripts/install-test-deps.sh)");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        out.stdout
            .chunks_exact(2)
            .map(|b| i16::from_le_bytes([b[0], b[1]]))
            .collect()
    }

    fn rms(x: impl Iterator<Item = i16>) -> f64 {
        let (sum, n) = x.fold((0f64, 0usize), |(s, n), v| {
            (s + f64::from(v).powi(2), n + 1)
        });
        (sum / n.max(1) as f64).sqrt()
    }

    #[test]
    fn a_cut_off_mp3_is_reencoded_from_its_pcm_backup() {
        use callrec_media::encode::{RecordingEncoder, WavWriter};
        let dir = tempfile::tempdir().unwrap();
        let spool = Spool::open(dir.path().join("spool")).unwrap();
        let id = StoredCallId::new("cut-mp3").unwrap();
        let audio = spool.begin(&id, "r1", t(), Format::Mp3).unwrap();
        // The MP3 as a crash left it: a few torn bytes.
        std::fs::write(&audio, [0xff, 0xe2, 0x00]).unwrap();
        // The backup: 2.5 s of a 1 kHz tone on the left, silence on the
        // right, its header never updated and its last frame torn.
        let backup = spool.pcm_backup_path(&id);
        let mut w =
            WavWriter::with_header_interval(File::create(&backup).unwrap(), u64::MAX).unwrap();
        let pcm: Vec<i16> = (0..20_000)
            .flat_map(|i| {
                let l = (8000.0 * (2.0 * std::f64::consts::PI * 1000.0 * i as f64 / 8000.0).sin())
                    as i16;
                [l, 0]
            })
            .collect();
        w.write(&pcm).unwrap();
        w.checkpoint().unwrap();
        drop(w);
        let mut f = OpenOptions::new().write(true).open(&backup).unwrap();
        f.write_all(&wav::header(0)).unwrap();
        let len = f.metadata().unwrap().len();
        f.set_len(len + 3).unwrap(); // a torn frame
        drop(f);

        let rec = spool.recover().unwrap();
        assert_eq!(rec.len(), 1);
        let why = rec[0].partial.as_deref().expect("marked partial");
        assert!(why.contains("re-encoded from the spooled PCM"), "{why}");
        assert!(!backup.exists(), "the backup is removed once recovered");
        let listed = spool.get(&id).unwrap().unwrap();
        assert_eq!(listed.duration_ms, 2500);
        // Measured by ffmpeg: 2.5 s, the tone on the left only.
        let decoded = ffmpeg_decode(&audio);
        assert_eq!(
            decoded.len(),
            pcm.len(),
            "decoded length equals the backup's"
        );
        let left = rms(decoded.iter().step_by(2).copied().skip(2000));
        let right = rms(decoded.iter().skip(1).step_by(2).copied().skip(2000));
        assert!(left > 4000.0, "left rms {left}");
        assert!(right < left / 1000.0, "right rms {right} vs left {left}");
    }

    #[test]
    fn a_finished_entry_loses_its_backup_and_a_complete_mp3_is_not_reencoded() {
        let dir = tempfile::tempdir().unwrap();
        let spool = Spool::open(dir.path().join("spool")).unwrap();
        let id = StoredCallId::new("done").unwrap();
        let audio = spool.begin(&id, "r1", t(), Format::Mp3).unwrap();
        std::fs::write(&audio, b"complete mp3").unwrap();
        std::fs::write(spool.pcm_backup_path(&id), b"RIFF").unwrap();
        spool.finish(&id, serde_json::json!({})).unwrap();
        assert!(!spool.pcm_backup_path(&id).exists());
        // Died after the metadata, before the manifest: complete, kept as is.
        let id2 = StoredCallId::new("meta-written").unwrap();
        let audio2 = spool.begin(&id2, "r2", t(), Format::Mp3).unwrap();
        std::fs::write(&audio2, b"complete mp3 too").unwrap();
        std::fs::write(audio2.with_extension("json"), b"{}").unwrap();
        std::fs::write(spool.pcm_backup_path(&id2), b"RIFF").unwrap();
        let rec = spool.recover().unwrap();
        assert_eq!(rec.len(), 1);
        assert_eq!(rec[0].partial, None);
        assert_eq!(std::fs::read(&audio2).unwrap(), b"complete mp3 too");
        assert!(!spool.pcm_backup_path(&id2).exists());
        assert_eq!(std::fs::read(&audio).unwrap(), b"complete mp3");
    }
}
