//! SIPREC without I/O (to be written).
