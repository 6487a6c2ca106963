//! `tunewright replay` (being built; see the issue that owns it).

use std::process::ExitCode;

#[derive(Debug, clap::Args)]
pub struct ReplayArgs {}

pub fn run(_args: ReplayArgs) -> ExitCode {
    eprintln!("tunewright replay: not built yet");
    ExitCode::from(2)
}
