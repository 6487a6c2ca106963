//! The replay tool's core: open a log read-only and run one sub-command over it.

pub mod args;
pub mod list;
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
    let reader = LogReader::open(&path).map_err(|e| e.to_string())?;
    match &args.command {
        ReplayCommand::List(a) => list::run(&reader, a),
        ReplayCommand::Verify => verify::run(&reader),
        ReplayCommand::State(a) => state::run(&reader, a),
        ReplayCommand::Stats(a) => stats::run(&reader, a),
    }
}
