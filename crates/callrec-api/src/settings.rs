//! Settings and policy endpoints (to be written).
