//! Turning an uploaded announcement (any common format) into what callrec
//! plays: 8 kHz mono 16-bit WAV.
//!
//! Decoding is symphonia's (WAV, MP3, FLAC, Ogg Vorbis); resampling
//! and the downmix to mono are the media core's
//! [`Resampler`](callrec_media::codec::resample::Resampler). This is CPU
//! work: call it off the async runtime (`spawn_blocking`). It never touches
//! files: bytes in, bytes out.

use std::io::Cursor;

use callrec_media::codec::resample::Resampler;
use symphonia::core::codecs::audio::AudioDecoderOptions;
use symphonia::core::errors::Error as SymphoniaError;
use symphonia::core::formats::probe::Hint;
use symphonia::core::formats::{FormatOptions, TrackType};
use symphonia::core::io::MediaSourceStream;
use symphonia::core::meta::MetadataOptions;
use thiserror::Error;

/// The rate of announcement audio, in Hz.
pub const ANNOUNCEMENT_RATE: u32 = 8_000;

/// The longest announcement accepted, in seconds. Callers wait through it
/// before reaching an agent; ten minutes is surely a wrong file.
pub const MAX_SECONDS: u64 = 600;

/// The upload is not audio callrec can use.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("the upload is not audio callrec can read ({0}): send a wav, mp3, flac or ogg vorbis file")]
pub struct NotAudio(pub String);

/// An announcement converted to 8 kHz mono.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConvertedAudio {
    /// RIFF WAV, PCM s16le, 1 channel, 8,000 Hz.
    pub wav: Vec<u8>,
    /// Samples at 8 kHz (the duration is `samples / 8000` seconds).
    pub samples: usize,
    /// The uploaded file's rate, in Hz.
    pub source_rate: u32,
    /// The uploaded file's channel count.
    pub source_channels: u16,
}

impl ConvertedAudio {
    /// The duration, in milliseconds.
    pub fn duration_ms(&self) -> u64 {
        self.samples as u64 * 1000 / u64::from(ANNOUNCEMENT_RATE)
    }
}

/// Decodes `bytes` (any supported format) and converts them to 8 kHz mono WAV.
pub fn convert_announcement(bytes: Vec<u8>) -> Result<ConvertedAudio, NotAudio> {
    if bytes.is_empty() {
        return Err(NotAudio("the body is empty".to_owned()));
    }
    let stream = MediaSourceStream::new(Box::new(Cursor::new(bytes)), Default::default());
    let mut format = symphonia::default::get_probe()
        .probe(
            &Hint::new(),
            stream,
            FormatOptions::default(),
            MetadataOptions::default(),
        )
        .map_err(|e| NotAudio(format!("no known audio format: {e}")))?;
    let track = format
        .default_track(TrackType::Audio)
        .ok_or_else(|| NotAudio("the file has no audio track".to_owned()))?;
    let track_id = track.id;
    let params = track
        .codec_params
        .as_ref()
        .and_then(|p| p.audio())
        .ok_or_else(|| NotAudio("the audio track has no codec parameters".to_owned()))?;
    let mut decoder = symphonia::default::get_codecs()
        .make_audio_decoder(params, &AudioDecoderOptions::default())
        .map_err(|e| NotAudio(format!("unsupported codec: {e}")))?;

    let mut resampler: Option<(Resampler, u32, u16)> = None;
    let mut interleaved: Vec<i16> = Vec::new();
    let mut out: Vec<i16> = Vec::new();
    let max_samples = (MAX_SECONDS * u64::from(ANNOUNCEMENT_RATE)) as usize;
    loop {
        let packet = match format.next_packet() {
            Ok(Some(packet)) => packet,
            Ok(None) => break,
            Err(SymphoniaError::IoError(e)) if e.kind() == std::io::ErrorKind::UnexpectedEof => {
                break;
            }
            Err(e) => return Err(NotAudio(format!("the file is damaged: {e}"))),
        };
        if packet.track_id != track_id {
            continue;
        }
        let buffer = match decoder.decode(&packet) {
            Ok(buffer) => buffer,
            // One bad packet in a long file is skipped, as players do.
            Err(SymphoniaError::DecodeError(_)) => continue,
            Err(e) => return Err(NotAudio(format!("the audio cannot be decoded: {e}"))),
        };
        if buffer.frames() == 0 {
            continue;
        }
        let rate = buffer.spec().rate();
        let channels = u16::try_from(buffer.spec().channels().count())
            .map_err(|_| NotAudio("too many channels".to_owned()))?;
        let (resampler, ..) = match &mut resampler {
            Some(r) => r,
            None => {
                let r = Resampler::new(rate, channels)
                    .map_err(|e| NotAudio(format!("unusable audio format: {e}")))?;
                resampler.insert((r, rate, channels))
            }
        };
        interleaved.clear();
        interleaved.resize(buffer.samples_interleaved(), 0);
        buffer.copy_to_slice_interleaved::<i16, _>(&mut interleaved[..]);
        resampler.push(&interleaved, &mut out);
        if out.len() > max_samples {
            return Err(NotAudio(format!(
                "it is longer than {MAX_SECONDS} seconds; trim the announcement"
            )));
        }
    }
    let Some((mut resampler, source_rate, source_channels)) = resampler else {
        return Err(NotAudio("no audio samples were found".to_owned()));
    };
    resampler.finish(&mut out);
    Ok(ConvertedAudio {
        wav: wav_mono_8k(&out),
        samples: out.len(),
        source_rate,
        source_channels,
    })
}

/// 8 kHz mono 16-bit samples as a WAV file.
fn wav_mono_8k(samples: &[i16]) -> Vec<u8> {
    let spec = hound::WavSpec {
        channels: 1,
        sample_rate: ANNOUNCEMENT_RATE,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let mut cursor = Cursor::new(Vec::with_capacity(44 + samples.len() * 2));
    {
        let mut writer =
            hound::WavWriter::new(&mut cursor, spec).expect("writing to memory cannot fail");
        let mut i16_writer = writer.get_i16_writer(samples.len() as u32);
        for &s in samples {
            i16_writer.write_sample(s);
        }
        i16_writer.flush().expect("writing to memory cannot fail");
        writer.finalize().expect("writing to memory cannot fail");
    }
    cursor.into_inner()
}
