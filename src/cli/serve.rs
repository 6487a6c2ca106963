//! `tunewright serve` (being built; see the issue that owns it).

use std::process::ExitCode;

#[derive(Debug, clap::Args)]
pub struct ServeArgs {}

pub fn run(_args: ServeArgs) -> ExitCode {
    eprintln!("tunewright serve: not built yet");
    ExitCode::from(2)
}
