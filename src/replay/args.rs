//! `tunewright replay`'s options and sub-commands.

use std::path::PathBuf;

use clap::{Args, Subcommand};

use super::{list, state, stats};

#[derive(Debug, Args)]
pub struct ReplayArgs {
    /// The service's data directory (holds events.redb).
    #[arg(long, default_value = "./tunewright-data", global = true)]
    pub data_dir: PathBuf,
    #[command(subcommand)]
    pub command: ReplayCommand,
}

#[derive(Debug, Subcommand)]
pub enum ReplayCommand {
    /// List events, optionally filtered.
    List(list::ListArgs),
    /// Decode every event, check the sequence has no gaps, fold the projections and check
    /// their invariants. Exits non-zero naming the first problem.
    Verify,
    /// The projects and jobs as they were after event SEQ (default: the end).
    State(state::StateArgs),
    /// Counts by event type, sizes and the time span.
    Stats(stats::StatsArgs),
}
