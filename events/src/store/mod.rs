//! The event store: an append-only log of `StoredEvent`s in a redb file.
//!
//! `EventLog` is the service's handle: group-committed durable appends (see `writer`), reads by
//! range and by stream, a live subscription and a commit observer. `LogReader` opens a log
//! read-only for the replay tool; it never writes to the file, also while the service runs
//! (both open the file in redb's `SingleWriter` mode, which lets readers follow the writer).
//! An existing log is `check`ed read-only before it is opened for writing, so a damaged log is
//! refused without being written to; every redb call on it runs `guarded` (no panic escapes).

pub mod check;
mod error;
mod guard;
pub mod record;
pub mod salvage;
pub mod space;
mod tables;
mod writer;

pub use check::{check, LogCheck};
mod overlay;
pub use error::{LogError, DAMAGED_NEXT_STEP};
use guard::guarded;
pub use guard::panic_text;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{mpsc, Arc, Mutex, RwLock};
use std::thread::JoinHandle;
use std::time::Instant;

use redb::{ConcurrencyMode, Database, ReadOnlyDatabase};
use tokio::sync::broadcast;

use crate::event::{Event, StoredEvent, StreamId};
use writer::{Reply, Request, Writer, WriterHealth};

/// Called on the writer thread with each committed batch, in order, before appenders hear back.
pub type CommitObserver = Box<dyn Fn(&[StoredEvent]) + Send + Sync>;

/// Capacity of the live subscription: a subscriber further behind than this gets `Lagged` and
/// must catch up from the log with `read_after`.
const LIVE_CAPACITY: usize = 65_536;

struct Inner {
    /// Taken by `close`, so the file is released once in-flight reads end; replaced by the
    /// writer when it reopens the file after a failed commit.
    db: Arc<Mutex<Option<Arc<Database>>>>,
    /// Whether appends work, as the writer last saw (`/ready` reads it).
    health: Arc<Mutex<WriterHealth>>,
    path: PathBuf,
    tx: Mutex<Option<mpsc::Sender<Request>>>,
    writer: Mutex<Option<JoinHandle<()>>>,
    observer: Arc<RwLock<Option<CommitObserver>>>,
    live: broadcast::Sender<Arc<StoredEvent>>,
    last_seq: Arc<AtomicU64>,
}

/// How the log commits.
#[derive(Debug, Clone, Copy)]
pub struct LogOptions {
    /// Most events one group-committed transaction takes. 1 disables group commit (one
    /// transaction per append), which only the benchmark's baseline wants.
    pub max_batch_events: usize,
}

impl Default for LogOptions {
    fn default() -> Self {
        LogOptions {
            max_batch_events: 8192,
        }
    }
}

/// The service's handle on its log. Cheap to clone.
#[derive(Clone)]
pub struct EventLog {
    inner: Arc<Inner>,
}

pub(crate) fn builder() -> redb::Builder {
    let mut b = Database::builder();
    b.set_concurrency_mode(ConcurrencyMode::SingleWriter);
    b
}

impl EventLog {
    /// Open the log at `path`, creating it if missing, and start the writer thread.
    pub fn open(path: &Path) -> Result<EventLog, LogError> {
        Self::open_with(path, LogOptions::default())
    }

