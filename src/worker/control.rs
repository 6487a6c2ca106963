//! The stop request the actor sends on stdin, seen by the training loop at every step. A
//! closed stdin (the service died) means checkpoint-and-stop: the job resumes at restart.

use std::io::BufRead;
use std::sync::atomic::{AtomicU8, Ordering};
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

#[derive(Clone, Default)]
pub struct StopFlag(Arc<AtomicU8>);

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
                    None => {}
                }
            }
            f.set(CHECKPOINT_AND_STOP);
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

    pub fn requested(&self) -> Requested {
        match self.0.load(Ordering::SeqCst) {
            CANCEL => Requested::Cancel,
            CHECKPOINT_AND_STOP => Requested::CheckpointAndStop,
            _ => Requested::Continue,
        }
    }
}
