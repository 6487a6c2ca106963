//! The single writer: one OS thread that group-commits appends.
//!
//! Appenders send their encoded events on a channel. The writer blocks for one request, then
//! takes every request already waiting (up to `MAX_BATCH_EVENTS`), writes them all in one redb
//! transaction, commits durably (fsync), runs the commit observer, publishes to subscribers and
//! only then answers each appender with its stored events. A failed commit answers every
//! appender of the batch with the error and assigns no sequence numbers.
//!
//! After a failed commit (a full disk, an I/O error) redb refuses every later write until the
//! database is closed and reopened, so the writer does exactly that: it drops its handle (once
//! in-flight reads let go), reopens the file and carries on; the batch that failed stays failed,
//! none of it applied. While the disk stays full, or the reopen fails, `health` says why appends
//! fail (the service answers `/ready` 503 with that reason), and the writer tries again every
//! `PROBE_EVERY` while idle with an empty commit, so appends work again once space is back,
//! without a restart (docs/storage.md, "a full disk").

use std::path::PathBuf;
use std::sync::mpsc::{Receiver, RecvTimeoutError, TryRecvError};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use redb::Database;
use tokio::sync::broadcast;

use super::guard::guarded;
use super::record::{self, Encoded};
use super::tables::{BY_STREAM, EVENTS};
use super::{CommitObserver, LogError};
use crate::event::StoredEvent;

pub enum Reply {
    Async(tokio::sync::oneshot::Sender<Result<Vec<StoredEvent>, LogError>>),
    Blocking(std::sync::mpsc::Sender<Result<Vec<StoredEvent>, LogError>>),
}

impl Reply {
    fn send(self, r: Result<Vec<StoredEvent>, LogError>) {
        // An appender that stopped waiting is not an error of the log.
        match self {
            Reply::Async(tx) => {
                let _ = tx.send(r);
            }
            Reply::Blocking(tx) => {
                let _ = tx.send(r);
            }
        }
    }
}

pub struct Request {
    pub events: Vec<Encoded>,
    pub reply: Reply,
    pub queued_at: Instant,
}

/// How often an unwritable log is tried again while no append comes.
const PROBE_EVERY: Duration = Duration::from_secs(2);
/// How long a reopen waits for in-flight reads to release the old handle.
const RELEASE_WAIT: Duration = Duration::from_secs(5);

/// Whether appends work; shared with `EventLog::writable`.
#[derive(Debug, Default)]
pub struct WriterHealth {
    /// Why appends fail now; `None` when they work.
    pub unwritable: Option<String>,
    /// Since when they fail.
    pub since: Option<Instant>,
    /// Since when reopening the file fails (the service exits for systemd past a bound).
    pub reopen_failing_since: Option<Instant>,
}

pub struct Writer {
    /// The handle reads share; the writer swaps it when it reopens the file.
    pub db: Arc<Mutex<Option<Arc<Database>>>>,
    pub path: PathBuf,
    pub health: Arc<Mutex<WriterHealth>>,
    /// Whether the handle must be reopened before the next write (a commit failed).
    pub needs_reopen: bool,
    /// Most events one transaction takes (1 = one transaction per append: no group commit).
    pub max_batch_events: usize,
    pub next_seq: u64,
    pub observer: Arc<RwLock<Option<CommitObserver>>>,
    pub live: broadcast::Sender<Arc<StoredEvent>>,
    pub last_seq: Arc<std::sync::atomic::AtomicU64>,
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

impl Writer {
    pub fn run(mut self, rx: Receiver<Request>) {
        let mut buf = Vec::new();
        loop {
            let first = if self.is_healthy() {
                match rx.recv() {
                    Ok(r) => r,
                    Err(_) => return,
                }
            } else {
                match rx.recv_timeout(PROBE_EVERY) {
                    Ok(r) => r,
                    Err(RecvTimeoutError::Timeout) => {
                        self.probe();
                        continue;
                    }
                    Err(RecvTimeoutError::Disconnected) => return,
                }
            };
            let mut batch = vec![first];
            let mut count = batch[0].events.len();
            while count < self.max_batch_events {
                match rx.try_recv() {
                    Ok(r) => {
                        count += r.events.len();
                        batch.push(r);
                    }
                    Err(TryRecvError::Empty) | Err(TryRecvError::Disconnected) => break,
                }
            }
            self.commit(batch, &mut buf);
        }
    }

    fn is_healthy(&self) -> bool {
        self.health
            .lock()
            .map(|h| h.unwritable.is_none())
            .unwrap_or(false)
    }

    fn set_health(&self, unwritable: Option<String>) {
        if let Ok(mut h) = self.health.lock() {
            match (&h.unwritable, &unwritable) {
                (None, Some(reason)) => {
                    tracing::error!(%reason, "the event log cannot be written: the service is not ready");
                    h.since = Some(Instant::now());
                }
                (Some(_), None) => {
                    tracing::info!("the event log can be written again");
                    h.since = None;
                }
                _ => {}
            }
            h.unwritable = unwritable;
        }
    }

    /// The handle to write with, reopening the file first where a commit failed.
    fn handle(&mut self) -> Result<Arc<Database>, LogError> {
        if self.needs_reopen {
            self.reopen()?;
        }
        self.db
            .lock()
            .ok()
            .and_then(|d| d.clone())
            .ok_or(LogError::Closed)
    }

