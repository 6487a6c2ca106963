//! Command-line interface: one module per sub-command.

pub mod analyze;
pub mod replay;
pub mod serve;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// tunewright: fine-tune language models on your own GPU machine, losing nothing.
#[derive(Debug, Parser)]
#[command(name = "tunewright", version, about, long_about = None)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the service: the actors and the HTTP admin endpoint.
    Serve(Box<serve::ServeArgs>),
    /// Inspect the event log (read-only): list, verify, state at a point, statistics.
    Replay(replay::ReplayArgs),
    /// Analyze a failure message and print the analysis as JSON.
    Analyze(analyze::AnalyzeArgs),
}

pub fn run(cli: Cli) -> ExitCode {
    match cli.command {
        Command::Serve(a) => serve::run(*a),
        Command::Replay(a) => replay::run(a),
        Command::Analyze(a) => analyze::run(a),
    }
}
