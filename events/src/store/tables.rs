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
    let mut seqs = Vec::new();
    for entry in
        index.range((key.as_slice(), after.saturating_add(1))..=(key.as_slice(), u64::MAX))?
    {
        if seqs.len() >= limit {
            break;
        }
        seqs.push(entry?.0.value().1);
    }
    let mut out = Vec::with_capacity(seqs.len());
    for run in runs(&seqs) {
        let mut wanted = run.iter().copied().peekable();
        for entry in events.range(run[0]..=run[run.len() - 1])? {
            let (k, v) = entry?;
            let seq = k.value();
            match wanted.peek() {
                Some(&w) if w == seq => {
                    wanted.next();
                    out.push(record::decode(seq, v.value())?);
                }
                Some(&w) if w < seq => break,
                _ => {}
            }
        }
        if let Some(seq) = wanted.next() {
            return Err(LogError::Corrupt {
                seq,
                reason: "indexed event is missing".to_string(),
            });
        }
    }
    Ok(out)
}

/// Events of other streams a scan steps over rather than seeking past (a lookup costs about as
/// much as stepping over this many records).
const MAX_GAP: u64 = 16;

/// `seqs` (ascending) cut where consecutive seqs are more than `MAX_GAP` apart: each run is
/// read with one range scan of the events table instead of one lookup per event, which is
/// what makes reading a long stream (a training's progress) cost about what a scan of the log
/// does.
fn runs(seqs: &[u64]) -> impl Iterator<Item = &[u64]> {
    seqs.chunk_by(|a, b| b - a <= MAX_GAP)
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
