//! Recovery: the queue rebuilt from the log. On the process's first start, attempts that were
//! running were interrupted: each goes back to the queue to resume (within the restart
//! budget, for kinds that can) or fails. After a scheduler crash, attempts still in flight are
//! adopted. Retries keep their due time; never-started jobs get what is left of their bound.
//! A job that was `cancelling` when its process stopped has no worker left: it is cancelled.

use std::time::Duration;

use ractor::{ActorProcessingErr, ActorRef};
use tunewright_events::event::{JobFailed, JobInterrupted};
use tunewright_events::projection::JobView;
use tunewright_events::Event;
use tunewright_schemas::{ctx, ErrorCode, Failure, JobKind, JobStatus};

use super::cancel::finish_cancel;
use super::state::{SchedulerMsg, SchedulerState};
use super::timers::{schedule, wall_ms};
use crate::analyzer::analyze_job_failure;

pub async fn recover(
    me: &ActorRef<SchedulerMsg>,
    st: &mut SchedulerState,
    first_start: bool,
) -> Result<(), ActorProcessingErr> {
    let jobs: Vec<JobView> = st.args.ledger.read(|s| {
        s.jobs
            .values()
            .filter(|j| !j.status.is_terminal())
            .cloned()
            .collect()
    });
    let now_ms = wall_ms();
    for job in jobs {
        // After a scheduler crash (not the process's first start) an attempt may still run.
        let in_flight = !first_start
            && st
                .args
                .running
                .lock()
                .is_ok_and(|m| m.contains_key(&job.id));
        match job.status {
            JobStatus::Running if !in_flight => {
                interrupt(
                    st,
                    &job,
                    "the process running the job stopped while it was running",
                )
                .await?;
            }
            JobStatus::Cancelling if !in_flight => {
                finish_cancel(
                    st,
                    &job,
                    "cancelled by the user; the worker stopped with the process",
                )
                .await?;
            }
            JobStatus::Retrying => {
                let wait = job
                    .retry_due_at_ms
                    .map(|d| (d - now_ms).max(0) as u64)
                    .unwrap_or(0);
                schedule(
                    me,
                    Duration::from_millis(wait),
                    SchedulerMsg::RetryDue(job.id),
                );
            }
            _ => {}
        }
    }
    Ok(())
}

/// The code of a job of `kind` that could not resume.
fn interrupted_code(kind: JobKind) -> ErrorCode {
    match kind {
        JobKind::Train => ErrorCode::TrainingInterrupted,
        JobKind::DatasetGenerate | JobKind::DatasetPreview => ErrorCode::DatasetGenerationFailed,
        JobKind::Export => ErrorCode::ExportWriteFailed,
        JobKind::Evaluate => ErrorCode::EvaluationFailed,
    }
}

/// Record that `job`'s attempt was interrupted: back to the queue, or failed.
async fn interrupt(
    st: &mut SchedulerState,
    job: &JobView,
    reason: &str,
) -> Result<(), ActorProcessingErr> {
    let interrupted = Event::JobInterrupted(JobInterrupted {
        job_id: job.id,
        attempt: job.attempts,
        reason: reason.into(),
    });
    let resumable = st
        .args
        .executors
        .get(job.kind)
        .map(|e| e.resumable())
        .unwrap_or(false);
    let interruptions = job.interruptions + 1;
    if resumable && interruptions <= st.args.config.restart_budget {
        st.args.ledger.commit(vec![interrupted]).await?;
        return Ok(());
    }
    let why = if resumable {
        format!(
            "{reason}; interrupted {interruptions} times, over the budget of {}",
            st.args.config.restart_budget
        )
    } else {
        format!("{reason}; {} jobs cannot resume", job.kind)
    };
    let gpu = st.gpu_for(job.kind).await;
    let failure = analyze_job_failure(
        Failure::new(interrupted_code(job.kind), ctx! {"reason" => why.clone()}).caused_by(why),
        job,
        gpu,
    );
    st.args
        .projects
        .finish_job(
            job.project_id,
            job.id,
            vec![
                interrupted,
                Event::JobFailed(JobFailed {
                    job_id: job.id,
                    failure,
                }),
            ],
        )
        .await?;
    Ok(())
}
