//! `tunewright replay`'s options and sub-commands.

use std::path::PathBuf;

use clap::{Args, Subcommand};

use super::{list, salvage, state, stats};

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
    /// Run the check `serve` runs before it opens the log (every record, the stream index),
    /// then check the sequence has no gaps, fold the projections and check their invariants.
    /// Exits non-zero naming the first problem.
    Verify,
    /// Copy every readable event into a fresh log in another data directory, reporting what
    /// was skipped: the way out for a log `serve` refuses as damaged.
    Salvage(salvage::SalvageArgs),
    /// The projects and jobs as they were after event SEQ (default: the end).
    State(state::StateArgs),
    /// Counts by event type, sizes and the time span.
    Stats(stats::StatsArgs),
}
