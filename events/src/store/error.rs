//! Errors of the event store.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum LogError {
    #[error("no event log at {path}: {reason}")]
    Missing { path: PathBuf, reason: String },
    #[error("{path} is not a tunewright event log: {reason}")]
    NotALog { path: PathBuf, reason: String },
    #[error("{path} is already open by another process (is a tunewright service running on this data dir?)")]
    InUse { path: PathBuf },
    #[error("the event log is damaged at seq {seq}: {reason}")]
    Corrupt { seq: u64, reason: String },
    #[error("the event log is closed")]
    Closed,
    #[error("an event could not be encoded: {0}")]
    Encode(#[from] crate::event::EventCodecError),
    #[error("event log storage error: {0}")]
    Storage(String),
}

impl LogError {
    pub(crate) fn storage(e: impl std::fmt::Display) -> Self {
        LogError::Storage(e.to_string())
    }
}

impl From<redb::StorageError> for LogError {
    fn from(e: redb::StorageError) -> Self {
        LogError::storage(e)
    }
}
impl From<redb::TransactionError> for LogError {
    fn from(e: redb::TransactionError) -> Self {
        LogError::storage(e)
    }
}
impl From<redb::TableError> for LogError {
    fn from(e: redb::TableError) -> Self {
        LogError::storage(e)
    }
}
impl From<redb::CommitError> for LogError {
    fn from(e: redb::CommitError) -> Self {
        LogError::storage(e)
    }
}
