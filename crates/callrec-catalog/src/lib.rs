//! The catalog of callrec: calls, recordings and their delivery status,
//! participants, pause spans, policy decisions, settings versions and the
//! audit trail.
//!
//! [`Catalog`] is the trait, with its semantics in its docs; [`SqlCatalog`]
//! implements it on SQLite (the embedded default) and PostgreSQL (several
//! nodes), chosen by the URL given to [`SqlCatalog::open`]. Migrations run
//! when it opens. The catalog never holds audio and never logs phone
//! numbers.
//!
//! Tests: `cargo nextest run -p callrec-catalog` runs the conformance suite
//! (`tests/conformance.rs`) on SQLite and on the PostgreSQL at
//! `CALLREC_TEST_POSTGRES_URL` (default
//! `postgres://postgres@127.0.0.1:5432/test`), each test in its own schema.
//! The PostgreSQL tests fail, rather than skip, when the server is down.
//!
//! Stability note for dependants (callrec-storage, callrec-api): the trait
//! and the types are published; changes are announced in the doc comment of
//! the item that changes, with a line starting `Changed:`.

mod catalog;
mod error;
mod group;
mod sql;
mod types;

pub use catalog::Catalog;
pub use error::CatalogError;
pub use group::GroupCommit;
pub use sql::{Backend, OpenOptions, SqlCatalog, redact_url};
pub use types::*;
