//! Decoders to 8 kHz mono PCM (to be written).