    /// Close the database (once reads let go of it) and open it again: redb refuses every write
    /// after a failed one until then.
    fn reopen(&mut self) -> Result<(), LogError> {
        let old = self.db.lock().ok().and_then(|mut d| d.take());
        if let Some(mut old) = old {
            let deadline = Instant::now() + RELEASE_WAIT;
            loop {
                match Arc::try_unwrap(old) {
                    Ok(db) => {
                        drop(db);
                        break;
                    }
                    Err(still_shared) if Instant::now() < deadline => {
                        old = still_shared;
                        std::thread::sleep(Duration::from_millis(5));
                    }
                    Err(still_shared) => {
                        // A read holds it still: put it back and try again later.
                        if let Ok(mut d) = self.db.lock() {
                            *d = Some(still_shared);
                        }
                        return Err(LogError::Storage(
                            "the event log could not be reopened: reads still hold it".into(),
                        ));
                    }
                }
            }
        }
        let db = match super::open_for_writing(&self.path) {
            Ok(db) => db,
            Err(e) => {
                if let Ok(mut h) = self.health.lock() {
                    h.reopen_failing_since.get_or_insert_with(Instant::now);
                }
                return Err(e);
            }
        };
        if let Ok(mut d) = self.db.lock() {
            *d = Some(Arc::new(db));
        }
        if let Ok(mut h) = self.health.lock() {
            h.reopen_failing_since = None;
        }
        self.needs_reopen = false;
        tracing::info!(path = %self.path.display(), "reopened the event log after a failed commit");
        Ok(())
    }

    /// While idle and unwritable: reopen if needed, then try an empty commit.
    fn probe(&mut self) {
        let outcome = self.handle().and_then(|db| {
            guarded(&self.path, "append", || {
                let txn = db.begin_write()?;
                txn.commit()?;
                Ok(())
            })
        });
        match outcome {
            Ok(()) => self.set_health(None),
            Err(e) => {
                self.needs_reopen = true;
                self.set_health(Some(e.at(&self.path, "append").to_string()));
            }
        }
    }

    fn commit(&mut self, batch: Vec<Request>, buf: &mut Vec<u8>) {
        let ts_ms = now_ms();
        let start_seq = self.next_seq;
        let written = self
            .handle()
            .and_then(|db| {
                guarded(&self.path.clone(), "append", || {
                    self.write(&db, &batch, ts_ms, buf)
                })
            })
            .map_err(|e| e.at(&self.path, "append"));
        if let Err(e) = written {
            tracing::error!(error = %e, events = batch.iter().map(|r| r.events.len()).sum::<usize>(), "event log commit failed; the batch is not applied");
            self.needs_reopen = true;
            self.set_health(Some(e.to_string()));
            // Reopen now, so the next append finds a working handle if the cause has passed.
            if let Err(again) = self.reopen() {
                tracing::warn!(error = %again, "reopening the event log failed; trying again");
            }
            for r in batch {
                r.reply.send(Err(clone_error(&e)));
            }
            return;
        }
        self.set_health(None);
        let mut seq = start_seq;
        let mut answers = Vec::with_capacity(batch.len());
        let mut all = Vec::with_capacity(batch.iter().map(|r| r.events.len()).sum());
        for r in batch {
            let mut stored = Vec::with_capacity(r.events.len());
            for e in r.events {
                stored.push(StoredEvent {
                    seq,
                    ts_ms,
                    stream: e.event.stream(),
                    event: e.event,
                });
                seq += 1;
            }
            all.extend(stored.iter().cloned());
            answers.push((r.reply, stored, r.queued_at));
        }
        self.next_seq = seq;
        self.last_seq
            .store(seq - 1, std::sync::atomic::Ordering::Release);
        metrics::histogram!("tunewright_group_commit_batch_size").record(all.len() as f64);
        metrics::counter!("tunewright_events_appended_total").increment(all.len() as u64);
        if let Ok(guard) = self.observer.read() {
            if let Some(observe) = guard.as_ref() {
                observe(&all);
            }
        }
        for e in all {
            let _ = self.live.send(Arc::new(e));
        }
        for (reply, stored, queued_at) in answers {
            metrics::histogram!("tunewright_event_append_seconds")
                .record(queued_at.elapsed().as_secs_f64());
            reply.send(Ok(stored));
        }
    }

    fn write(
        &self,
        db: &Database,
        batch: &[Request],
        ts_ms: i64,
        buf: &mut Vec<u8>,
    ) -> Result<(), LogError> {
        let txn = db.begin_write()?;
        {
            let mut events = txn.open_table(EVENTS)?;
            let mut index = txn.open_table(BY_STREAM)?;
            let mut seq = self.next_seq;
            for r in batch {
                for e in &r.events {
                    record::frame(e, ts_ms, buf);
                    events.insert(seq, buf.as_slice())?;
                    index.insert((e.stream.as_slice(), seq), ())?;
                    seq += 1;
                }
            }
        }
        txn.commit()?;
        Ok(())
    }
}

/// The error each appender of a failed batch gets (`LogError` is not `Clone`: it carries an
/// encoding error only before the writer sees a batch).
fn clone_error(e: &LogError) -> LogError {
    match e {
        LogError::StorageFull {
            path,
            operation,
            free_bytes,
            reason,
        } => LogError::StorageFull {
            path: path.clone(),
            operation: operation.clone(),
            free_bytes: *free_bytes,
            reason: reason.clone(),
        },
        LogError::Damaged {
            path,
            operation,
            reason,
        } => LogError::Damaged {
            path: path.clone(),
            operation: operation.clone(),
            reason: reason.clone(),
        },
        LogError::Closed => LogError::Closed,
        other => LogError::Storage(other.to_string()),
    }
}
