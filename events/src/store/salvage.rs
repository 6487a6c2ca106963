//! `replay salvage`: copy every readable event of a damaged log into a fresh one, the way out
//! for a log the service refuses (docs/storage.md, "a damaged event log").
//!
//! Where redb can still open the file and walk its events table, each record is checked (CRC
//! and payload) and kept or skipped by seq. Where it cannot (the file's structure is damaged),
//! the file's bytes are scanned for records instead: a record is self-describing and
//! CRC-framed (`record.rs`), so one found at any offset that passes its checksum and decodes is
//! an event. A raw scan loses the seqs (they are redb keys), so it orders records by their
//! commit time, then by their place in the file, and drops exact duplicates (old copies of pages
//! redb has not reused yet). Either way the fresh log numbers the kept events 1.. without gaps
//! and keeps each record's bytes (its commit time included) unchanged.

use std::collections::HashSet;
use std::path::Path;

use redb::{ReadableDatabase, ReadableTable};

use super::guard::guarded;
use super::{record, tables, LogError, LogReader};

/// What `salvage` did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SalvageReport {
    /// Events written to the fresh log.
    pub copied: u64,
    /// What was left out and why, one line each.
    pub skipped: Vec<String>,
    /// `true` when the file's bytes were scanned because redb could not read its table.
    pub raw_scan: bool,
}

/// Copy every readable event of the log at `from` into a new log at `to` (which must not exist).
pub fn salvage(from: &Path, to: &Path) -> Result<SalvageReport, LogError> {
    if to.exists() {
        return Err(LogError::Storage(format!(
            "{} already exists: salvage writes a fresh log only",
            to.display()
        )));
    }
    if !from.exists() {
        return Err(LogError::Missing {
            path: from.to_path_buf(),
            reason: "no such file".into(),
        });
    }
    let mut skipped = Vec::new();
    let (records, raw_scan) = match through_redb(from, &mut skipped) {
        Ok(r) => (r, false),
        Err(e) => {
            skipped.clear();
            skipped.push(format!(
                "redb could not read the events table ({e}); scanned the file's bytes instead"
            ));
            (raw_records(from)?, true)
        }
    };
    write_fresh(to, &records)?;
    Ok(SalvageReport {
        copied: records.len() as u64,
        skipped,
        raw_scan,
    })
}

/// The records of the events table in seq order, skipping (and naming) those that fail checks.
fn through_redb(from: &Path, skipped: &mut Vec<String>) -> Result<Vec<Vec<u8>>, LogError> {
    let reader = LogReader::open(from)?;
    guarded(from, "salvage records", || {
        let txn = reader.db.begin_read()?;
        let table = txn.open_table(tables::EVENTS)?;
        let mut out = Vec::new();
        for entry in table.iter()? {
            let (k, v) = entry?;
            let seq = k.value();
            match record::decode(seq, v.value()) {
                Ok(_) => out.push(v.value().to_vec()),
                Err(e) => skipped.push(format!("seq {seq}: {e}")),
            }
        }
        Ok(out)
    })
}

/// Every record found in the file's bytes, by commit time then offset, without duplicates.
fn raw_records(from: &Path) -> Result<Vec<Vec<u8>>, LogError> {
    let bytes = std::fs::read(from).map_err(|e| LogError::Storage(e.to_string()))?;
    let mut found: Vec<(i64, usize, Vec<u8>)> = Vec::new();
    let mut seen = HashSet::new();
    let mut at = 0;
    while at < bytes.len() {
        match record::record_at(&bytes[at..]) {
            Some(len) => {
                let rec = &bytes[at..at + len];
                if record::decode(0, rec).is_ok() && seen.insert(rec.to_vec()) {
                    let raw = record::parse(0, rec).map(|r| r.ts_ms).unwrap_or(0);
                    found.push((raw, at, rec.to_vec()));
                }
                at += len;
            }
            None => at += 1,
        }
    }
    found.sort_by_key(|(ts, offset, _)| (*ts, *offset));
    Ok(found.into_iter().map(|(_, _, r)| r).collect())
}

fn write_fresh(to: &Path, records: &[Vec<u8>]) -> Result<(), LogError> {
    let db = super::create(to)?;
    guarded(to, "write the salvaged log", || {
        let txn = db.begin_write()?;
        {
            let mut events = txn.open_table(tables::EVENTS)?;
            let mut index = txn.open_table(tables::BY_STREAM)?;
            for (i, rec) in records.iter().enumerate() {
                let seq = i as u64 + 1;
                let stream = record::stream_bytes(rec).ok_or_else(|| LogError::Corrupt {
                    seq,
                    reason: "record shorter than its header".into(),
                })?;
                events.insert(seq, rec.as_slice())?;
                index.insert((stream, seq), ())?;
            }
        }
        txn.commit()?;
        Ok(())
    })
    .map_err(|e| e.at(to, "write the salvaged log"))
}
