//! One worker process: spawned from the worker binary with an argument vector (never a
//! shell) as a child of the service (a batch job on a Slurm cluster instead: `slurm.rs`), its stdout read as protocol lines, its stdin used for stop commands, its end mapped
//! to an outcome. A worker that dies without a `failure` line (panic, segfault, SIGKILL) is
//! reported with its signal or exit status and the last log lines it wrote. A worker that
//! stays silent past its watchdog's bound (`watchdog.rs`) is killed and reported as stalled; a
//! cancelled worker that has not stopped after a short grace is killed.

use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::process::{ChildStdin, Command};
use tunewright_schemas::worker::{WorkerCommand, WorkerLine};
use tunewright_schemas::Failure;

use super::watchdog::{Stall, StallBounds, StartupLoad, Watchdog};
use crate::executor::{StopRequest, StopSignal};

/// How many log lines a failure record keeps.
pub const LOG_TAIL: usize = 40;

/// The environment variable carrying the service's pid to its workers, so a worker started
/// just as the service died notices that its parent is not the service (see `cli::worker`).
pub const PARENT_PID_ENV: &str = "TUNEWRIGHT_WORKER_PARENT_PID";

/// How to start a worker.
#[derive(Debug, Clone)]
pub struct WorkerLauncher {
    /// The `tunewright` binary (normally `std::env::current_exe()`).
    pub binary: PathBuf,
    /// How long a worker may take to checkpoint and stop for a shutdown before it is killed.
    pub stop_grace: Duration,
    /// How long a cancelled worker may take to stop before it is killed.
    pub cancel_grace: Duration,
    /// The progress watchdog's limits.
    pub stall: StallBounds,
    /// Where the worker runs.
    pub placement: Placement,
}

/// Where a worker runs: a child process of the service, or a batch job on a Slurm cluster.
#[derive(Debug, Clone, Default, PartialEq)]
pub enum Placement {
    #[default]
    Local,
    Slurm(super::slurm::SlurmConfig),
}

impl Placement {
    /// What the hardware endpoint shows of it.
    pub fn describe(&self) -> serde_json::Value {
        match self {
            Placement::Local => serde_json::json!({"kind": "local"}),
            Placement::Slurm(c) => serde_json::json!({
                "kind": "slurm",
                "partition": c.partition,
                "account": c.account,
                "time_limit": c.time_limit,
                "gres": c.gres,
                "extra_options": c.extra,
                "pending_timeout_secs": c.pending_timeout.map(|d| d.as_secs()),
            }),
        }
    }
}

/// How a worker run ended.
#[derive(Debug)]
pub enum WorkerEnd {
    Result(serde_json::Value),
    /// The worker reported a failure (with its catalog code).
    Failed(Failure),
    /// The worker stopped on request at `step`.
    Stopped {
        step: u64,
        checkpointed: bool,
        request: StopRequest,
    },
    /// The worker died without saying why.
    Died {
        status: String,
        log_tail: Vec<String>,
    },
    /// The worker sent nothing within its watchdog's bound and was killed.
    Stalled {
        stall: Stall,
        log_tail: Vec<String>,
    },
    /// The worker could not be started.
    SpawnFailed(String),
}

/// Receives every protocol line as it arrives (progress, notes, checkpoints).
#[async_trait::async_trait]
pub trait LineHandler: Send {
    async fn line(&mut self, line: &WorkerLine) -> Result<(), Failure>;
}

impl WorkerLauncher {
    pub fn new(binary: PathBuf) -> Self {
        WorkerLauncher {
            binary,
            stop_grace: Duration::from_secs(60),
            cancel_grace: Duration::from_secs(10),
            stall: StallBounds::default(),
            placement: Placement::Local,
        }
    }

