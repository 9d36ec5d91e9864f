//! The recording policy of callrec: the versioned settings document and the
//! decision engine that says, for each call, whether it is recorded, what the
//! caller hears, what a consent answer means and what happens when parties
//! join and leave.
//!
//! This crate does no I/O: no tokio, no clock, no files, no database. Time
//! is an input (the time of a settings change), and storage is the
//! [`SettingsStore`] trait, implemented in memory here and on the catalog
//! database elsewhere.
//!
//! - [`domain`]: parsed values (phone numbers, languages, queue ids...).
//! - [`settings`]: the settings document, its defaults and its validation.
//! - [`store`]: the versioned, audited settings store.
//! - [`decision`]: the decision engine ([`CallPolicy`]).

pub mod decision;
pub mod domain;
pub mod settings;
pub mod store;

pub use decision::{
    AddedPartyKind, CallDecision, CallOrigin, CallPolicy, Channel, ConsentAnswer, ConsentDecision,
    ConsentOutcome, InboundEntry, NewCall, OutboundKind, OutboundType, ParticipantDecision,
    ParticipantEvent, Prompt, RecordingAction, RecordingState, StartRecording,
};
pub use domain::{Actor, DtmfDigit, Language, ParseError, PhoneNumber, QueueId};
pub use settings::{
    CallDetails, CallRecording, FieldProblem, FirstMessage, LanguageMessages, Languages, Message,
    MessageKind, Outbound, OutboundTypeSettings, PauseMode, Queue, QueueRecordingMode,
    RecordingFormat, Settings, ValidSettings, ValidationErrors,
};
pub use store::{
    HistoryEntry, InMemorySettingsStore, SettingsStore, SettingsVersion, StoreError,
    VersionedSettings,
};
