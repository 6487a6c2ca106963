//! `tunewright analyze` (being built; see the issue that owns it).

use std::process::ExitCode;

#[derive(Debug, clap::Args)]
pub struct AnalyzeArgs {}

pub fn run(_args: AnalyzeArgs) -> ExitCode {
    eprintln!("tunewright analyze: not built yet");
    ExitCode::from(2)
}
