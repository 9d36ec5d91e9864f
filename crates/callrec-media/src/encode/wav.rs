//! The WAV writer: canonical 44-byte RIFF header, PCM s16le, 2 channels,
//! 8,000 Hz, and the repair of a file cut off by a crash.
//!
//! The header sizes are brought up to date every `header_interval` frames
//! and on every checkpoint, so that a file cut off by a crash plays up to
//! the last update even before [`repair`] fixes it. Written by hand rather
//! than with `hound` because the repair needs the exact layout we write
//! (one `fmt ` chunk, `data` at offset 36) and a streaming header update.

use std::io::{self, Read, Seek, SeekFrom, Write};

use super::{EncodeError, EncodeSummary, RecordingEncoder, check_interleaved};
use crate::{CHANNELS, SAMPLE_RATE};

/// Size of the header this writer produces; audio starts here.
pub const HEADER_LEN: u64 = 44;

/// Bytes of audio a [`WavWriter`] gathers before writing them to its sink
/// (a quarter of a second of 8 kHz stereo).
const BUFFER_BYTES: usize = 8 * 1024;
const BYTES_PER_FRAME: u64 = 2 * CHANNELS as u64;
/// The largest data size a RIFF header can state (about 37 hours at 8 kHz stereo).
const MAX_DATA_LEN: u64 = (u32::MAX as u64 - 36) / BYTES_PER_FRAME * BYTES_PER_FRAME;

/// Streaming WAV writer. See the module doc.
pub struct WavWriter<W: Write + Seek> {
    sink: W,
    buffer: Vec<u8>,
    frames: u64,
    frames_at_last_header: u64,
    header_interval: u64,
}

impl<W: Write + Seek> WavWriter<W> {
    /// Default header update interval: every 5 seconds of audio.
    pub const DEFAULT_HEADER_INTERVAL: u64 = 5 * SAMPLE_RATE as u64;

    /// Starts a WAV file at the sink's current position (which must be 0
    /// for the file to be valid) and writes a header stating no audio yet.
    pub fn new(sink: W) -> Result<Self, EncodeError> {
        Self::with_header_interval(sink, Self::DEFAULT_HEADER_INTERVAL)
    }

    /// As [`WavWriter::new`], updating the header every `frames` frames.
    pub fn with_header_interval(mut sink: W, frames: u64) -> Result<Self, EncodeError> {
        sink.write_all(&header(0))?;
        Ok(WavWriter {
            sink,
            buffer: Vec::new(),
            frames: 0,
            frames_at_last_header: 0,
            header_interval: frames.max(1),
        })
    }

    /// Stereo frames written so far.
    pub fn frames(&self) -> u64 {
        self.frames
    }

    fn data_len(&self) -> u64 {
        (self.frames * BYTES_PER_FRAME).min(MAX_DATA_LEN)
    }

    fn drain_buffer(&mut self) -> io::Result<()> {
        if !self.buffer.is_empty() {
            self.sink.write_all(&self.buffer)?;
            self.buffer.clear();
        }
        Ok(())
    }

    fn update_header(&mut self) -> io::Result<()> {
        self.drain_buffer()?;
        let end = self.sink.stream_position()?;
        self.sink.seek(SeekFrom::Start(0))?;
        self.sink.write_all(&header(self.data_len()))?;
        self.sink.seek(SeekFrom::Start(end))?;
        self.sink.flush()?;
        self.frames_at_last_header = self.frames;
        Ok(())
    }

    /// Writes out everything, brings the header up to date, and gives the sink back.
    pub fn into_inner(mut self) -> Result<(W, EncodeSummary), EncodeError> {
        self.update_header()?;
        let summary = EncodeSummary {
            frames: self.frames,
            bytes: HEADER_LEN + self.data_len(),
        };
        Ok((self.sink, summary))
    }
}