    /// `open` with explicit options. An existing log is checked read-only first (see
    /// `check`): a damaged one is refused with `LogError::Damaged` and not written to.
    pub fn open_with(path: &Path, options: LogOptions) -> Result<EventLog, LogError> {
        let db = if path.exists() {
            check::check(path)?;
            open_for_writing(path)?
        } else {
            create(path)?
        };
        let db = Arc::new(db);
        let last = guarded(path, "read the last seq", || tables::last_seq(&*db))
            .map_err(|e| e.at(path, "read the last seq"))?;
        let (tx, rx) = mpsc::channel();
        let (live, _) = broadcast::channel(LIVE_CAPACITY);
        let observer = Arc::new(RwLock::new(None));
        let last_seq = Arc::new(AtomicU64::new(last));
        let shared_db = Arc::new(Mutex::new(Some(db)));
        let health = Arc::new(Mutex::new(WriterHealth::default()));
        let w = Writer {
            db: shared_db.clone(),
            path: path.to_path_buf(),
            health: health.clone(),
            needs_reopen: false,
            max_batch_events: options.max_batch_events.max(1),
            next_seq: last + 1,
            observer: observer.clone(),
            live: live.clone(),
            last_seq: last_seq.clone(),
        };
        let handle = std::thread::Builder::new()
            .name("event-log-writer".into())
            .spawn(move || w.run(rx))
            .map_err(LogError::storage)?;
        Ok(EventLog {
            inner: Arc::new(Inner {
                db: shared_db,
                health,
                path: path.to_path_buf(),
                tx: Mutex::new(Some(tx)),
                writer: Mutex::new(Some(handle)),
                observer,
                live,
                last_seq,
            }),
        })
    }

    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    fn submit(&self, events: Vec<Event>, reply: Reply) -> Result<(), LogError> {
        let encoded = events
            .into_iter()
            .map(record::encode_event)
            .collect::<Result<Vec<_>, _>>()?;
        let guard = self.inner.tx.lock().map_err(|_| LogError::Closed)?;
        let tx = guard.as_ref().ok_or(LogError::Closed)?;
        tx.send(Request {
            events: encoded,
            reply,
            queued_at: Instant::now(),
        })
        .map_err(|_| LogError::Closed)
    }

    /// Append `events` in one durable transaction; answered after fsync, with their seqs.
    pub async fn append(&self, events: Vec<Event>) -> Result<Vec<StoredEvent>, LogError> {
        if events.is_empty() {
            return Ok(Vec::new());
        }
        let (tx, rx) = tokio::sync::oneshot::channel();
        self.submit(events, Reply::Async(tx))?;
        rx.await.map_err(|_| LogError::Closed)?
    }

    /// `append` for callers outside the async runtime.
    pub fn append_blocking(&self, events: Vec<Event>) -> Result<Vec<StoredEvent>, LogError> {
        if events.is_empty() {
            return Ok(Vec::new());
        }
        let (tx, rx) = mpsc::channel();
        self.submit(events, Reply::Blocking(tx))?;
        rx.recv().map_err(|_| LogError::Closed)?
    }

