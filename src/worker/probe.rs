//! `tunewright-worker probe`: the hardware report as one JSON object on stdout, so the service
//! learns about GPUs without initialising CUDA in its own process.

use std::process::ExitCode;

pub fn run() -> ExitCode {
    let info = tunewright_trainer::device::probe();
    match serde_json::to_string(&info) {
        Ok(s) => {
            println!("{s}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("tunewright-worker probe: {e}");
            ExitCode::FAILURE
        }
    }
}