impl<W: Write + Seek + Send> RecordingEncoder for WavWriter<W> {
    fn write(&mut self, interleaved: &[i16]) -> Result<(), EncodeError> {
        check_interleaved(interleaved)?;
        // Written out before it would outgrow BUFFER_BYTES, so the buffer of
        // a live call stays at that (it is per call in the server).
        if self.buffer.len() + 2 * interleaved.len() > BUFFER_BYTES {
            self.drain_buffer()?;
        }
        if self.buffer.capacity() == 0 {
            self.buffer.reserve_exact(BUFFER_BYTES);
        }
        for sample in interleaved {
            self.buffer.extend_from_slice(&sample.to_le_bytes());
        }
        self.frames += (interleaved.len() / 2) as u64;
        if self.frames - self.frames_at_last_header >= self.header_interval {
            self.update_header()?;
        }
        Ok(())
    }

    fn checkpoint(&mut self) -> Result<(), EncodeError> {
        Ok(self.update_header()?)
    }

    fn finish(self: Box<Self>) -> Result<EncodeSummary, EncodeError> {
        let (_, summary) = self.into_inner()?;
        Ok(summary)
    }
}

/// The canonical 44-byte header for `data_len` bytes of 8 kHz stereo s16le.
pub fn header(data_len: u64) -> [u8; HEADER_LEN as usize] {
    let data_len = data_len.min(MAX_DATA_LEN) as u32;
    let byte_rate = SAMPLE_RATE * BYTES_PER_FRAME as u32;
    let mut h = [0u8; HEADER_LEN as usize];
    h[0..4].copy_from_slice(b"RIFF");
    h[4..8].copy_from_slice(&(data_len + 36).to_le_bytes());
    h[8..12].copy_from_slice(b"WAVE");
    h[12..16].copy_from_slice(b"fmt ");
    h[16..20].copy_from_slice(&16u32.to_le_bytes());
    h[20..22].copy_from_slice(&1u16.to_le_bytes()); // PCM
    h[22..24].copy_from_slice(&CHANNELS.to_le_bytes());
    h[24..28].copy_from_slice(&SAMPLE_RATE.to_le_bytes());
    h[28..32].copy_from_slice(&byte_rate.to_le_bytes());
    h[32..34].copy_from_slice(&(BYTES_PER_FRAME as u16).to_le_bytes()); // block align
    h[34..36].copy_from_slice(&16u16.to_le_bytes()); // bits per sample
    h[36..40].copy_from_slice(b"data");
    h[40..44].copy_from_slice(&data_len.to_le_bytes());
    h
}

/// What [`repair`] found and did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Repair {
    /// Whole stereo frames of audio in the repaired file.
    pub frames: u64,
    /// The length the file must be truncated to (a torn last frame is cut).
    pub file_len: u64,
    /// Whether the header did not match the file (the file was cut off).
    pub was_damaged: bool,
}

