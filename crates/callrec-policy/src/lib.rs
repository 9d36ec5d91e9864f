//! The recording policy (to be written).
