//! The MP3 writer: LAME 3.100, MPEG-2.5 Layer III at 8 kHz, CBR 32 kbps,
//! plain L/R stereo (never joint stereo: the channels must not bleed), with
//! the LAME Info tag so that decoders return exactly the recorded length.
//!
//! How the exact length works: with the tag switched on LAME starts the
//! stream with a placeholder frame; at the end we flush with `FlushGap`
//! (`FlushNoGap` would drop the last partial frame), ask LAME for the tag
//! frame (which states the encoder delay and padding) and overwrite the
//! placeholder with it. ffmpeg and symphonia then trim the delay and the
//! padding. That is why the sink must be seekable.

use std::io::{Seek, SeekFrom, Write};
use std::num::NonZeroU32;

use mp3lame_encoder::{
    Bitrate, Builder, Encoder, FlushGap, InterleavedPcm, Mode, Quality, VbrMode,
};

use super::{EncodeError, EncodeSummary, RecordingEncoder, check_interleaved};
use crate::{CHANNELS, SAMPLE_RATE};

/// Frames (sample pairs) handed to LAME per call: bounds the output buffer.
const CHUNK_FRAMES: usize = 4_608;

/// LAME's speed/quality trade-off (0 best and slowest, 9 worst and fastest).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Mp3Settings {
    /// LAME's `-q`. Default 7 (LAME's "fast" level: psychoacoustic model on,
    /// noise shaping off). For 8 kHz speech at 32 kbps stereo it measured
    /// *better* than 5, 3 and 2 (ITU-T P.862 PESQ narrowband and SNR, three
    /// voices, `bench/mp3_quality.sh`) and it is 1.4 times as fast as 5
    /// (BENCHMARKS.md). 8 and 9 encode the same as 7 in LAME 3.100.
    pub quality: u8,
}

impl Mp3Settings {
    /// The default settings, usable in constants.
    pub const DEFAULT: Mp3Settings = Mp3Settings { quality: 7 };
}

impl Default for Mp3Settings {
    fn default() -> Self {
        Mp3Settings::DEFAULT
    }
}

fn lame_quality(q: u8) -> Quality {
    match q {
        0 => Quality::Best,
        1 => Quality::SecondBest,
        2 => Quality::NearBest,
        3 => Quality::VeryNice,
        4 => Quality::Nice,
        5 => Quality::Good,
        6 => Quality::Decent,
        7 => Quality::Ok,
        8 => Quality::SecondWorst,
        _ => Quality::Worst,
    }
}

fn lame_error(what: &str, e: impl std::fmt::Debug) -> EncodeError {
    EncodeError::Lame(format!("{what}: {e:?}"))
}

/// Streaming MP3 writer. See the module doc.
pub struct Mp3Writer<W: Write + Seek> {
    lame: Encoder,
    sink: W,
    out: Vec<u8>,
    /// Where the first (placeholder) frame starts in the sink.
    first_frame_at: u64,
    frames: u64,
    bytes: u64,
}

impl<W: Write + Seek> Mp3Writer<W> {
    /// Starts an MP3 stream at the sink's current position.
    pub fn new(mut sink: W, settings: Mp3Settings) -> Result<Self, EncodeError> {
        let mut b = Builder::new()
            .ok_or_else(|| EncodeError::Lame("cannot allocate the lame encoder".into()))?;
        b.set_num_channels(CHANNELS as u8)
            .map_err(|e| lame_error("channels", e))?;
        b.set_sample_rate(SAMPLE_RATE)
            .map_err(|e| lame_error("sample rate", e))?;
        b.set_output_sample_rate(NonZeroU32::new(SAMPLE_RATE))
            .map_err(|e| lame_error("output sample rate", e))?;
        b.set_vbr_mode(VbrMode::Off)
            .map_err(|e| lame_error("cbr", e))?;
        b.set_brate(Bitrate::Kbps32)
            .map_err(|e| lame_error("bitrate", e))?;
        b.set_mode(Mode::Stereo)
            .map_err(|e| lame_error("stereo mode", e))?;
        b.set_quality(lame_quality(settings.quality))
            .map_err(|e| lame_error("quality", e))?;
        b.set_to_write_vbr_tag(true)
            .map_err(|e| lame_error("info tag", e))?;
        let lame = b.build().map_err(|e| lame_error("init", e))?;
        let first_frame_at = sink.stream_position()?;
        Ok(Mp3Writer {
            lame,
            sink,
            out: Vec::with_capacity(mp3lame_encoder::max_required_buffer_size(CHUNK_FRAMES)),
            first_frame_at,
            frames: 0,
            bytes: 0,
        })
    }

