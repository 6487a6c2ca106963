//! The ledger: the event log plus the live state folded from it.
//!
//! Every command goes: validate against `read(..)` -> `commit(events)` -> (the log's commit
//! observer applies the events to the live state, on the writer thread, in seq order) -> answer.
//! So the live state never runs ahead of the log, and a caller is never answered before its
//! events are durable and visible.

use std::sync::{Arc, RwLock};

use tunewright_events::{Event, EventLog, LogError, State, StoredEvent};
use tunewright_schemas::{ctx, ErrorCode, Failure};

#[derive(Clone)]
pub struct Ledger {
    log: EventLog,
    state: Arc<RwLock<State>>,
}

/// Page size for the start-up fold.
const RECOVERY_PAGE: usize = 16_384;

impl Ledger {
    /// Fold the whole log into the live state, then keep it current.
    pub fn recover(log: EventLog) -> Result<Ledger, LogError> {
        let mut state = State::new();
        let mut cursor = 0;
        loop {
            let page = log.read_after(cursor, RECOVERY_PAGE)?;
            let Some(last) = page.last() else { break };
            cursor = last.seq;
            for e in &page {
                state.apply(e);
            }
        }
        let state = Arc::new(RwLock::new(state));
        let observed = state.clone();
        log.set_commit_observer(Box::new(move |batch: &[StoredEvent]| {
            let mut s = match observed.write() {
                Ok(s) => s,
                Err(poisoned) => poisoned.into_inner(),
            };
            for e in batch {
                s.apply(e);
            }
            crate::lifecycle::log_batch(&s, batch);
        }));
        Ok(Ledger { log, state })
    }

    pub fn log(&self) -> &EventLog {
        &self.log
    }

    /// Read the live state.
    pub fn read<R>(&self, f: impl FnOnce(&State) -> R) -> R {
        match self.state.read() {
            Ok(s) => f(&s),
            Err(poisoned) => f(&poisoned.into_inner()),
        }
    }

    /// Append `events` durably in one transaction; they are applied before this returns.
    pub async fn commit(&self, events: Vec<Event>) -> Result<Vec<StoredEvent>, Failure> {
        self.log.append(events).await.map_err(log_failure)
    }
}

/// A log failure as the catalog's code: a full disk is `STORAGE_FULL` with the path and the free
/// space, anything else `EVENT_LOG_ERROR` (a damaged log's reason names the file, the operation
/// and the next step; docs/storage.md).
pub fn log_failure(e: LogError) -> Failure {
    match &e {
        LogError::StorageFull {
            path,
            free_bytes,
            reason,
            ..
        } => Failure::new(
            ErrorCode::StorageFull,
            ctx! {
                "path" => path.display().to_string(),
                "free_bytes" => free_bytes.map(|b| b.to_string()).unwrap_or_else(|| "unknown".into()),
                "reason" => reason.clone()
            },
        ),
        _ => Failure::new(ErrorCode::EventLogError, ctx! {"reason" => e.to_string()}),
    }
}
