//! `tunewright worker` (being built; see the issue that owns it).

use std::process::ExitCode;

#[derive(Debug, clap::Args)]
pub struct WorkerArgs {}

pub fn run(_args: WorkerArgs) -> ExitCode {
    eprintln!("tunewright worker: not built yet");
    ExitCode::from(2)
}
