//! The replay tool's core: open a log read-only and run one sub-command over it.

pub mod args;
pub mod list;
pub mod salvage;
pub mod scan;
pub mod state;
pub mod stats;
pub mod verify;

use std::process::ExitCode;

use tunewright_events::LogReader;

use args::{ReplayArgs, ReplayCommand};

pub fn run(args: &ReplayArgs) -> Result<ExitCode, String> {
    if !args.data_dir.is_dir() {
        return Err(format!(
            "data directory {} does not exist",
            args.data_dir.display()
        ));
    }
    let path = tunewright_schemas::DataLayout::new(&args.data_dir).event_log();
    let open = || LogReader::open(&path).map_err(|e| e.to_string());
    match &args.command {
        // Salvage reads the damaged file its own way (it may not open at all).
        ReplayCommand::Salvage(a) => salvage::run(&path, a),
        ReplayCommand::List(a) => list::run(&open()?, a),
        ReplayCommand::Verify => verify::run(&path),
        ReplayCommand::State(a) => state::run(&open()?, a),
        ReplayCommand::Stats(a) => stats::run(&open()?, a),
    }
}
