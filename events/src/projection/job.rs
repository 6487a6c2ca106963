//! The job read model and how job-stream events change it (the job state machine).

use std::collections::BTreeMap;

use serde::Serialize;
use tunewright_schemas::{Failure, JobId, JobKind, JobStatus, Json, ProjectId};

use super::project::DatasetView;
use crate::event::{Event, FileDigest};

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ProgressView {
    pub phase: String,
    pub step: u64,
    pub total_steps: u64,
    pub loss: Option<f64>,
    pub learning_rate: Option<f64>,
    pub grad_norm: Option<f64>,
    pub tokens_per_sec: Option<f64>,
    pub memory_bytes: Option<u64>,
    pub extra: Json,
    pub at_ms: i64,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CheckpointView {
    pub step: u64,
    pub dir: String,
    pub files: Vec<FileDigest>,
    /// Set when the checkpoint failed its hash check.
    pub rejected: Option<String>,
}

/// A generation chunk the job finished (its examples are in the job's chunk file).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ChunkDoneView {
    pub examples: u32,
    pub repair_step: String,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct JobView {
    pub id: JobId,
    pub project_id: ProjectId,
    pub kind: JobKind,
    pub status: JobStatus,
    pub config: Json,
    /// The config the next attempt runs with: `config` with the remedies recorded so far
    /// applied in order.
    pub effective_config: Json,
    /// Remedies applied so far (`TrainingRemediated` events).
    pub remedies: u32,
    /// Attempts started so far.
    pub attempts: u32,
    pub max_retries: u32,
    pub queue_timeout_ms: u64,
    /// Sequence number of the job's creation: the order of the queues.
    pub created_seq: u64,
    pub created_at_ms: i64,
    pub updated_at_ms: i64,
    /// When a `retrying` job's next attempt is due.
    pub retry_due_at_ms: Option<i64>,
    /// The final failure (status `failed`), with its analysis.
    pub error: Option<Failure>,
    /// Failures of earlier attempts, oldest first.
    pub attempt_failures: Vec<Failure>,
    pub result: Option<Json>,
    pub progress: Option<ProgressView>,
    pub checkpoints: Vec<CheckpointView>,
    pub resumed_from_step: Option<u64>,
    /// How often a running attempt was interrupted (process death).
    pub interruptions: u32,
    pub artifacts: BTreeMap<String, (String, String)>,
    /// Set when the job's project was deleted after the job finished.
    pub project_deleted: bool,
    /// Generation chunks finished so far, by chunk index.
    pub chunks_done: BTreeMap<u32, ChunkDoneView>,
    /// The dataset this job imported into its project, once it has.
    pub imported_dataset: Option<DatasetView>,
    /// The earlier training this one continues, and the step of its checkpoint it starts
    /// from (`None`: from step 0).
    pub resumed_from_job: Option<JobId>,
    pub resume_from_step: Option<u64>,
    /// Later trainings that continue this one.
    pub resumed_by_jobs: Vec<JobId>,
}

impl JobView {
    /// The newest checkpoint not rejected.
    pub fn last_good_checkpoint(&self) -> Option<&CheckpointView> {
        self.checkpoints.iter().rev().find(|c| c.rejected.is_none())
    }
}

pub(super) fn apply(
    jobs: &mut BTreeMap<JobId, JobView>,
    seq: u64,
    ts: i64,
    event: &Event,
) -> Option<String> {
    if let Event::JobCreated(e) = event {
        if jobs.contains_key(&e.job_id) {
            return Some(format!("job {} created twice", e.job_id));
        }
        jobs.insert(
            e.job_id,
            JobView {
                id: e.job_id,
                project_id: e.project_id,
                kind: e.kind,
                status: JobStatus::Queued,
                config: e.config.clone(),
                effective_config: e.config.clone(),
                remedies: 0,
                attempts: 0,
                max_retries: e.max_retries,
                queue_timeout_ms: e.queue_timeout_ms,
                created_seq: seq,
                created_at_ms: ts,
                updated_at_ms: ts,
                retry_due_at_ms: None,
                error: None,
                attempt_failures: Vec::new(),
                result: None,
                progress: None,
                checkpoints: Vec::new(),
                resumed_from_step: None,
                interruptions: 0,
                artifacts: BTreeMap::new(),
                project_deleted: false,
                chunks_done: BTreeMap::new(),
                imported_dataset: None,
                resumed_from_job: None,
                resume_from_step: None,
                resumed_by_jobs: Vec::new(),
            },
        );
        return None;
    }
    let Event::JobCreated(_) = event else {
        let job_id = match event.stream() {
            crate::event::StreamId::Job(id) => id,
            _ => return Some(format!("{} is not a job event", event.type_name())),
        };
        let Some(job) = jobs.get_mut(&job_id) else {
            return Some(format!("{} for unknown job {job_id}", event.type_name()));
        };
        job.updated_at_ms = ts;
        return apply_to_job(job, event);
    };
    None
}

fn transition(
    job: &mut JobView,
    allowed: &[JobStatus],
    to: JobStatus,
    what: &str,
) -> Option<String> {
    if !allowed.contains(&job.status) {
        return Some(format!("job {}: {what} while {}", job.id, job.status));
    }
    job.status = to;
    None
}

fn apply_to_job(job: &mut JobView, event: &Event) -> Option<String> {
    use JobStatus::*;
    match event {
        Event::JobAttemptStarted(e) => {
            job.attempts = e.attempt;
            job.retry_due_at_ms = None;
            transition(job, &[Queued, Retrying], Running, "attempt started")
        }
        Event::JobAttemptFailed(e) => {
            job.attempt_failures.push(e.failure.clone());
            if job.status != Running {
                return Some(format!(
                    "job {}: attempt failed while {}",
                    job.id, job.status
                ));
            }
            None
        }
        Event::JobRetryScheduled(e) => {
            job.retry_due_at_ms = Some(e.due_at_ms);
            transition(job, &[Running, Queued], Retrying, "retry scheduled")
        }
        Event::JobSucceeded(e) => {
            job.result = Some(e.result.clone());
            transition(job, &[Running, Cancelling], Success, "success")
        }
        Event::JobFailed(e) => {
            job.error = Some(e.failure.clone());
            job.retry_due_at_ms = None;
            transition(job, &[Queued, Running, Retrying], Failed, "failure")
        }
        Event::JobCancelled(_) => {
            job.retry_due_at_ms = None;
            transition(
                job,
                &[Queued, Running, Retrying, Cancelling],
                Cancelled,
                "cancellation",
            )
        }
        Event::JobCancelRequested(_) => transition(job, &[Running], Cancelling, "cancel request"),
        Event::JobInterrupted(_) => {
            // The process died; the scheduler decides (resume -> queued, or failed).
            job.interruptions += 1;
            transition(job, &[Running], Queued, "interruption")
        }
        Event::JobProgress(e) => {
            job.progress = Some(ProgressView {
                phase: e.phase.clone(),
                step: e.step,
                total_steps: e.total_steps,
                loss: e.loss,
                learning_rate: e.learning_rate,
                grad_norm: e.grad_norm,
                tokens_per_sec: e.tokens_per_sec,
                memory_bytes: e.memory_bytes,
                extra: e.extra.clone(),
                at_ms: job.updated_at_ms,
            });
            None
        }
        Event::CheckpointSaved(e) => {
            job.checkpoints.push(CheckpointView {
                step: e.step,
                dir: e.dir.clone(),
                files: e.files.clone(),
                rejected: None,
            });
            None
        }
        Event::CheckpointRejected(e) => {
            match job
                .checkpoints
                .iter_mut()
                .find(|c| c.step == e.step && c.rejected.is_none())
            {
                Some(c) => c.rejected = Some(e.reason.clone()),
                None => {
                    return Some(format!(
                        "job {}: unknown checkpoint at step {} rejected",
                        job.id, e.step
                    ))
                }
            }
            None
        }
        Event::TrainingResumed(e) => {
            job.resumed_from_step = Some(e.resumed_from_step);
            None
        }
        Event::ArtifactRecorded(e) => {
            job.artifacts
                .insert(e.name.clone(), (e.path.clone(), e.sha256.clone()));
            None
        }
        Event::TrainingRemediated(e) => {
            job.effective_config = Json(tunewright_schemas::config::with_changes(
                &job.effective_config.0,
                &e.config_changes.0,
            ));
            job.remedies += 1;
            None
        }
        Event::GenerationChunkDone(e) => {
            job.chunks_done.insert(
                e.chunk_index,
                ChunkDoneView {
                    examples: e.examples,
                    repair_step: e.repair_step.clone(),
                },
            );
            None
        }
        Event::ResumeLinked(e) => {
            job.resumed_from_job = Some(e.from_job);
            job.resume_from_step = e.from_step;
            None
        }
        Event::JobNote(_) => None,
        _ => Some(format!("{} is not a job event", event.type_name())),
    }
}
