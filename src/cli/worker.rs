//! `tunewright worker`: the internal sub-command the trainer actor spawns (never by hand). See
//! `crate::worker` for the protocol side; this module only parses argv and sets the exit code
//! (0: result line written; 3: failure line written; 2: bad usage).

use std::path::PathBuf;
use std::process::ExitCode;

use tunewright_schemas::worker::WorkerLine;

use crate::worker::{control::StopFlag, evaluate, export, out, probe, train};

#[derive(Debug, clap::Args)]
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
        eprintln!("tunewright worker: the service that started this worker is gone; exiting");
        std::process::exit(crate::worker::control::EXIT_ORPHANED);
    }
}

pub fn run(args: WorkerArgs) -> ExitCode {
    die_with_parent();
    let outcome = match args.task {
        WorkerTask::Probe => return probe::run(),
        WorkerTask::Train { spec } => train::run(&spec, StopFlag::watch_stdin()),
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
