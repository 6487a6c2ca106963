//! Events of a job's stream: creation, attempts, retries, outcome, progress, artifacts.

use serde::Serialize;
use tunewright_schemas::{ErrorCode, Failure, JobId, JobKind, JobStatus, Json, ProjectId};

#[derive(Debug, Clone, PartialEq, Serialize, bincode::Encode, bincode::Decode)]
pub struct JobCreated {
    pub job_id: JobId,
    pub project_id: ProjectId,
    pub kind: JobKind,
    pub config: Json,
    /// Retries the kind's policy allows (docs/jobs.md), fixed when the job was created.
    pub max_retries: u32,
    /// A job still queued after this long fails with `JOB_TIMEOUT`.
    pub queue_timeout_ms: u64,
}

/// A worker took the job: status `running`. Attempts count from 1.
#[derive(Debug, Clone, PartialEq, Serialize, bincode::Encode, bincode::Decode)]
pub struct JobAttemptStarted {
    pub job_id: JobId,
    pub attempt: u32,
}

/// One attempt failed; `will_retry` says whether a `JobRetryScheduled` or `JobFailed` follows.
#[derive(Debug, Clone, PartialEq, Serialize, bincode::Encode, bincode::Decode)]
pub struct JobAttemptFailed {
    pub job_id: JobId,
    pub attempt: u32,
    pub failure: Failure,
    pub will_retry: bool,
}

/// Status `retrying` until `due_at_ms`, then the next attempt.
#[derive(Debug, Clone, PartialEq, Serialize, bincode::Encode, bincode::Decode)]
pub struct JobRetryScheduled {
    pub job_id: JobId,
    pub next_attempt: u32,
    pub delay_ms: u64,
    pub due_at_ms: i64,
    pub reason: ErrorCode,
}

#[derive(Debug, Clone, PartialEq, Serialize, bincode::Encode, bincode::Decode)]
pub struct JobSucceeded {
    pub job_id: JobId,
    pub attempt: u32,
    pub result: Json,
}

/// Final failure; the failure carries its analysis.
#[derive(Debug, Clone, PartialEq, Serialize, bincode::Encode, bincode::Decode)]
pub struct JobFailed {
    pub job_id: JobId,
    pub failure: Failure,
}

#[derive(Debug, Clone, PartialEq, Serialize, bincode::Encode, bincode::Decode)]
pub struct JobCancelled {
    pub job_id: JobId,
    pub from_status: JobStatus,
    pub reason: String,
}

/// The user asked a running attempt to stop; the job stays `cancelling` (holding its device
/// or slot) until the worker is gone, then `JobCancelled` follows.
#[derive(Debug, Clone, PartialEq, Serialize, bincode::Encode, bincode::Decode)]
pub struct JobCancelRequested {
    pub job_id: JobId,
    pub attempt: u32,
    pub reason: String,
}

/// The process running the job died (crash, kill, restart) while it was `running`.
#[derive(Debug, Clone, PartialEq, Serialize, bincode::Encode, bincode::Decode)]
pub struct JobInterrupted {
    pub job_id: JobId,
    pub attempt: u32,
    pub reason: String,
}

/// Progress of a running job, reported at a bounded rate.
#[derive(Debug, Clone, PartialEq, Serialize, bincode::Encode, bincode::Decode)]
pub struct JobProgress {
    pub job_id: JobId,
    /// e.g. `training`, `evaluation`, `generation`.
    pub phase: String,
    pub step: u64,
    pub total_steps: u64,
    pub loss: Option<f64>,
    pub learning_rate: Option<f64>,
    pub grad_norm: Option<f64>,
    pub tokens_per_sec: Option<f64>,
    pub memory_bytes: Option<u64>,
    /// Anything else the job reports (eval loss, chunks done, ...).
    pub extra: Json,
}

/// A structured fact about a job that is not a state change: pre-flight statistics
/// (examples dropped per reason), repair-step counters, memory estimates.
#[derive(Debug, Clone, PartialEq, Serialize, bincode::Encode, bincode::Decode)]
pub struct JobNote {
    pub job_id: JobId,
    /// e.g. `preflight`, `json_repair`, `memory_estimate`.
    pub topic: String,
    pub data: Json,
}

/// A file the job produced (adapter, merged weights, manifest, generated dataset).
#[derive(Debug, Clone, PartialEq, Serialize, bincode::Encode, bincode::Decode)]
pub struct ArtifactRecorded {
    pub job_id: JobId,
    pub name: String,
    /// Path relative to the data dir.
    pub path: String,
    pub sha256: String,
    pub size_bytes: u64,
}

impl JobCreated {
    pub const NAME: &'static str = "job_created";
}
impl JobAttemptStarted {
    pub const NAME: &'static str = "job_attempt_started";
}
impl JobAttemptFailed {
    pub const NAME: &'static str = "job_attempt_failed";
}
impl JobRetryScheduled {
    pub const NAME: &'static str = "job_retry_scheduled";
}
impl JobSucceeded {
    pub const NAME: &'static str = "job_succeeded";
}
impl JobFailed {
    pub const NAME: &'static str = "job_failed";
}
impl JobCancelled {
    pub const NAME: &'static str = "job_cancelled";
}
impl JobCancelRequested {
    pub const NAME: &'static str = "job_cancel_requested";
}
impl JobInterrupted {
    pub const NAME: &'static str = "job_interrupted";
}
impl JobProgress {
    pub const NAME: &'static str = "job_progress";
}
impl JobNote {
    pub const NAME: &'static str = "job_note";
}
impl ArtifactRecorded {
    pub const NAME: &'static str = "artifact_recorded";
}
