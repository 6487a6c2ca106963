//! tunewright-events: the event log, the system's source of truth.
//!
//! - `event`: the versioned event types and their stable binary codec (type id + schema
//!   version as fixed numbers; old versions upcast on read).
//! - `store`: the redb-backed log: group-committed appends from one writer thread, reads by
//!   range and stream, live subscription.
//! - `timestamp`: how times are shown (RFC 3339 UTC) and read back.
//! - `projection`: pure folds of events into the state of projects and jobs; the same code
//!   serves start-up recovery, the live service and the replay tool.
//!
//! No actors, no torch.

pub mod event;
pub mod projection;
pub mod store;
pub mod timestamp;

pub use event::{Event, StoredEvent, StreamId};
pub use projection::State;
pub use store::{check, EventLog, LogError, LogOptions, LogReader};
