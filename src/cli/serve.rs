//! `tunewright serve`: run the service: open and replay the event log, start the actors and
//! the HTTP admin endpoint, and stop cleanly on SIGTERM/SIGINT (see `service`).

use std::process::ExitCode;

pub use crate::service::args::ServeArgs;

pub fn run(args: ServeArgs) -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("tunewright serve: cannot start the async runtime: {e}");
            return ExitCode::from(1);
        }
    };
    let code = runtime.block_on(crate::service::serve(args));
    // Actors or blocking reads still winding down must not hold the exit.
    runtime.shutdown_timeout(std::time::Duration::from_secs(2));
    code
}
