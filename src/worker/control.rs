//! The stop request the actor sends on stdin (or, for a worker placed through Slurm, appends to
//! a control file), seen by the training loop at every step.
//!
//! A closed stdin means the service that spawned this worker is gone (the actor holds the pipe
//! open until the worker has ended). The worker then exits at once and writes nothing more: a
//! checkpoint written now would never be recorded, so no restart could use it, and pruning
//! after it could delete the recorded checkpoint the restarted service resumes from; and a
//! successor worker may already be resuming the job in the same directory. (On Linux the
//! worker is also SIGKILLed with its parent, see `cli::worker`; this covers the rest.)

use std::io::BufRead;
use std::sync::atomic::{AtomicU64, AtomicU8, Ordering};
use std::sync::Arc;

use tunewright_schemas::worker::WorkerCommand;

const CANCEL: u8 = 1;
const CHECKPOINT_AND_STOP: u8 = 2;

/// What the loop should do now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Requested {
    Continue,
    Cancel,
    CheckpointAndStop,
}

#[derive(Clone)]
pub struct StopFlag(Arc<AtomicU8>, Arc<AtomicU64>);

/// No floor: the service hears of every checkpoint at once (stdin).
const NO_FLOOR: u64 = u64::MAX;

impl Default for StopFlag {
    fn default() -> Self {
        StopFlag(Arc::default(), Arc::new(AtomicU64::new(NO_FLOOR)))
    }
}

impl StopFlag {
    /// Watch stdin on a thread for the lifetime of the process.
    pub fn watch_stdin() -> StopFlag {
        let flag = StopFlag::default();
        let f = flag.clone();
        std::thread::spawn(move || {
            let stdin = std::io::stdin();
            for line in stdin.lock().lines() {
                let Ok(line) = line else { break };
                match WorkerCommand::parse(&line) {
                    Some(WorkerCommand::Cancel) => f.set(CANCEL),
                    Some(WorkerCommand::CheckpointAndStop) => f.set(CHECKPOINT_AND_STOP),
                    Some(WorkerCommand::Recorded { .. }) | None => {}
                }
            }
            orphaned();
        });
        flag
    }

    /// Watch a control file on a thread: the commands the service appends to it, one per line,
    /// read every 300 ms. A worker placed on a cluster is not the service's child, so the
    /// service also renews the file's modification time while it follows the worker (its
    /// lease); a lease older than `LEASE` means the service is gone, and the worker exits as
    /// one whose stdin closed: without writing anything more.
    pub fn watch_file(path: std::path::PathBuf) -> StopFlag {
        let flag = StopFlag::default();
        // Until the service says it recorded one, no checkpoint may be pruned.
        flag.1.store(0, Ordering::SeqCst);
        let f = flag.clone();
        std::thread::spawn(move || loop {
            if let Ok(text) = std::fs::read_to_string(&path) {
                for line in text.lines() {
                    match WorkerCommand::parse(line) {
                        Some(WorkerCommand::Cancel) => f.set(CANCEL),
                        Some(WorkerCommand::CheckpointAndStop) => f.set(CHECKPOINT_AND_STOP),
                        Some(WorkerCommand::Recorded { step }) => {
                            f.1.fetch_max(step, Ordering::SeqCst);
                        }
                        None => {}
                    }
                }
            }
            let renewed = std::fs::metadata(&path)
                .and_then(|m| m.modified())
                .ok()
                .and_then(|t| t.elapsed().ok());
            if renewed.is_none_or(|age| age > LEASE) {
                orphaned();
            }
            std::thread::sleep(std::time::Duration::from_millis(300));
        });
        flag
    }

    fn set(&self, v: u8) {
        // A cancel is never downgraded to a checkpoint-and-stop.
        let _ = self
            .0
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |cur| {
                if cur == CANCEL {
                    None
                } else {
                    Some(v)
                }
            });
    }

    /// The step from which no checkpoint may be pruned: the newest the service has recorded,
    /// for a worker reading a control file; `None` for one on stdin.
    pub fn prune_floor(&self) -> Option<u64> {
        match self.1.load(Ordering::SeqCst) {
            NO_FLOOR => None,
            step => Some(step),
        }
    }

    pub fn requested(&self) -> Requested {
        match self.0.load(Ordering::SeqCst) {
            CANCEL => Requested::Cancel,
            CHECKPOINT_AND_STOP => Requested::CheckpointAndStop,
            _ => Requested::Continue,
        }
    }
}

/// How long a control file may go unrenewed before its worker takes the service for gone.
pub const LEASE: std::time::Duration = std::time::Duration::from_secs(30);

/// Exit status of a worker whose service went away (stdin closed).
pub const EXIT_ORPHANED: i32 = 4;

/// The service is gone: end the process now, from this thread, without unwinding the training
/// thread or running libtorch's exit handlers while it is mid-step.
fn orphaned() -> ! {
    eprintln!("tunewright-worker: the service is gone (stdin closed or control file not renewed); exiting without writing");
    // SAFETY: `_exit` ends the process immediately; no Rust state is used after it.
    unsafe { libc::_exit(EXIT_ORPHANED) }
}
