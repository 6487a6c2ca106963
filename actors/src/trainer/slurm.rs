//! A worker placed on a Slurm cluster: each run is one batch job submitted with
//! `sbatch --parsable` (argument vector, never a shell string: the batch script is the worker's
//! argv, each argument quoted), named after the job. Its stdout, which Slurm writes to a file on
//! the shared directory, is read as the protocol lines; stop commands are appended to a control
//! file the worker reads; `scontrol show job -o` says when and how the batch job ended, and
//! `scancel` kills it. The Slurm job id is recorded as soon as it is known (a `placement` note).
//! How the end maps to an outcome, the worker's lease and a restarted service: docs/launchers.md.

use std::collections::BTreeMap;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::time::Duration;

use tokio::process::Command;
use tunewright_schemas::worker::{WorkerCommand, WorkerLine};
use tunewright_schemas::{ctx, ErrorCode, Failure};

use super::process::{LineHandler, Reading, WorkerEnd, WorkerLauncher};
use super::watchdog::{Stall, StartupLoad};
use crate::executor::{StopRequest, StopSignal};

/// Where and how batch jobs are submitted.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SlurmConfig {
    /// `--partition` (Slurm's default partition when none).
    pub partition: Option<String>,
    /// `--account`.
    pub account: Option<String>,
    /// `--time` (Slurm's forms: `MM`, `HH:MM:SS`, `D-HH`, ...).
    pub time_limit: Option<String>,
    /// `--gres` (e.g. `gpu:1`).
    pub gres: Option<String>,
    /// Further `sbatch` options, each one argument (e.g. `--qos=high`).
    pub extra: Vec<String>,
    /// How long a batch job may stay pending before it is cancelled and the job fails
    /// `JOB_TIMEOUT` with Slurm's reason (`None`: forever).
    pub pending_timeout: Option<Duration>,
}

/// How often the output file and the batch job's state are looked at.
const POLL: Duration = Duration::from_millis(250);
/// The batch job's state is asked of Slurm every this many polls.
const STATE_EVERY: u32 = 4;
/// The control file's lease is renewed every this many polls (the worker stops as orphaned
/// when it is 30 s old: `tunewright-worker`'s `control::LEASE`).
const RENEW_EVERY: u32 = 8;

/// What `scontrol show job -o` says of a batch job.
#[derive(Debug, Clone, PartialEq)]
pub struct SlurmJobState {
    /// `JobState`, e.g. `RUNNING`, `COMPLETED`, `CANCELLED`.
    pub state: String,
    /// `Reason` (`None` is Slurm's word for none).
    pub reason: String,
    /// `ExitCode` as `code:signal`.
    pub exit_code: String,
}

impl SlurmJobState {
    /// Parse one line of `scontrol show job -o` (space-separated `Key=Value` pairs).
    pub fn parse(line: &str) -> Option<SlurmJobState> {
        let fields: BTreeMap<&str, &str> = line
            .split_whitespace()
            .filter_map(|kv| kv.split_once('='))
            .collect();
        Some(SlurmJobState {
            state: fields.get("JobState")?.to_string(),
            reason: fields.get("Reason").unwrap_or(&"None").to_string(),
            exit_code: fields.get("ExitCode").unwrap_or(&"0:0").to_string(),
        })
    }

    /// Whether the batch job is over (not pending, running, requeued or being suspended).
    pub fn is_final(&self) -> bool {
        !matches!(
            self.state.as_str(),
            "PENDING"
                | "RUNNING"
                | "CONFIGURING"
                | "COMPLETING"
                | "REQUEUED"
                | "REQUEUE_HOLD"
                | "REQUEUE_FED"
                | "RESIZING"
                | "SUSPENDED"
                | "STOPPED"
                | "SIGNALING"
                | "STAGE_OUT"
        )
    }

    /// How it ended, in words that name Slurm's state (what a failure record shows).
    pub fn describe(&self, id: &str) -> String {
        let reason = if self.reason == "None" {
            String::new()
        } else {
            format!(", reason {}", self.reason)
        };
        format!(
            "Slurm batch job {id} ended {} (exit code {}{reason})",
            self.state, self.exit_code
        )
    }
}

/// The files of one batch job, beside the worker's spec on the shared directory.
struct Files {
    dir: PathBuf,
    script: PathBuf,
    out: PathBuf,
    err: PathBuf,
    control: PathBuf,
}

impl Files {
    fn of(spec: &Path) -> Files {
        Files {
            dir: spec.parent().map(Path::to_path_buf).unwrap_or_default(),
            script: spec.with_extension("slurm.sh"),
            out: spec.with_extension("slurm.out"),
            err: spec.with_extension("slurm.err"),
            control: spec.with_extension("control"),
        }
    }
}

