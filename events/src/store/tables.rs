//! The redb tables of the log and the marker that says a file is a tunewright log.

use redb::{ReadableDatabase, ReadableTable, TableDefinition};

use super::record;
use super::LogError;
use crate::event::{StoredEvent, StreamId};

/// seq -> record.
pub const EVENTS: TableDefinition<u64, &[u8]> = TableDefinition::new("events");
/// (stream key, seq) -> (): the events of one stream in order.
pub const BY_STREAM: TableDefinition<(&[u8], u64), ()> = TableDefinition::new("events_by_stream");
/// Format marker and other facts about the log.
pub const META: TableDefinition<&str, &str> = TableDefinition::new("meta");

pub const FORMAT_KEY: &str = "format";
pub const FORMAT_VALUE: &str = "tunewright-events/1";

/// Reads shared by the live log and the read-only replay handle.
pub fn read_after(
    db: &impl ReadableDatabase,
    after: u64,
    limit: usize,
) -> Result<Vec<StoredEvent>, LogError> {
    let txn = db.begin_read()?;
    let table = match txn.open_table(EVENTS) {
        Ok(t) => t,
        Err(redb::TableError::TableDoesNotExist(_)) => return Ok(Vec::new()),
        Err(e) => return Err(e.into()),
    };
    let mut out = Vec::with_capacity(limit.min(65_536));
    for entry in table.range(after.saturating_add(1)..)? {
        if out.len() >= limit {
            break;
        }
        let (k, v) = entry?;
        out.push(record::decode(k.value(), v.value())?);
    }
    Ok(out)
}

pub fn read_stream(
    db: &impl ReadableDatabase,
    stream: StreamId,
    after: u64,
    limit: usize,
) -> Result<Vec<StoredEvent>, LogError> {
    let txn = db.begin_read()?;
    let (index, events) = match (txn.open_table(BY_STREAM), txn.open_table(EVENTS)) {
        (Ok(i), Ok(e)) => (i, e),
        (Err(redb::TableError::TableDoesNotExist(_)), _)
        | (_, Err(redb::TableError::TableDoesNotExist(_))) => return Ok(Vec::new()),
        (Err(e), _) | (_, Err(e)) => return Err(e.into()),
    };
    let key = record::stream_key(&stream);
    let mut out = Vec::new();
    for entry in
        index.range((key.as_slice(), after.saturating_add(1))..=(key.as_slice(), u64::MAX))?
    {
        if out.len() >= limit {
            break;
        }
        let (k, _) = entry?;
        let seq = k.value().1;
        let bytes = events.get(seq)?.ok_or_else(|| LogError::Corrupt {
            seq,
            reason: "indexed event is missing".to_string(),
        })?;
        out.push(record::decode(seq, bytes.value())?);
    }
    Ok(out)
}

/// The highest seq in the log (0 when empty).
pub fn last_seq(db: &impl ReadableDatabase) -> Result<u64, LogError> {
    let txn = db.begin_read()?;
    match txn.open_table(EVENTS) {
        Ok(t) => Ok(t.last()?.map(|(k, _)| k.value()).unwrap_or(0)),
        Err(redb::TableError::TableDoesNotExist(_)) => Ok(0),
        Err(e) => Err(e.into()),
    }
}

/// Check the format marker; a redb file without it is not ours.
pub fn check_marker(db: &impl ReadableDatabase, path: &std::path::Path) -> Result<(), LogError> {
    let txn = db.begin_read()?;
    let not_ours = |reason: String| LogError::NotALog {
        path: path.to_path_buf(),
        reason,
    };
    let meta = match txn.open_table(META) {
        Ok(t) => t,
        Err(redb::TableError::TableDoesNotExist(_)) => {
            return Err(not_ours("no format marker".to_string()))
        }
        Err(e) => return Err(e.into()),
    };
    match meta.get(FORMAT_KEY)? {
        Some(v) if v.value() == FORMAT_VALUE => Ok(()),
        Some(v) => Err(not_ours(format!(
            "format '{}' is not '{FORMAT_VALUE}'",
            v.value()
        ))),
        None => Err(not_ours("no format marker".to_string())),
    }
}
