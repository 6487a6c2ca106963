//! `tunewright serve`'s options: where the data lives, the listener, limits, timeouts.

use std::net::SocketAddr;
use std::path::PathBuf;

#[derive(Debug, clap::Args)]
pub struct ServeArgs {
    /// Where the event log, uploads, checkpoints, exports and logs live.
    #[arg(long, default_value = "./tunewright-data", env = "TUNEWRIGHT_DATA_DIR")]
    pub data_dir: PathBuf,
    /// Address of the HTTP admin endpoint. Anything but loopback needs a token.
    #[arg(long, default_value = "127.0.0.1:7340", env = "TUNEWRIGHT_LISTEN")]
    pub listen: SocketAddr,
    /// File holding the bearer token required on `/api` routes.
    #[arg(long, env = "TUNEWRIGHT_TOKEN_FILE")]
    pub token_file: Option<PathBuf>,
    /// Where daily log files go (default: DATA_DIR/logs).
    #[arg(long, env = "TUNEWRIGHT_LOG_DIR")]
    pub log_dir: Option<PathBuf>,
    /// Largest document upload, in MB.
    #[arg(long, default_value_t = 50.0)]
    pub max_file_mb: f64,
    /// Most document bytes one project may hold, in MB.
    #[arg(long, default_value_t = 500.0)]
    pub max_project_files_mb: f64,
    /// Largest dataset upload, in MB.
    #[arg(long, default_value_t = 200.0)]
    pub max_dataset_mb: f64,
    /// Largest JSON request body, in KB.
    #[arg(long, default_value_t = 1024)]
    pub max_json_kb: u64,
    /// Time a request may take, in seconds.
    #[arg(long, default_value_t = 30)]
    pub request_timeout_secs: u64,
    /// Time an upload may take, in seconds.
    #[arg(long, default_value_t = 600)]
    pub upload_timeout_secs: u64,
    /// After SIGTERM, seconds during which the endpoint still answers (503 for work and
    /// `/ready`) before it stops accepting connections, so clients and balancers see the stop.
    #[arg(long, default_value_t = 1)]
    pub drain_secs: u64,
    /// Bound on a clean stop after SIGTERM, in seconds (keep under systemd's TimeoutStopSec).
    #[arg(long, default_value_t = 60)]
    pub stop_timeout_secs: u64,
    /// After a failed append, seconds the event log may keep failing to reopen before the
    /// service exits non-zero for its supervisor (a full disk alone does not count: the service
    /// stays up read-only, `/ready` 503, until space is back). See docs/storage.md.
    #[arg(long, default_value_t = 300)]
    pub log_reopen_timeout_secs: u64,
}

impl ServeArgs {
    pub fn mb(v: f64) -> u64 {
        (v.max(0.0) * 1024.0 * 1024.0) as u64
    }
}
