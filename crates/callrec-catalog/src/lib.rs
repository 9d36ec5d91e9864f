//! The catalog (to be written).
