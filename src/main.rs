//! The `tunewright` binary: the CLI front of the service, the replay tool, the analyzer and
//! the training worker. Each sub-command lives in `cli/`.

mod cli;
mod http;
mod replay;
mod service;
mod studio;
mod worker;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let args = cli::Cli::parse();
    cli::run(args)
}