/// The batch script: the worker's argv, each argument quoted for the shell that runs it.
fn script(argv: &[String]) -> Result<String, String> {
    let quoted = shlex::try_join(argv.iter().map(String::as_str))
        .map_err(|e| format!("the worker's command cannot be quoted: {e}"))?;
    Ok(format!("#!/bin/sh\nexec {quoted}\n"))
}

/// `sbatch --parsable ...`: the new batch job's id.
async fn submit(
    config: &SlurmConfig,
    name: &str,
    files: &Files,
    argv: &[String],
) -> Result<String, String> {
    for f in [&files.out, &files.err, &files.control] {
        let _ = std::fs::remove_file(f);
    }
    let script = script(argv)?;
    std::fs::write(&files.control, b"")
        .and_then(|()| std::fs::write(&files.script, script))
        .map_err(|e| format!("cannot write {}: {e}", files.script.display()))?;
    let mut cmd = Command::new("sbatch");
    cmd.arg("--parsable")
        .arg(format!("--job-name={name}"))
        .arg(format!("--output={}", files.out.display()))
        .arg(format!("--error={}", files.err.display()))
        .arg(format!("--chdir={}", files.dir.display()))
        .arg("--no-requeue");
    if let Some(p) = &config.partition {
        cmd.arg(format!("--partition={p}"));
    }
    if let Some(a) = &config.account {
        cmd.arg(format!("--account={a}"));
    }
    if let Some(t) = &config.time_limit {
        cmd.arg(format!("--time={t}"));
    }
    if let Some(g) = &config.gres {
        cmd.arg(format!("--gres={g}"));
    }
    cmd.args(&config.extra).arg(&files.script);
    let out = cmd
        .output()
        .await
        .map_err(|e| format!("sbatch could not be run: {e}"))?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    // `--parsable` prints `id` or `id;cluster`.
    let id = stdout.trim().split(';').next().unwrap_or("").to_string();
    if !out.status.success() || id.is_empty() || !id.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!(
            "sbatch refused the job: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    Ok(id)
}

/// The batch jobs named `name` that Slurm still has pending or running.
async fn active(name: &str) -> Result<Vec<String>, String> {
    let out = Command::new("squeue")
        .args(["--noheader", "--format=%i", "--name", name])
        .output()
        .await
        .map_err(|e| format!("squeue could not be run: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "squeue failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    Ok(String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .map(str::to_string)
        .collect())
}

/// A batch job of this job left running by a service that died (its worker keeps training:
/// it is not the service's child) is cancelled, and its end awaited, before a new one is
/// placed, so two workers never write the same job's checkpoints. The new run resumes from
/// the last checkpoint the log recorded.
async fn cancel_leftovers(name: &str) -> Result<(), String> {
    let left = active(name).await?;
    if left.is_empty() {
        return Ok(());
    }
    tracing::warn!(?left, %name, "batch jobs of this job are still in Slurm; cancelling them before placing a new one");
    for id in &left {
        cancel(id).await;
    }
    for _ in 0..240 {
        if active(name).await?.is_empty() {
            return Ok(());
        }
        tokio::time::sleep(POLL).await;
    }
    Err(format!(
        "the batch jobs {} of {name} did not end within a minute of scancel",
        left.join(", ")
    ))
}

/// The batch job's state; `None` when Slurm could not be asked this time.
async fn state(id: &str) -> Option<SlurmJobState> {
    let out = Command::new("scontrol")
        .args(["show", "job", "-o", id])
        .output()
        .await
        .ok()?;
    if !out.status.success() {
        return None;
    }
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .find_map(SlurmJobState::parse)
}

async fn cancel(id: &str) {
    if let Err(e) = Command::new("scancel").arg(id).status().await {
        tracing::warn!(slurm_job = id, error = %e, "scancel could not be run");
    }
}

/// Append a stop command to the control file the worker reads.
fn send(control: &Path, r: StopRequest) {
    let cmd = match r {
        StopRequest::Cancel => WorkerCommand::Cancel,
        StopRequest::Shutdown => WorkerCommand::CheckpointAndStop,
    };
    command(control, cmd);
}

/// Append a command to the control file the worker reads.
fn command(control: &Path, cmd: WorkerCommand) {
    let appended = std::fs::OpenOptions::new()
        .append(true)
        .open(control)
        .and_then(|mut f| {
            std::io::Write::write_all(&mut f, format!("{}\n", cmd.to_line()).as_bytes())
        });
    if let Err(e) = appended {
        tracing::warn!(file = %control.display(), error = %e, "a command for the worker could not be written");
    }
}

/// Hand one line to the handler (which records it); a recorded checkpoint is acknowledged to
/// the worker, which then may prune the ones before it (never this one).
async fn take(
    reading: &mut Reading,
    handler: &mut dyn LineHandler,
    control: &Path,
    raw: String,
) -> Result<(), Failure> {
    let parsed = reading.line(raw);
    handler.line(&parsed).await?;
    if let WorkerLine::Checkpoint { step, .. } = parsed {
        command(control, WorkerCommand::Recorded { step });
    }
    Ok(())
}

/// A batch job that Slurm kept pending past the limit: cancelled, and the job fails
/// `JOB_TIMEOUT` with Slurm's reason (e.g. `Resources`, `Priority`, `ReqNodeNotAvail`).
fn pending_too_long(name: &str, id: &str, limit: Duration, reason: &str) -> Failure {
    Failure::new(
        ErrorCode::JobTimeout,
        ctx! {
            "job_id" => name.strip_prefix("tunewright-").unwrap_or(name),
            "timeout_secs" => limit.as_secs(),
            "slurm_job_id" => id,
            "slurm_reason" => reason,
            "reason" => format!("the Slurm batch job {id} was still pending after {} s (Slurm's reason: {reason})", limit.as_secs()),
        },
    )
}

/// `tunewright_slurm_batch_jobs_followed`: batch jobs this service follows now (the guard
/// counts one from placement until the run returns, however it returns).
struct RunningGauge;

impl RunningGauge {
    fn new() -> Self {
        metrics::gauge!("tunewright_slurm_batch_jobs_followed").increment(1.0);
        RunningGauge
    }
}

impl Drop for RunningGauge {
    fn drop(&mut self) {
        metrics::gauge!("tunewright_slurm_batch_jobs_followed").decrement(1.0);
    }
}

/// Renew the worker's lease on the control file (its modification time).
fn renew(control: &Path) {
    let renewed = std::fs::OpenOptions::new()
        .append(true)
        .open(control)
        .and_then(|f| f.set_modified(std::time::SystemTime::now()));
    if let Err(e) = renewed {
        tracing::warn!(file = %control.display(), error = %e, "the worker's lease could not be renewed");
    }
}

/// Complete lines appended to a file since the last read.
#[derive(Default)]
struct Tail {
    offset: u64,
    partial: String,
}

impl Tail {
    fn read(&mut self, path: &Path) -> Vec<String> {
        let Ok(mut f) = std::fs::File::open(path) else {
            return Vec::new();
        };
        let mut bytes = Vec::new();
        if f.seek(SeekFrom::Start(self.offset)).is_err() || f.read_to_end(&mut bytes).is_err() {
            return Vec::new();
        }
        self.offset += bytes.len() as u64;
        self.partial.push_str(&String::from_utf8_lossy(&bytes));
        let mut lines: Vec<String> = self.partial.split('\n').map(str::to_string).collect();
        self.partial = lines.pop().unwrap_or_default();
        lines
    }
}

/// Run one worker as a Slurm batch job to its end.
pub async fn run(
    launcher: &WorkerLauncher,
    config: &SlurmConfig,
    sub: &str,
    spec: &Path,
    load: StartupLoad,
    mut stop: StopSignal,
    handler: &mut dyn LineHandler,
) -> Result<WorkerEnd, Failure> {
    let files = Files::of(spec);
    let mut argv = vec![
        launcher.binary.display().to_string(),
        sub.to_string(),
        "--spec".to_string(),
        spec.display().to_string(),
    ];
    if sub == "train" {
        argv.extend([
            "--control-file".to_string(),
            files.control.display().to_string(),
        ]);
    }
    let name = format!(
        "tunewright-{}",
        spec.parent()
            .and_then(|d| d.file_name())
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| sub.to_string())
    );
    if let Err(reason) = cancel_leftovers(&name).await {
        return Ok(WorkerEnd::SpawnFailed(reason));
    }
    let id = match submit(config, &name, &files, &argv).await {
        Ok(id) => id,
        Err(reason) => return Ok(WorkerEnd::SpawnFailed(reason)),
    };
    tracing::info!(slurm_job = %id, %name, "worker placed through Slurm");
    metrics::counter!("tunewright_slurm_batch_jobs_submitted_total").increment(1);
    let _running = RunningGauge::new();
    handler
        .line(&WorkerLine::Note {
            topic: "placement".into(),
            data: serde_json::json!({
                "launcher": "slurm",
                "slurm_job_id": id,
                "job_name": name,
                "partition": config.partition,
            }),
        })
        .await?;

    let placed = std::time::Instant::now();
    let mut reading = Reading::new(launcher.stall, load, stop.requested());
    // A stop asked for is sent to the worker, which gets its grace before `scancel`.
    let ask = |r: StopRequest| {
        send(&files.control, r);
        Some(tokio::time::Instant::now() + launcher.grace(r))
    };
    let mut kill_at = reading.requested.and_then(ask);
    let (mut out, mut err) = (Tail::default(), Tail::default());
    let mut stalled: Option<Stall> = None;
    let mut polls = 0u32;
    let ended = loop {
        for l in out.read(&files.out) {
            take(&mut reading, handler, &files.control, l).await?;
        }
        for l in err.read(&files.err) {
            super::process::push_once(&mut reading.tail, l);
        }
        if polls.is_multiple_of(STATE_EVERY) {
            match state(&id).await {
                Some(s) if s.is_final() => break s,
                Some(s) if s.state == "PENDING" => {
                    if let Some(limit) = config.pending_timeout.filter(|l| placed.elapsed() > *l) {
                        cancel(&id).await;
                        return Err(pending_too_long(&name, &id, limit, &s.reason));
                    }
                }
                _ => {}
            }
        }
        if polls.is_multiple_of(RENEW_EVERY) {
            renew(&files.control);
        }
        polls = polls.wrapping_add(1);
        let now = tokio::time::Instant::now();
        if kill_at.is_some_and(|t| now >= t) {
            cancel(&id).await;
            kill_at = None;
        }
        if stalled.is_none() && reading.requested.is_none() && now >= reading.watchdog.deadline() {
            let stall = reading.watchdog.stall();
            tracing::warn!(slurm_job = %id, stage = stall.stage, "the worker made no progress within its bound; cancelling its batch job");
            stalled = Some(stall);
            cancel(&id).await;
        }
        tokio::select! {
            _ = tokio::time::sleep(POLL) => {}
            // Returns at once when a stop is already requested.
            r = stop.wait(), if reading.requested.is_none() => {
                reading.requested = Some(r);
                kill_at = ask(r);
            }
        }
    };
    // What the worker wrote before it ended (Slurm has closed the files by now).
    for l in out.read(&files.out) {
        take(&mut reading, handler, &files.control, l).await?;
    }
    if !out.partial.is_empty() {
        let last = std::mem::take(&mut out.partial);
        take(&mut reading, handler, &files.control, last).await?;
    }
    for l in err.read(&files.err) {
        super::process::push_once(&mut reading.tail, l);
    }
    metrics::counter!("tunewright_slurm_batch_jobs_ended_total", "state" => ended.state.clone())
        .increment(1);
    let success = ended.state == "COMPLETED";
    Ok(reading.conclude(success, ended.describe(&id), stalled))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scontrol_lines_are_read_as_their_state_reason_and_exit_code() {
        let s = SlurmJobState::parse(
            "JobId=12 JobName=tw UserId=root(0) JobState=FAILED Reason=NonZeroExitCode Dependency=(null) Restarts=0 ExitCode=3:0 RunTime=00:00:01",
        )
        .unwrap();
        assert_eq!(s.state, "FAILED");
        assert_eq!(s.reason, "NonZeroExitCode");
        assert_eq!(s.exit_code, "3:0");
        assert!(s.is_final());
        assert_eq!(
            s.describe("12"),
            "Slurm batch job 12 ended FAILED (exit code 3:0, reason NonZeroExitCode)"
        );
        let running =
            SlurmJobState::parse("JobId=13 JobState=RUNNING Reason=None ExitCode=0:0").unwrap();
        assert!(!running.is_final());
        assert!(SlurmJobState::parse("slurm_load_jobs error: Invalid job id specified").is_none());
    }

    #[test]
    fn the_batch_script_is_the_argv_quoted() {
        let s = script(&[
            "/opt/tw bin/tunewright-worker".into(),
            "train".into(),
            "--spec".into(),
            "/d/it's.json".into(),
        ])
        .unwrap();
        assert_eq!(
            s,
            "#!/bin/sh\nexec '/opt/tw bin/tunewright-worker' train --spec \"/d/it's.json\"\n"
        );
    }

    #[test]
    fn a_tail_gives_complete_lines_once() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("out");
        let mut t = Tail::default();
        assert!(t.read(&p).is_empty());
        std::fs::write(&p, "a\nb").unwrap();
        assert_eq!(t.read(&p), vec!["a".to_string()]);
        std::fs::write(&p, "a\nbc\n").unwrap();
        assert_eq!(t.read(&p), vec!["bc".to_string()]);
        assert!(t.read(&p).is_empty());
    }
}