    /// Run `tunewright-worker <sub> --spec <spec>` to its end; `load` (what it reads before its
    /// first step) sets its watchdog's start-up allowances.
    pub async fn run(
        &self,
        sub: &str,
        spec: &Path,
        load: StartupLoad,
        mut stop: StopSignal,
        handler: &mut dyn LineHandler,
    ) -> Result<WorkerEnd, Failure> {
        if let Placement::Slurm(config) = &self.placement {
            return super::slurm::run(self, config, sub, spec, load, stop, handler).await;
        }
        let mut cmd = Command::new(&self.binary);
        cmd.arg(sub)
            .arg("--spec")
            .arg(spec)
            .env(PARENT_PID_ENV, std::process::id().to_string())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        let mut child = match cmd.spawn() {
            Ok(c) => c,
            Err(e) => {
                return Ok(WorkerEnd::SpawnFailed(format!(
                    "{}: {e}",
                    self.binary.display()
                )))
            }
        };
        let mut stdin = child.stdin.take();
        let stdout = child.stdout.take();
        let stderr = child.stderr.take();
        // Stderr: kept as log tail via a channel so a chatty worker never blocks.
        let (err_tx, mut err_rx) = tokio::sync::mpsc::unbounded_channel::<String>();
        let stderr_task = stderr.map(|stderr| {
            tokio::spawn(async move {
                let mut lines = BufReader::new(stderr).lines();
                while let Ok(Some(l)) = lines.next_line().await {
                    if err_tx.send(l).is_err() {
                        break;
                    }
                }
            })
        });
        let Some(stdout) = stdout else {
            return Ok(WorkerEnd::SpawnFailed("the worker has no stdout".into()));
        };
        let mut lines = BufReader::new(stdout).lines();
        let mut reading = Reading::new(self.stall, load, stop.requested());
        let mut kill_at: Option<tokio::time::Instant> = None;
        if let Some(r) = reading.requested {
            send(&mut stdin, r).await;
            kill_at = Some(tokio::time::Instant::now() + self.grace(r));
        }
        let mut stalled: Option<Stall> = None;
        loop {
            let deadline = reading.watchdog.deadline();
            let kill_sleep = async {
                match kill_at {
                    Some(t) => tokio::time::sleep_until(t).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                line = lines.next_line() => match line {
                    Ok(Some(l)) => {
                        let parsed = reading.line(l);
                        handler.line(&parsed).await?;
                    }
                    _ => break,
                },
                Some(l) = err_rx.recv() => push_once(&mut reading.tail, l),
                r = stop.wait(), if reading.requested.is_none() => {
                    reading.requested = Some(r);
                    send(&mut stdin, r).await;
                    kill_at = Some(tokio::time::Instant::now() + self.grace(r));
                }
                _ = kill_sleep => {
                    // SIGKILL also ends a stopped (SIGSTOP) process.
                    let _ = child.start_kill();
                    kill_at = None;
                }
                _ = tokio::time::sleep_until(deadline), if stalled.is_none() && reading.requested.is_none() => {
                    let stall = reading.watchdog.stall();
                    tracing::warn!(
                        silent_secs = stall.silent_for.as_secs(),
                        bound_secs = stall.bound.as_secs(),
                        stage = stall.stage,
                        "the worker made no progress within its bound; killing it"
                    );
                    stalled = Some(stall);
                    let _ = child.start_kill();
                }
            }
        }
        drop(stdin);
        let status = child.wait().await;
        // Stderr ends with the process (a grandchild holding it open gets a bounded wait).
        if let Some(task) = stderr_task {
            let _ = tokio::time::timeout(Duration::from_secs(2), task).await;
        }
        while let Ok(l) = err_rx.try_recv() {
            push_once(&mut reading.tail, l);
        }
        Ok(match status {
            Ok(s) => reading.conclude(s.success(), describe(s), stalled),
            Err(e) => reading.conclude(false, format!("wait failed: {e}"), stalled),
        })
    }
}

/// What a run has learnt from its worker's lines: how it ended (if it said), the stop asked
/// of it, the tail of its log and its watchdog. Shared by every placement of a worker.
pub(super) struct Reading {
    pub end: Option<WorkerEnd>,
    pub requested: Option<StopRequest>,
    pub tail: VecDeque<String>,
    pub watchdog: Watchdog,
}

impl Reading {
    pub fn new(stall: StallBounds, load: StartupLoad, requested: Option<StopRequest>) -> Self {
        Reading {
            end: None,
            requested,
            tail: VecDeque::new(),
            watchdog: Watchdog::new(stall, load),
        }
    }

