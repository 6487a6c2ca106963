//! The `tunewright` binary: the CLI front of the service, the replay tool and the analyzer.
//! Each sub-command lives in `cli/`. It links no torch: jobs that need the device run in
//! `tunewright-worker` processes (`src/worker/`).

mod cli;
mod http;
mod replay;
mod service;
mod studio;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let args = cli::Cli::parse();
    cli::run(args)
}
