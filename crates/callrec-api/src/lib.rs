//! The HTTP API of callrec: axum routers that the server mounts and tests
//! drive directly. Domain types are converted to and from JSON here and
//! nowhere else.

pub mod settings;