    fn drain(&mut self) -> Result<(), EncodeError> {
        if !self.out.is_empty() {
            self.sink.write_all(&self.out)?;
            self.bytes += self.out.len() as u64;
            self.out.clear();
        }
        Ok(())
    }

    /// Flushes LAME, writes the Info tag over the placeholder frame and
    /// gives the sink back (positioned at the end of the stream).
    pub fn into_inner(mut self) -> Result<(W, EncodeSummary), EncodeError> {
        self.out.reserve(7_200);
        self.lame
            .flush_to_vec::<FlushGap>(&mut self.out)
            .map_err(|e| lame_error("flush", e))?;
        self.drain()?;
        let mut tag = Vec::with_capacity(self.lame.lame_tag_size().max(1));
        if self.lame.lame_tag_encode_to_vec(&mut tag).is_some() && self.bytes >= tag.len() as u64 {
            let end = self.sink.stream_position()?;
            self.sink.seek(SeekFrom::Start(self.first_frame_at))?;
            self.sink.write_all(&tag)?;
            self.sink.seek(SeekFrom::Start(end))?;
        }
        self.sink.flush()?;
        let summary = EncodeSummary {
            frames: self.frames,
            bytes: self.bytes,
        };
        Ok((self.sink, summary))
    }
}

impl<W: Write + Seek + Send> RecordingEncoder for Mp3Writer<W> {
    fn write(&mut self, interleaved: &[i16]) -> Result<(), EncodeError> {
        check_interleaved(interleaved)?;
        for chunk in interleaved.chunks(CHUNK_FRAMES * 2) {
            self.out
                .reserve(mp3lame_encoder::max_required_buffer_size(chunk.len() / 2));
            self.lame
                .encode_to_vec(InterleavedPcm(chunk), &mut self.out)
                .map_err(|e| lame_error("encode", e))?;
            self.frames += (chunk.len() / 2) as u64;
            // Straight to the sink (which buffers, if it should): keeping
            // frames here too cost a live call ~35 KiB more.
            self.drain()?;
        }
        Ok(())
    }

    fn checkpoint(&mut self) -> Result<(), EncodeError> {
        self.drain()?;
        self.sink.flush()?;
        Ok(())
    }

    fn finish(self: Box<Self>) -> Result<EncodeSummary, EncodeError> {
        let (_, summary) = self.into_inner()?;
        Ok(summary)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Cursor;

    fn encode(frames: usize) -> Vec<u8> {
        let mut w = Mp3Writer::new(Cursor::new(Vec::new()), Mp3Settings::default()).unwrap();
        let pcm: Vec<i16> = (0..frames * 2)
            .map(|i| ((i as f32 * 0.05).sin() * 8000.0) as i16)
            .collect();
        w.write(&pcm).unwrap();
        w.into_inner().unwrap().0.into_inner()
    }

    #[test]
    fn frame_header_is_mpeg25_layer3_32k_8khz_plain_stereo() {
        let bytes = encode(8_000);
        // Frame sync, MPEG 2.5 (version bits 00), layer III (01), no CRC.
        assert_eq!(bytes[0], 0xFF);
        assert_eq!(bytes[1], 0xE3, "MPEG-2.5 layer III without CRC");
        // Bitrate index 4 (32 kbps for MPEG-2.5 L3), sample rate index 2 (8000 Hz).
        assert_eq!(bytes[2] >> 4, 4, "32 kbps");
        assert_eq!((bytes[2] >> 2) & 0b11, 2, "8000 Hz");
        // Channel mode 00 = stereo (01 would be joint stereo).
        // The second frame is real audio (the first carries the Info tag).
        let second = &bytes[288..];
        assert_eq!(&second[..2], &[0xFF, 0xE3]);
        assert_eq!(second[3] >> 6, 0, "plain stereo, not joint stereo");
    }

    #[test]
    fn the_info_tag_replaces_the_first_frame() {
        let bytes = encode(8_000);
        let tag_at = bytes
            .windows(4)
            .take(288)
            .position(|w| w == b"Info" || w == b"Xing");
        assert!(tag_at.is_some(), "the first frame carries an Info tag");
        // All frames are 288 bytes at 32 kbps / 8 kHz (no padding slots at this rate).
        assert_eq!(bytes.len() % 288, 0);
    }
}
