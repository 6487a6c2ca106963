//! `tunewright serve`: run the service: open and replay the event log, start the actors and
//! the HTTP admin endpoint, and stop cleanly on SIGTERM/SIGINT.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Debug, clap::Args)]
pub struct ServeArgs {
    /// Where the event log, uploads, checkpoints and exports live.
    #[arg(long, default_value = "./tunewright-data", env = "TUNEWRIGHT_DATA_DIR")]
    pub data_dir: PathBuf,
    /// Address of the HTTP admin endpoint.
    #[arg(long, default_value = "127.0.0.1:7340", env = "TUNEWRIGHT_LISTEN")]
    pub listen: SocketAddr,
}

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
    match runtime.block_on(crate::service::serve(args)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("tunewright serve: {e}");
            ExitCode::from(1)
        }
    }
}
