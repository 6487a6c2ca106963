//! `tunewright-worker train|export|evaluate|probe`: the worker process, a binary of its own and
//! the only one that links libtorch and touches the torch device (the service, `tunewright`,
//! links no torch: docs/building.md). It reads its spec from a file named in argv, writes
//! protocol lines (`tunewright_schemas::worker::WorkerLine`) on stdout and reads stop commands
//! from stdin. A failure is written as a `failure` line before a non-zero exit, so the trainer
//! actor can tell a reported failure from a death.

mod control;
mod evaluate;
mod export;
mod out;
mod probe;
mod train;

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::Parser;
use control::StopFlag;
use tunewright_schemas::worker::WorkerLine;

use serde::de::DeserializeOwned;
use tunewright_schemas::{ctx, ErrorCode, Failure};

/// Read and parse a spec file; the failure names the file.
pub fn read_spec<T: DeserializeOwned>(path: &Path, code: ErrorCode) -> Result<T, Failure> {
    let bytes = std::fs::read(path).map_err(|e| {
        Failure::new(
            code,
            ctx! {"reason" => format!("cannot read the worker spec {}: {e}", path.display())},
        )
    })?;
    serde_json::from_slice(&bytes).map_err(|e| {
        Failure::new(
            code,
            ctx! {"reason" => format!("the worker spec {} is not valid: {e}", path.display())},
        )
    })
}

// Exit codes: 0: result line written; 3: failure line written; 2: bad usage.

/// The worker the service starts for a job (never by hand): it reads the job's spec, writes
/// protocol lines on stdout and reads stop commands on stdin.
#[derive(Debug, Parser)]
#[command(name = "tunewright-worker", version, about, long_about = None)]
pub struct WorkerArgs {
    #[command(subcommand)]
    pub task: WorkerTask,
}

#[derive(Debug, clap::Subcommand)]
pub enum WorkerTask {
    /// Run one training run described by a spec file (JSON).
    Train {
        #[arg(long)]
        spec: PathBuf,
        /// Read stop commands from this file (one per line, appended by the service) instead of
        /// stdin: for a worker that is not the service's child (placed through Slurm).
        #[arg(long)]
        control_file: Option<PathBuf>,
    },
    /// Export a trained adapter described by a spec file (JSON).
    Export {
        #[arg(long)]
        spec: PathBuf,
    },
    /// Evaluate a training's adapter or checkpoint described by a spec file (JSON).
    Evaluate {
        #[arg(long)]
        spec: PathBuf,
    },
    /// Print the hardware report as JSON.
    Probe,
}

/// Exit status of a worker that wrote a `failure` line.
pub const EXIT_FAILED: u8 = 3;

/// The worker dies with the service (a SIGKILLed service must not leave a worker writing
/// into the job's directory while its successor resumes the job). A service that died before
/// the flag was set is caught by comparing the parent with the pid the launcher passed
/// (`PARENT_PID_ENV`); a closed stdin is the last net (`worker::control`).
fn die_with_parent() {
    #[cfg(target_os = "linux")]
    // SAFETY: prctl with PR_SET_PDEATHSIG only sets a flag on this process.
    unsafe {
        libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL as libc::c_ulong);
    }
    let expected = std::env::var(tunewright_actors::trainer::process::PARENT_PID_ENV)
        .ok()
        .and_then(|v| v.trim().parse::<i32>().ok());
    // SAFETY: getppid has no preconditions.
    let parent = unsafe { libc::getppid() };
    if expected.is_some_and(|p| p != parent) {
        eprintln!("tunewright-worker: the service that started this worker is gone; exiting");
        std::process::exit(control::EXIT_ORPHANED);
    }
}

fn main() -> ExitCode {
    let args = WorkerArgs::parse();
    die_with_parent();
    let outcome = match args.task {
        WorkerTask::Probe => return probe::run(),
        WorkerTask::Train { spec, control_file } => {
            let stop = match control_file {
                Some(path) => StopFlag::watch_file(path),
                None => StopFlag::watch_stdin(),
            };
            train::run(&spec, stop)
        }
        WorkerTask::Export { spec } => export::run(&spec),
        WorkerTask::Evaluate { spec } => evaluate::run(&spec),
    };
    match outcome {
        Ok(value) => {
            out::emit(&WorkerLine::Result { value });
            ExitCode::SUCCESS
        }
        Err(failure) => {
            out::emit(&WorkerLine::Failure { failure });
            ExitCode::from(EXIT_FAILED)
        }
    }
}
