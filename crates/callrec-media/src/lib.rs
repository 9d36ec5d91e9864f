//! The media core of callrec.
//!
//! Everything between an RTP packet and the bytes of a recording file: RTP
//! parsing, per-source sequencing, decoding to 8 kHz, placing every source on
//! one sample timeline, and encoding the two-channel result as WAV or MP3.
//!
//! This crate never does I/O of its own and never reads a clock: packets,
//! arrival times and output sinks are inputs. That is what lets the tests run
//! an hour of drifting, lossy call in a second.

pub mod codec;
pub mod encode;
pub mod role;
pub mod rtp;
pub mod sequencer;
pub mod timeline;

pub use role::Role;

/// The sample rate of every recording callrec writes, in Hz.
pub const SAMPLE_RATE: u32 = 8_000;
/// Channels of every recording: 1 is the end user (left), 2 the agent side (right).
pub const CHANNELS: u16 = 2;