    /// The shared handle. While the writer reopens the file (after a failed commit) there is
    /// none for a moment: wait for it (bounded) rather than fail a read.
    fn db(&self) -> Result<Arc<Database>, LogError> {
        let deadline = Instant::now() + std::time::Duration::from_secs(2);
        loop {
            if let Some(db) = self.inner.db.lock().ok().and_then(|d| d.clone()) {
                return Ok(db);
            }
            let writer_alive = self.inner.tx.lock().map(|t| t.is_some()).unwrap_or(false);
            if !writer_alive || Instant::now() >= deadline {
                return Err(LogError::Closed);
            }
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
    }

    /// Up to `limit` events with seq > `after_seq`, in order.
    pub fn read_after(&self, after_seq: u64, limit: usize) -> Result<Vec<StoredEvent>, LogError> {
        let db = self.db()?;
        guarded(self.path(), "read", || {
            tables::read_after(&*db, after_seq, limit)
        })
        .map_err(|e| e.at(self.path(), "read"))
    }

    /// Up to `limit` events of `stream` with seq > `after_seq`, in order.
    pub fn read_stream(
        &self,
        stream: StreamId,
        after_seq: u64,
        limit: usize,
    ) -> Result<Vec<StoredEvent>, LogError> {
        let db = self.db()?;
        guarded(self.path(), "read a stream", || {
            tables::read_stream(&*db, stream, after_seq, limit)
        })
        .map_err(|e| e.at(self.path(), "read a stream"))
    }

    /// Whether appends work now; `Err` says why not (e.g. the disk is full and the writer could
    /// not reopen the file yet). See `writer` for how the writer recovers.
    pub fn writable(&self) -> Result<(), String> {
        match self.inner.health.lock() {
            Ok(h) => match &h.unwritable {
                Some(reason) => Err(reason.clone()),
                None => Ok(()),
            },
            Err(_) => Err("the event log writer failed".into()),
        }
    }

    /// Since when appends fail (`None` while they work).
    pub fn unwritable_since(&self) -> Option<Instant> {
        self.inner.health.lock().ok().and_then(|h| h.since)
    }

    /// Since when the writer fails to reopen the file after a failed commit (`None` while the
    /// file is open): past a bound the service exits for its supervisor (docs/storage.md).
    pub fn reopen_failing_since(&self) -> Option<Instant> {
        self.inner
            .health
            .lock()
            .ok()
            .and_then(|h| h.reopen_failing_since)
    }

    /// Seq of the last committed event (0 for an empty log).
    pub fn last_seq(&self) -> u64 {
        self.inner.last_seq.load(Ordering::Acquire)
    }

    /// Committed events from now on, in order.
    pub fn subscribe(&self) -> broadcast::Receiver<Arc<StoredEvent>> {
        self.inner.live.subscribe()
    }

    /// Install the observer that sees every committed batch before its appenders are answered.
    pub fn set_commit_observer(&self, f: CommitObserver) {
        if let Ok(mut g) = self.inner.observer.write() {
            *g = Some(f);
        }
    }

    /// Commit what is queued, stop the writer and refuse later appends.
    pub fn close(&self) -> Result<(), LogError> {
        if let Ok(mut tx) = self.inner.tx.lock() {
            tx.take();
        }
        let handle = self.inner.writer.lock().ok().and_then(|mut h| h.take());
        if let Some(h) = handle {
            h.join()
                .map_err(|_| LogError::Storage("the writer thread panicked".into()))?;
        }
        // Release the file (once in-flight reads end); later reads answer `Closed`.
        if let Ok(mut db) = self.inner.db.lock() {
            db.take();
        }
        Ok(())
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        if let Ok(mut tx) = self.tx.lock() {
            tx.take();
        }
        if let Some(h) = self.writer.lock().ok().and_then(|mut h| h.take()) {
            let _ = h.join();
        }
    }
}

/// Create a new, empty log with its tables and format marker.
pub(crate) fn create(path: &Path) -> Result<Database, LogError> {
    guarded(path, "create", || {
        let db = builder().create(path).map_err(|e| open_error(path, e))?;
        let txn = db.begin_write()?;
        {
            let mut meta = txn.open_table(tables::META)?;
            meta.insert(tables::FORMAT_KEY, tables::FORMAT_VALUE)?;
            txn.open_table(tables::EVENTS)?;
            txn.open_table(tables::BY_STREAM)?;
        }
        txn.commit()?;
        Ok(db)
    })
    .map_err(|e| e.at(path, "create"))
}

/// Open an existing (checked) log read-write.
pub(crate) fn open_for_writing(path: &Path) -> Result<Database, LogError> {
    guarded(path, "open for writing", || {
        let db = builder().open(path).map_err(|e| open_error(path, e))?;
        tables::check_marker(&db, path)?;
        Ok(db)
    })
    .map_err(|e| check::as_damage(e, path, "open for writing"))
}

pub(crate) fn open_error(path: &Path, e: redb::DatabaseError) -> LogError {
    match e {
        redb::DatabaseError::DatabaseAlreadyOpen => LogError::InUse {
            path: path.to_path_buf(),
        },
        redb::DatabaseError::Storage(redb::StorageError::Io(io))
            if io.kind() == std::io::ErrorKind::NotFound =>
        {
            LogError::Missing {
                path: path.to_path_buf(),
                reason: io.to_string(),
            }
        }
        // redb's own answer for a file that is not a redb database at all.
        redb::DatabaseError::Storage(redb::StorageError::Io(io))
            if io.kind() == std::io::ErrorKind::InvalidData =>
        {
            LogError::NotALog {
                path: path.to_path_buf(),
                reason: io.to_string(),
            }
        }
        redb::DatabaseError::Storage(s) => LogError::from(s).at(path, "open"),
        other => LogError::NotALog {
            path: path.to_path_buf(),
            reason: other.to_string(),
        },
    }
}

/// A read-only view of a log, for the replay tool. Never writes to the file.
pub struct LogReader {
    pub(crate) db: ReadOnlyDatabase,
    path: PathBuf,
    _copy: Option<tempfile_guard::TempCopy>,
}

mod tempfile_guard {
    /// A private copy of a log that needed crash recovery, deleted on drop.
    pub struct TempCopy(pub std::path::PathBuf);
    impl Drop for TempCopy {
        fn drop(&mut self) {
            let _ = std::fs::remove_file(&self.0);
        }
    }
}

impl LogReader {
    /// Open `path` read-only. A log left by a crash needs redb's recovery, which writes; the
    /// reader then recovers a private copy instead and reads that.
    pub fn open(path: &Path) -> Result<LogReader, LogError> {
        if !path.exists() {
            return Err(LogError::Missing {
                path: path.to_path_buf(),
                reason: "no such file".into(),
            });
        }
        guarded(path, "open read-only", || Self::open_unguarded(path))
            .map_err(|e| check::as_damage(e, path, "open read-only"))
    }

