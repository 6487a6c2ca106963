//! `tunewright serve`'s options: where the data lives, the listener, limits, timeouts.

use std::net::SocketAddr;
use std::path::PathBuf;

#[derive(Debug, clap::Args)]
pub struct ServeArgs {
    /// Where the event log, uploads, checkpoints, exports and logs live.
    #[arg(long, default_value = "./tunewright-data", env = "TUNEWRIGHT_DATA_DIR")]
    pub data_dir: PathBuf,
    /// Address of the HTTP admin endpoint. Anything but loopback needs a token.
    /// An `IP:PORT` or `HOST:PORT` (`localhost:7340`); a host name is resolved once, at start.
    #[arg(long, default_value = "127.0.0.1:7340", env = "TUNEWRIGHT_LISTEN", value_parser = parse_listen)]
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
    /// The progress watchdog's floor: no worker is declared hung for a silence shorter than
    /// this, in seconds (docs/jobs.md, "The progress watchdog").
    #[arg(
        long,
        default_value_t = 120,
        env = "TUNEWRIGHT_WORKER_STALL_FLOOR_SECS"
    )]
    pub worker_stall_floor_secs: u64,
    /// The progress watchdog's ceiling: a worker silent this long is hung, in seconds.
    #[arg(
        long,
        default_value_t = 1800,
        env = "TUNEWRIGHT_WORKER_STALL_CEILING_SECS"
    )]
    pub worker_stall_ceiling_secs: u64,
    /// Most HTTP connections open at once; beyond it, a new connection closes the one that
    /// has been quiet longest (keep under the process's open-file limit).
    #[arg(long, default_value_t = 4096)]
    pub max_connections: usize,
    /// Seconds a client has to send a request's headers.
    #[arg(long, default_value_t = 10)]
    pub header_read_timeout_secs: u64,
    /// Seconds a connection may stay without a byte in either direction before it is closed.
    #[arg(long, default_value_t = 60)]
    pub idle_timeout_secs: u64,
    /// The worker binary that runs training, export, evaluation and the hardware probe
    /// (default: `tunewright-worker` beside this binary).
    #[arg(long, env = "TUNEWRIGHT_WORKER_BIN")]
    pub worker_bin: Option<std::path::PathBuf>,
    /// Where workers run: `local` (child processes of this service) or `slurm` (one batch job
    /// per run, submitted with sbatch; the data directory must be on storage the cluster's
    /// nodes share, at the same path).
    #[arg(long, value_enum, default_value_t = Launcher::Local, env = "TUNEWRIGHT_LAUNCHER")]
    pub launcher: Launcher,
    /// `--launcher slurm`: the partition (Slurm's default when unset).
    #[arg(long, env = "TUNEWRIGHT_SLURM_PARTITION")]
    pub slurm_partition: Option<String>,
    /// `--launcher slurm`: the account.
    #[arg(long, env = "TUNEWRIGHT_SLURM_ACCOUNT")]
    pub slurm_account: Option<String>,
    /// `--launcher slurm`: the time limit of each batch job (sbatch's `--time` forms).
    #[arg(long, env = "TUNEWRIGHT_SLURM_TIME")]
    pub slurm_time: Option<String>,
    /// `--launcher slurm`: generic resources per batch job (e.g. `gpu:1`).
    #[arg(long, env = "TUNEWRIGHT_SLURM_GRES")]
    pub slurm_gres: Option<String>,
    /// `--launcher slurm`: a further sbatch option, as one argument (repeatable), e.g.
    /// `--slurm-option=--qos=high`.
    #[arg(long = "slurm-option", allow_hyphen_values = true)]
    pub slurm_options: Vec<String>,
    /// `--launcher slurm`: seconds a batch job may stay pending before it is cancelled and its
    /// job fails `JOB_TIMEOUT` with Slurm's reason (0: wait forever).
    #[arg(
        long,
        default_value_t = 86_400,
        env = "TUNEWRIGHT_SLURM_PENDING_TIMEOUT_SECS"
    )]
    pub slurm_pending_timeout_secs: u64,
    /// Seconds a cancelled worker may take to stop before it is killed.
    #[arg(long, default_value_t = 10)]
    pub cancel_grace_secs: u64,
    /// After a failed append, seconds the event log may keep failing to reopen before the
    /// service exits non-zero for its supervisor (a full disk alone does not count: the service
    /// stays up read-only, `/ready` 503, until space is back). See docs/storage.md.
    #[arg(long, default_value_t = 300)]
    pub log_reopen_timeout_secs: u64,
}

/// `IP:PORT`, or `HOST:PORT` resolved to its first address (IPv4 first: `localhost` is
/// 127.0.0.1, which is what the loopback rule and most clients expect).
pub fn parse_listen(text: &str) -> Result<SocketAddr, String> {
    if let Ok(addr) = text.parse::<SocketAddr>() {
        return Ok(addr);
    }
    use std::net::ToSocketAddrs;
    let addrs: Vec<SocketAddr> = text
        .to_socket_addrs()
        .map_err(|e| format!("'{text}' is not an IP:PORT or HOST:PORT that resolves ({e})"))?
        .collect();
    addrs
        .iter()
        .find(|a| a.is_ipv4())
        .or_else(|| addrs.first())
        .copied()
        .ok_or_else(|| format!("'{text}' resolves to no address"))
}

impl ServeArgs {
    pub fn mb(v: f64) -> u64 {
        (v.max(0.0) * 1024.0 * 1024.0) as u64
    }

    /// Where workers run, from `--launcher` and the `--slurm-*` options.
    pub fn placement(&self) -> tunewright_actors::trainer::Placement {
        use tunewright_actors::trainer::{slurm::SlurmConfig, Placement};
        match self.launcher {
            Launcher::Local => Placement::Local,
            Launcher::Slurm => Placement::Slurm(SlurmConfig {
                partition: self.slurm_partition.clone(),
                account: self.slurm_account.clone(),
                time_limit: self.slurm_time.clone(),
                gres: self.slurm_gres.clone(),
                extra: self.slurm_options.clone(),
                pending_timeout: (self.slurm_pending_timeout_secs > 0)
                    .then(|| std::time::Duration::from_secs(self.slurm_pending_timeout_secs)),
            }),
        }
    }

    /// The worker binary: `--worker-bin`, else `tunewright-worker` beside this binary (where
    /// the build and `script/install` put it). With none there, a job that needs it fails with
    /// a catalog code whose detail names the path ("the worker could not be started"), and
    /// the hardware probe reports `GPU_PROBE_FAILED`.
    pub fn worker_binary(&self) -> std::path::PathBuf {
        if let Some(bin) = &self.worker_bin {
            return bin.clone();
        }
        let beside = std::env::current_exe()
            .ok()
            .and_then(|exe| exe.parent().map(|d| d.join(WORKER_BINARY)));
        beside.unwrap_or_else(|| WORKER_BINARY.into())
    }
}

/// Where workers run (`--launcher`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Launcher {
    Local,
    Slurm,
}

/// The worker binary's file name.
pub const WORKER_BINARY: &str = "tunewright-worker";

#[cfg(test)]
mod tests {
    use super::parse_listen;

    #[test]
    fn a_host_name_with_a_port_is_accepted_and_localhost_is_loopback() {
        let a = parse_listen("localhost:7341").unwrap();
        assert!(a.ip().is_loopback(), "{a}");
        assert_eq!(a.port(), 7341);
        assert_eq!(parse_listen("127.0.0.1:9").unwrap().port(), 9);
        assert!(parse_listen("localhost").is_err(), "a port is needed");
        assert!(parse_listen("no-such-host.invalid:80").is_err());
    }
}
