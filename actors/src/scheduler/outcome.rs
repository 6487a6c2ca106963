//! An attempt's outcome: success; a failure its kind's policy retries (after a backoff); or
//! the job's final failure. Every failure is recorded with its analysis. An outcome that no
//! longer fits the job (cancelled meanwhile, a stale report of an older attempt) changes
//! nothing; one reported while the service stops leaves the job `running` in the log, to
//! resume at the next start. The outcome of a `cancelling` job's attempt is its cancellation
//! (or its success, when the work finished before the worker heard the request).

use ractor::{ActorProcessingErr, ActorRef};
use tunewright_events::event::{JobAttemptFailed, JobFailed, JobRetryScheduled, JobSucceeded};
use tunewright_events::Event;
use tunewright_schemas::{Failure, JobId, JobStatus, Json};

use super::cancel::finish_cancel;
use super::state::{SchedulerMsg, SchedulerState};
use super::timers::{schedule, wall_ms};
use crate::analyzer::analyze_job_failure;
use crate::executor::Outcome;

pub async fn finished(
    me: &ActorRef<SchedulerMsg>,
    st: &mut SchedulerState,
    job_id: JobId,
    attempt: u32,
    outcome: Outcome,
) -> Result<(), ActorProcessingErr> {
    // Left in `running` until the outcome is recorded: if the log cannot be written, the
    // outcome is delivered again and must still find its attempt.
    let was_running = st
        .args
        .running
        .lock()
        .ok()
        .is_some_and(|m| m.contains_key(&job_id));
    let Some(job) = st.args.ledger.read(|s| s.jobs.get(&job_id).cloned()) else {
        forget(st, job_id);
        return Ok(());
    };
    let live = matches!(job.status, JobStatus::Running | JobStatus::Cancelling);
    if !live || job.attempts != attempt || !was_running {
        forget(st, job_id);
        return Ok(());
    }
    if job.status == JobStatus::Cancelling && outcome.is_err() {
        if !st.shutting_down {
            finish_cancel(st, &job, "cancelled by the user; the worker has stopped").await?;
        }
    } else {
        record(me, st, job, attempt, outcome).await?;
    }
    forget(st, job_id);
    Ok(())
}

fn forget(st: &mut SchedulerState, job_id: JobId) {
    if let Ok(mut m) = st.args.running.lock() {
        m.remove(&job_id);
    }
}

async fn record(
    me: &ActorRef<SchedulerMsg>,
    st: &mut SchedulerState,
    job: tunewright_events::projection::JobView,
    attempt: u32,
    outcome: Outcome,
) -> Result<(), ActorProcessingErr> {
    let job_id = job.id;
    match outcome {
        Ok(result) => {
            metrics::counter!("tunewright_jobs_total", "kind" => job.kind.as_str(), "status" => "success")
                .increment(1);
            let done = Event::JobSucceeded(JobSucceeded {
                job_id,
                attempt,
                result: Json(result),
            });
            st.args
                .projects
                .finish_job(job.project_id, job_id, vec![done])
                .await?;
        }
        Err(_) if st.shutting_down => {
            tracing::info!(job = %job_id, "attempt stopped for shutdown; it resumes at the next start");
        }
        Err(failure) => {
            let gpu = st.gpu_for(job.kind).await;
            let failure = analyze_job_failure(failure, &job, gpu);
            metrics::counter!("tunewright_job_failures_total", "code" => failure.error_code.as_str())
                .increment(1);
            let policy = st.args.config.policies.get(job.kind).clone();
            if policy.should_retry(failure.error_code, attempt, job.max_retries) {
                let delay = policy.backoff(attempt, &mut st.rng);
                retry(st, job_id, attempt, failure, delay).await?;
                schedule(me, delay, SchedulerMsg::RetryDue(job_id));
            } else {
                fail(st, job.project_id, job_id, attempt, failure).await?;
            }
        }
    }
    Ok(())
}

async fn retry(
    st: &mut SchedulerState,
    job_id: JobId,
    attempt: u32,
    failure: Failure,
    delay: std::time::Duration,
) -> Result<(), ActorProcessingErr> {
    let kind = st
        .args
        .ledger
        .read(|s| s.jobs.get(&job_id).map(|j| j.kind.as_str()))
        .unwrap_or("unknown");
    metrics::counter!("tunewright_job_retries_total", "kind" => kind).increment(1);
    let reason = failure.error_code;
    st.args
        .ledger
        .commit(vec![
            Event::JobAttemptFailed(JobAttemptFailed {
                job_id,
                attempt,
                failure,
                will_retry: true,
            }),
            Event::JobRetryScheduled(JobRetryScheduled {
                job_id,
                next_attempt: attempt + 1,
                delay_ms: delay.as_millis() as u64,
                due_at_ms: wall_ms() + delay.as_millis() as i64,
                reason,
            }),
        ])
        .await?;
    Ok(())
}

async fn fail(
    st: &mut SchedulerState,
    project_id: tunewright_schemas::ProjectId,
    job_id: JobId,
    attempt: u32,
    failure: Failure,
) -> Result<(), ActorProcessingErr> {
    let kind = st
        .args
        .ledger
        .read(|s| s.jobs.get(&job_id).map(|j| j.kind.as_str()))
        .unwrap_or("unknown");
    metrics::counter!("tunewright_jobs_total", "kind" => kind, "status" => "failed").increment(1);
    st.args
        .projects
        .finish_job(
            project_id,
            job_id,
            vec![
                Event::JobAttemptFailed(JobAttemptFailed {
                    job_id,
                    attempt,
                    failure: failure.clone(),
                    will_retry: false,
                }),
                Event::JobFailed(JobFailed { job_id, failure }),
            ],
        )
        .await?;
    Ok(())
}
