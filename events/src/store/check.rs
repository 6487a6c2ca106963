//! Checking a log before anything writes to it: what `serve` runs before it opens the file for
//! writing, and what `replay verify` runs first, so the two agree (docs/storage.md, "a damaged
//! event log").
//!
//! The check is a trial of the real open: redb's own read-write open (the recovery a crash
//! needs, the allocator state, the header it writes) runs over an `Overlay` that reads the file
//! and keeps every write in memory, so what the real open would refuse, the check refuses, and
//! the file is not changed. Then it checks the format marker, decodes every record (CRC and
//! payload), reads the whole stream index and checks it holds one entry per event. Every redb
//! call runs `guarded`, so damage that makes redb panic is reported, not raised. A log that fails
//! is refused with `LogError::Damaged` (or `NotALog`, `InUse`) before a byte of it is written.

use std::path::Path;

use redb::{ReadableDatabase, ReadableTable, ReadableTableMetadata};

use super::guard::guarded;
use super::overlay::Overlay;
use super::{builder, open_error, record, tables, LogError};

/// What a passed check saw.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LogCheck {
    /// Records in the log (all decoded).
    pub events: u64,
    /// The highest seq (0 when empty).
    pub last_seq: u64,
}

/// Check the log at `path` without writing to it.
pub fn check(path: &Path) -> Result<LogCheck, LogError> {
    let len = match std::fs::metadata(path) {
        Ok(m) => m.len(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(LogError::Missing {
                path: path.to_path_buf(),
                reason: e.to_string(),
            })
        }
        Err(e) => return Err(LogError::from(redb::StorageError::Io(e)).at(path, "check")),
    };
    if len == 0 {
        // The trial could initialise an empty file; the real open refuses it.
        return Err(LogError::NotALog {
            path: path.to_path_buf(),
            reason: "the file is empty".into(),
        });
    }
    let overlay = Overlay::new(path)
        .map_err(|e| LogError::from(redb::StorageError::Io(e)).at(path, "check"))?;
    guarded(path, "check (trial open)", || {
        let db = builder()
            .create_with_backend(overlay)
            .map_err(|e| open_error(path, e))?;
        tables::check_marker(&db, path)?;
        let checked = check_records(&db)?;
        drop(db);
        Ok(checked)
    })
    .map_err(|e| as_damage(e, path, "check"))
}

/// Every record decodes, and the stream index holds one entry per record.
pub fn check_records(db: &impl ReadableDatabase) -> Result<LogCheck, LogError> {
    let txn = db.begin_read()?;
    let events = txn.open_table(tables::EVENTS)?;
    let mut count = 0u64;
    let mut last = 0u64;
    for entry in events.iter()? {
        let (k, v) = entry?;
        let seq = k.value();
        record::decode(seq, v.value())?;
        count += 1;
        last = seq;
    }
    let stated = events.len()?;
    if stated != count {
        return Err(damaged(format!(
            "the events table says {stated} records but holds {count}"
        )));
    }
    if tables::last_seq(db)? != last {
        return Err(damaged("the events table's last seq is not its end".into()));
    }
    let index = txn.open_table(tables::BY_STREAM)?;
    let mut indexed = 0u64;
    for entry in index.iter()? {
        let (k, _) = entry?;
        let _ = k.value();
        indexed += 1;
    }
    if indexed != count {
        return Err(damaged(format!(
            "the stream index holds {indexed} entries for {count} events"
        )));
    }
    Ok(LogCheck {
        events: count,
        last_seq: last,
    })
}

fn damaged(reason: String) -> LogError {
    LogError::Damaged {
        path: Default::default(),
        operation: String::new(),
        reason,
    }
}

/// An error met while opening or reading a file: anything but a missing file, one in use, one
/// that is not a log, a full disk or a closed handle means the file is damaged (a table of the
/// wrong type, a missing table, a bad record, an I/O error in its structure).
pub fn as_damage(e: LogError, path: &Path, operation: &str) -> LogError {
    match e {
        LogError::StorageFull { .. }
        | LogError::Closed
        | LogError::Missing { .. }
        | LogError::InUse { .. }
        | LogError::NotALog { .. }
        | LogError::Damaged { .. }
        | LogError::Corrupt { .. } => e.at(path, operation),
        other => LogError::Damaged {
            path: path.to_path_buf(),
            operation: operation.into(),
            reason: other.to_string(),
        },
    }
}