/// Why a file could not be repaired.
#[derive(Debug, thiserror::Error)]
pub enum RepairError {
    /// Reading or writing the file failed.
    #[error("cannot repair the wav file: {0}")]
    Io(#[from] io::Error),
    /// The file is not a WAV file as this writer makes them.
    #[error("not a callrec wav file ({0}): only files written by callrec can be repaired")]
    NotOurs(&'static str),
}

/// Repairs a WAV file written by [`WavWriter`] that a crash cut off: the
/// header's sizes are set from the file's length (`file_len`), rounded down
/// to a whole stereo frame. The caller truncates the file to
/// [`Repair::file_len`] (this function does not know how to shorten a file).
pub fn repair<F: Read + Write + Seek>(file: &mut F, file_len: u64) -> Result<Repair, RepairError> {
    if file_len < HEADER_LEN {
        return Err(RepairError::NotOurs("shorter than a wav header"));
    }
    let mut h = [0u8; HEADER_LEN as usize];
    file.seek(SeekFrom::Start(0))?;
    file.read_exact(&mut h)?;
    let expected = header(0);
    // Everything but the two size fields must be what we write.
    if h[0..4] != expected[0..4] || h[8..40] != expected[8..40] {
        return Err(RepairError::NotOurs(
            "header is not 8 kHz stereo s16le with data at byte 36",
        ));
    }
    let data_len = ((file_len - HEADER_LEN) / BYTES_PER_FRAME * BYTES_PER_FRAME).min(MAX_DATA_LEN);
    let fixed = header(data_len);
    let was_damaged = h != fixed || file_len != HEADER_LEN + data_len;
    if h != fixed {
        file.seek(SeekFrom::Start(0))?;
        file.write_all(&fixed)?;
        file.flush()?;
    }
    Ok(Repair {
        frames: data_len / BYTES_PER_FRAME,
        file_len: HEADER_LEN + data_len,
        was_damaged,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Cursor;

    fn read_u32(b: &[u8], at: usize) -> u32 {
        u32::from_le_bytes(b[at..at + 4].try_into().unwrap())
    }

    #[test]
    fn header_states_the_spec_format() {
        let h = header(32_000);
        assert_eq!(&h[0..4], b"RIFF");
        assert_eq!(read_u32(&h, 4), 32_036);
        assert_eq!(u16::from_le_bytes([h[22], h[23]]), 2, "channels");
        assert_eq!(read_u32(&h, 24), 8_000, "sample rate");
        assert_eq!(u16::from_le_bytes([h[34], h[35]]), 16, "bits");
        assert_eq!(read_u32(&h, 40), 32_000);
    }

    #[test]
    fn header_is_brought_up_to_date_while_writing() {
        let mut w = WavWriter::with_header_interval(Cursor::new(Vec::new()), 100).unwrap();
        w.write(&vec![7i16; 2 * 250]).unwrap();
        // 250 frames written with an interval of 100: the header states at least 100.
        let bytes = w.sink.get_ref().clone();
        let stated = read_u32(&bytes, 40) as u64;
        assert!(stated >= 100 * 4, "header states {stated} bytes");
        let (sink, summary) = w.into_inner().unwrap();
        assert_eq!(summary.frames, 250);
        assert_eq!(read_u32(sink.get_ref(), 40), 1000);
        assert_eq!(sink.get_ref().len(), 44 + 1000);
    }

    #[test]
    fn odd_input_is_refused() {
        let mut w = WavWriter::new(Cursor::new(Vec::new())).unwrap();
        assert!(matches!(
            w.write(&[1, 2, 3]),
            Err(EncodeError::OddSampleCount(3))
        ));
    }

    #[test]
    fn repair_sets_sizes_from_the_length_and_cuts_a_torn_frame() {
        let mut file = header(0).to_vec();
        file.extend(std::iter::repeat_n(1u8, 4 * 10 + 3));
        let len = file.len() as u64;
        let mut c = Cursor::new(file);
        let r = repair(&mut c, len).unwrap();
        assert_eq!(
            r,
            Repair {
                frames: 10,
                file_len: 84,
                was_damaged: true
            }
        );
        assert_eq!(read_u32(c.get_ref(), 40), 40);
        assert_eq!(read_u32(c.get_ref(), 4), 76);
    }

    #[test]
    fn repair_of_an_intact_file_changes_nothing() {
        let mut file = header(8).to_vec();
        file.extend([0u8; 8]);
        let mut c = Cursor::new(file.clone());
        let r = repair(&mut c, 52).unwrap();
        assert!(!r.was_damaged);
        assert_eq!(c.into_inner(), file);
    }

    #[test]
    fn repair_refuses_foreign_files() {
        let mut c = Cursor::new(b"ID3\x04not a wav file at all, just some bytes....".to_vec());
        let len = c.get_ref().len() as u64;
        assert!(matches!(repair(&mut c, len), Err(RepairError::NotOurs(_))));
        let mut short = Cursor::new(vec![0u8; 10]);
        assert!(matches!(
            repair(&mut short, 10),
            Err(RepairError::NotOurs(_))
        ));
    }
}
