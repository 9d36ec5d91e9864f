//! Streaming encoders for the recording file: WAV (RIFF PCM s16le) and MP3
//! (LAME, MPEG-2.5 Layer III, CBR 32 kbps, plain stereo).
//!
//! Both take interleaved stereo 8 kHz samples (left = end user, right =
//! agent side) in chunks of any size and write them to a `Write + Seek` sink
//! that the caller opens: this module never opens a file. Memory is bounded
//! by the chunk size, never by the call length.

pub mod mp3;
pub mod wav;

use std::fmt;
use std::io;
use std::str::FromStr;

pub use mp3::Mp3Writer;
pub use wav::WavWriter;

/// The two file formats of a recording (a global setting; MP3 by default).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Format {
    /// MPEG-2.5 Layer III, CBR 32 kbps, plain stereo, with a LAME Info tag.
    #[default]
    Mp3,
    /// RIFF PCM s16le, 2 channels, 8,000 Hz.
    Wav,
}

impl Format {
    /// The file name extension, without the dot.
    pub const fn extension(self) -> &'static str {
        match self {
            Format::Mp3 => "mp3",
            Format::Wav => "wav",
        }
    }

    /// The MIME type served for this format.
    pub const fn mime_type(self) -> &'static str {
        match self {
            Format::Mp3 => "audio/mpeg",
            Format::Wav => "audio/wav",
        }
    }

    /// The format named by a file name's extension (case-insensitive), if any.
    pub fn from_path_extension(path: &std::path::Path) -> Option<Format> {
        path.extension()?.to_str()?.parse().ok()
    }
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.extension())
    }
}

impl FromStr for Format {
    type Err = UnknownFormat;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "mp3" => Ok(Format::Mp3),
            "wav" => Ok(Format::Wav),
            _ => Err(UnknownFormat(s.to_owned())),
        }
    }
}

/// A format name that is neither `mp3` nor `wav`.
#[derive(Debug, thiserror::Error)]
#[error("unknown recording format {0:?}: use mp3 or wav")]
pub struct UnknownFormat(pub String);

/// What went wrong while encoding a recording.
#[derive(Debug, thiserror::Error)]
pub enum EncodeError {
    /// Writing to the sink failed.
    #[error("cannot write the recording: {0}")]
    Io(#[from] io::Error),
    /// LAME refused its settings or the input.
    #[error("the mp3 encoder failed: {0}")]
    Lame(String),
    /// Interleaved input must hold whole stereo frames.
    #[error(
        "interleaved stereo input has an odd number of samples ({0}): pass whole left/right frames"
    )]
    OddSampleCount(usize),
}

/// What an encoder wrote, once finished.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EncodeSummary {
    /// Stereo frames (sample pairs) of audio in the file.
    pub frames: u64,
    /// Bytes written to the sink.
    pub bytes: u64,
}

impl EncodeSummary {
    /// The duration of the audio in milliseconds at 8 kHz.
    pub fn duration_ms(&self) -> u64 {
        self.frames * 1000 / u64::from(crate::SAMPLE_RATE)
    }
}

/// A streaming recording encoder of either format, behind one interface.
pub trait RecordingEncoder: Send {
    /// Appends interleaved stereo samples (L, R, L, R, ...).
    fn write(&mut self, interleaved: &[i16]) -> Result<(), EncodeError>;
    /// Makes what was written so far readable by a player if the process
    /// dies now, as far as the format allows (WAV: header sizes brought up
    /// to date; MP3: frames written out).
    fn checkpoint(&mut self) -> Result<(), EncodeError>;
    /// Ends the file and returns what was written.
    fn finish(self: Box<Self>) -> Result<EncodeSummary, EncodeError>;
}

/// An encoder of `format` writing to `sink`.
pub fn encoder_for<W>(format: Format, sink: W) -> Result<Box<dyn RecordingEncoder>, EncodeError>
where
    W: io::Write + io::Seek + Send + 'static,
{
    Ok(match format {
        Format::Mp3 => Box::new(Mp3Writer::new(sink, mp3::Mp3Settings::default())?),
        Format::Wav => Box::new(WavWriter::new(sink)?),
    })
}

fn check_interleaved(interleaved: &[i16]) -> Result<(), EncodeError> {
    if !interleaved.len().is_multiple_of(2) {
        return Err(EncodeError::OddSampleCount(interleaved.len()));
    }
    Ok(())
}