    fn open_unguarded(path: &Path) -> Result<LogReader, LogError> {
        match builder().open_read_only(path) {
            Ok(db) => {
                tables::check_marker(&db, path)?;
                Ok(LogReader {
                    db,
                    path: path.to_path_buf(),
                    _copy: None,
                })
            }
            // Read-only handles cannot run the recovery a crashed log needs.
            Err(redb::DatabaseError::RepairAborted) => Self::open_recovered_copy(path),
            Err(redb::DatabaseError::UpgradeRequired(v)) => Err(LogError::NotALog {
                path: path.to_path_buf(),
                reason: format!("redb file format {v} is not supported"),
            }),
            Err(e) => Err(open_error(path, e)),
        }
    }

    /// Whether the file was left by a crash and is read from a recovered private copy.
    pub fn recovered(&self) -> bool {
        self._copy.is_some()
    }

    fn open_recovered_copy(path: &Path) -> Result<LogReader, LogError> {
        let copy = std::env::temp_dir().join(format!(
            "tunewright-replay-{}-{}.redb",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos())
                .unwrap_or(0)
        ));
        std::fs::copy(path, &copy).map_err(LogError::storage)?;
        let guard = tempfile_guard::TempCopy(copy.clone());
        // Opening read-write runs the recovery on the copy; then reopen the copy read-only.
        let db = builder().open(&copy).map_err(|e| open_error(path, e))?;
        drop(db);
        let db = builder()
            .open_read_only(&copy)
            .map_err(|e| open_error(path, e))?;
        tables::check_marker(&db, path)?;
        Ok(LogReader {
            db,
            path: path.to_path_buf(),
            _copy: Some(guard),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The check's reads (every record, the stream index) on this read-only handle.
    pub fn check(&self) -> Result<LogCheck, LogError> {
        guarded(&self.path, "check", || check::check_records(&self.db))
            .map_err(|e| check::as_damage(e, &self.path, "check"))
    }

    pub fn read_after(&self, after_seq: u64, limit: usize) -> Result<Vec<StoredEvent>, LogError> {
        guarded(&self.path, "read", || {
            tables::read_after(&self.db, after_seq, limit)
        })
        .map_err(|e| e.at(&self.path, "read"))
    }

    pub fn read_stream(
        &self,
        stream: StreamId,
        after_seq: u64,
        limit: usize,
    ) -> Result<Vec<StoredEvent>, LogError> {
        guarded(&self.path, "read a stream", || {
            tables::read_stream(&self.db, stream, after_seq, limit)
        })
        .map_err(|e| e.at(&self.path, "read a stream"))
    }

    pub fn last_seq(&self) -> Result<u64, LogError> {
        guarded(&self.path, "read the last seq", || {
            tables::last_seq(&self.db)
        })
        .map_err(|e| e.at(&self.path, "read the last seq"))
    }

    /// Raw records in seq order with their sizes, for statistics and verification: each item
    /// is `(seq, record size, decoded event or the error naming the seq)`.
    pub fn scan(
        &self,
        mut f: impl FnMut(u64, usize, Result<StoredEvent, LogError>) -> bool,
    ) -> Result<(), LogError> {
        use redb::{ReadableDatabase, ReadableTable};
        guarded(&self.path, "scan records", || {
            let txn = self.db.begin_read()?;
            let table = txn.open_table(tables::EVENTS)?;
            for entry in table.iter()? {
                let (k, v) = entry?;
                let seq = k.value();
                let bytes = v.value();
                if !f(seq, bytes.len(), record::decode(seq, bytes)) {
                    break;
                }
            }
            Ok(())
        })
        .map_err(|e| e.at(&self.path, "scan records"))
    }
}