    /// One line of the worker's stdout: parsed (anything else is a log line) and noted.
    pub fn line(&mut self, raw: String) -> WorkerLine {
        let parsed = WorkerLine::parse(&raw).unwrap_or(WorkerLine::Log { line: raw });
        self.watchdog.saw(&parsed);
        match &parsed {
            WorkerLine::Log { line } => push_once(&mut self.tail, line.clone()),
            WorkerLine::Result { value } => self.end = Some(WorkerEnd::Result(value.clone())),
            // A stop on request is reported as such, not as the failure line that follows it.
            WorkerLine::Failure { failure }
                if !matches!(self.end, Some(WorkerEnd::Stopped { .. })) =>
            {
                self.end = Some(WorkerEnd::Failed(failure.clone()));
            }
            WorkerLine::Stopped { step, checkpointed } => {
                self.end = Some(WorkerEnd::Stopped {
                    step: *step,
                    checkpointed: *checkpointed,
                    request: self.requested.unwrap_or(StopRequest::Shutdown),
                })
            }
            _ => {}
        }
        parsed
    }

    /// The run's outcome, once the worker is gone: `success` and `status` say how it ended.
    pub fn conclude(self, success: bool, status: String, stalled: Option<Stall>) -> WorkerEnd {
        let log_tail: Vec<String> = self.tail.into_iter().collect();
        if let Some(stall) = stalled {
            return WorkerEnd::Stalled { stall, log_tail };
        }
        match self.end {
            Some(WorkerEnd::Failed(mut f)) => {
                if f.log_tail.is_empty() {
                    f.log_tail = log_tail;
                }
                WorkerEnd::Failed(f)
            }
            Some(WorkerEnd::Result(v)) if success => WorkerEnd::Result(v),
            Some(e @ WorkerEnd::Stopped { .. }) => e,
            _ => WorkerEnd::Died { status, log_tail },
        }
    }
}

impl WorkerLauncher {
    pub(super) fn grace(&self, r: StopRequest) -> Duration {
        match r {
            StopRequest::Cancel => self.cancel_grace,
            StopRequest::Shutdown => self.stop_grace,
        }
    }
}

async fn send(stdin: &mut Option<ChildStdin>, r: StopRequest) {
    let cmd = match r {
        StopRequest::Cancel => WorkerCommand::Cancel,
        StopRequest::Shutdown => WorkerCommand::CheckpointAndStop,
    };
    if let Some(s) = stdin.as_mut() {
        let line = format!("{}\n", cmd.to_line());
        if s.write_all(line.as_bytes()).await.is_err() || s.flush().await.is_err() {
            *stdin = None;
        }
    }
}

/// A log line, unless the recent tail has it: the worker writes its own log lines both to
/// stderr and as `log` lines on stdout, and the tail should hold each once (a panic or a native
/// library's message reaches stderr only, and is kept).
pub(super) fn push_once(tail: &mut VecDeque<String>, line: String) {
    if !tail.iter().rev().take(8).any(|l| *l == line) {
        push(tail, line);
    }
}

fn push(tail: &mut VecDeque<String>, line: String) {
    if tail.len() == LOG_TAIL {
        tail.pop_front();
    }
    tail.push_back(line);
}

/// "killed by signal 9 (SIGKILL)" or "exited with status 101".
pub fn describe(s: ExitStatus) -> String {
    #[cfg(unix)]
    {
        use std::os::unix::process::ExitStatusExt;
        if let Some(sig) = s.signal() {
            let name = match sig {
                6 => " (SIGABRT)",
                9 => " (SIGKILL)",
                11 => " (SIGSEGV)",
                15 => " (SIGTERM)",
                _ => "",
            };
            return format!("killed by signal {sig}{name}");
        }
    }
    match s.code() {
        Some(c) => format!("exited with status {c}"),
        None => "ended without a status".into(),
    }
}
