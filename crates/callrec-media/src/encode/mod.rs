//! Streaming encoders for the recording file (to be written).
