//! `tunewright replay`: the event replay tool. Opens the log read-only (never writes to it,
//! also while the service runs) and lists, verifies, folds or summarises it.

use std::process::ExitCode;

use crate::replay;
pub use crate::replay::args::ReplayArgs;

pub fn run(args: ReplayArgs) -> ExitCode {
    // A damaged file must give a message, never a panic trace: redb may panic on some damage.
    std::panic::set_hook(Box::new(|_| {}));
    let outcome = std::panic::catch_unwind(|| replay::run(&args));
    let _ = std::panic::take_hook();
    match outcome {
        Ok(Ok(code)) => code,
        Ok(Err(e)) => {
            eprintln!("tunewright replay: {e}");
            ExitCode::from(1)
        }
        Err(panic) => {
            let what = panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_else(|| "unknown fault".into());
            if what.starts_with("failed printing to stdout") {
                // The reader went away (`replay list | head`): not a fault of the log.
                return ExitCode::SUCCESS;
            }
            eprintln!("tunewright replay: the event log could not be read (damaged file?): {what}");
            ExitCode::from(1)
        }
    }
}
