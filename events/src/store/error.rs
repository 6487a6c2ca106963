//! Errors of the event store.
//!
//! Damage to the file (redb's own corruption reports, its panics, a record whose checksum fails)
//! is `Damaged`, naming the file, the operation and the next step; a full disk is `StorageFull`
//! with the free space (docs/storage.md, "faults").

use std::path::{Path, PathBuf};

/// What an operator does about a damaged log (docs/storage.md).
pub const DAMAGED_NEXT_STEP: &str = "run `tunewright replay verify --data-dir DIR` to see the damage, then `tunewright replay salvage --data-dir DIR --to NEW_DIR` to copy every readable event into a fresh log";

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
    #[error("the event log {} is damaged ({operation}: {reason}); {}", path.display(), next_step(path))]
    Damaged {
        path: PathBuf,
        operation: String,
        reason: String,
    },
    #[error("the disk holding {} is full ({operation}: {reason}; {} free)", path.display(), free_text(*free_bytes))]
    StorageFull {
        path: PathBuf,
        operation: String,
        free_bytes: Option<u64>,
        reason: String,
    },
    #[error("the event log is closed")]
    Closed,
    #[error("an event could not be encoded: {0}")]
    Encode(#[from] crate::event::EventCodecError),
    #[error("event log storage error: {0}")]
    Storage(String),
}

fn free_text(free: Option<u64>) -> String {
    match free {
        Some(b) => format!("{b} bytes"),
        None => "unknown bytes".into(),
    }
}

/// The next step with the data directory filled in.
fn next_step(path: &Path) -> String {
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .map(|p| p.display().to_string())
        .unwrap_or_else(|| ".".into());
    DAMAGED_NEXT_STEP.replacen("DIR", &dir, 2)
}

impl LogError {
    pub(crate) fn storage(e: impl std::fmt::Display) -> Self {
        LogError::Storage(e.to_string())
    }

    /// This error as met during `operation` on the log at `path`: damage and a full disk name
    /// the place; a bad record becomes damage of the file.
    pub fn at(self, path: &Path, operation: &str) -> LogError {
        match self {
            LogError::Damaged {
                path: p,
                operation: o,
                reason,
            } => LogError::Damaged {
                path: if p.as_os_str().is_empty() {
                    path.to_path_buf()
                } else {
                    p
                },
                operation: if o.is_empty() { operation.into() } else { o },
                reason,
            },
            LogError::Corrupt { seq, reason } => LogError::Damaged {
                path: path.to_path_buf(),
                operation: operation.into(),
                reason: format!("record seq {seq}: {reason}"),
            },
            LogError::StorageFull {
                free_bytes, reason, ..
            } => LogError::StorageFull {
                path: path.to_path_buf(),
                operation: operation.into(),
                free_bytes: free_bytes.or_else(|| super::space::free_bytes(path)),
                reason,
            },
            other => other,
        }
    }

    /// Whether this error says the file is damaged (as opposed to missing, busy or full).
    pub fn is_damage(&self) -> bool {
        matches!(self, LogError::Damaged { .. } | LogError::Corrupt { .. })
    }
}

/// redb's errors by kind: corruption is damage, `ENOSPC`/`EDQUOT` a full disk, the rest storage.
fn from_storage(e: redb::StorageError) -> LogError {
    match e {
        redb::StorageError::Corrupted(reason) => LogError::Damaged {
            path: PathBuf::new(),
            operation: String::new(),
            reason,
        },
        redb::StorageError::Io(io) if super::space::is_full(&io) => LogError::StorageFull {
            path: PathBuf::new(),
            operation: String::new(),
            free_bytes: None,
            reason: io.to_string(),
        },
        other => LogError::storage(other),
    }
}

impl From<redb::StorageError> for LogError {
    fn from(e: redb::StorageError) -> Self {
        from_storage(e)
    }
}
impl From<redb::TransactionError> for LogError {
    fn from(e: redb::TransactionError) -> Self {
        match e {
            redb::TransactionError::Storage(s) => from_storage(s),
            other => LogError::storage(other),
        }
    }
}
impl From<redb::TableError> for LogError {
    fn from(e: redb::TableError) -> Self {
        match e {
            redb::TableError::Storage(s) => from_storage(s),
            other => LogError::storage(other),
        }
    }
}
impl From<redb::CommitError> for LogError {
    fn from(e: redb::CommitError) -> Self {
        match e {
            redb::CommitError::Storage(s) => from_storage(s),
            other => LogError::storage(other),
        }
    }
}
