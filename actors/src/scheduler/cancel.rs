//! Cancellation, in every non-final state. A queued or retrying job is recorded `cancelled`
//! at once. A running attempt is recorded `cancelling` and told to stop; it keeps its device
//! or slot until its worker is really gone (killed after the launcher's grace if it does not
//! stop), and only then does the outcome path record `cancelled` (`finish_cancel`).

use tunewright_events::event::{JobCancelRequested, JobCancelled};
use tunewright_events::projection::JobView;
use tunewright_events::Event;
use tunewright_schemas::{ctx, ErrorCode, Failure, JobId, JobStatus};

use super::state::SchedulerState;
use crate::executor::StopRequest;

const BY_THE_USER: &str = "cancelled by the user";

fn job_not_found(id: JobId) -> Failure {
    Failure::new(ErrorCode::JobNotFound, ctx! {"job_id" => id.to_string()})
}

pub async fn cancel(st: &mut SchedulerState, job_id: JobId) -> Result<JobView, Failure> {
    let Some(job) = st.args.ledger.read(|s| s.jobs.get(&job_id).cloned()) else {
        return Err(job_not_found(job_id));
    };
    if job.status.is_terminal() {
        return Err(Failure::new(
            ErrorCode::JobAlreadyFinished,
            ctx! {"job_id" => job_id.to_string(), "status" => job.status.as_str()},
        ));
    }
    st.due.remove(&job_id);
    let in_flight = st
        .args
        .running
        .lock()
        .is_ok_and(|m| m.contains_key(&job_id));
    if matches!(job.status, JobStatus::Running | JobStatus::Cancelling) && in_flight {
        // Recorded before the worker hears it: its outcome then finds the job `cancelling`.
        if job.status == JobStatus::Running {
            st.args
                .ledger
                .commit(vec![Event::JobCancelRequested(JobCancelRequested {
                    job_id,
                    attempt: job.attempts,
                    reason: BY_THE_USER.into(),
                })])
                .await?;
        }
        stop_worker(st, job_id);
    } else {
        finish_cancel(st, &job, BY_THE_USER).await?;
    }
    st.args
        .ledger
        .read(|s| s.jobs.get(&job_id).cloned())
        .ok_or_else(|| job_not_found(job_id))
}

/// Tell the job's live attempt to stop (again, if it was told already).
fn stop_worker(st: &SchedulerState, job_id: JobId) {
    if let Ok(running) = st.args.running.lock() {
        if let Some(r) = running.get(&job_id) {
            let _ = r.stop.send(Some(StopRequest::Cancel));
        }
    }
}

/// Record `job` cancelled (its worker, if it had one, is gone). Counted first, as outcomes are,
/// so a reader who sees the status also sees the count.
pub async fn finish_cancel(
    st: &mut SchedulerState,
    job: &JobView,
    reason: &str,
) -> Result<(), Failure> {
    metrics::counter!("tunewright_jobs_total", "kind" => job.kind.as_str(), "status" => "cancelled")
        .increment(1);
    st.args
        .projects
        .finish_job(
            job.project_id,
            job.id,
            vec![Event::JobCancelled(JobCancelled {
                job_id: job.id,
                from_status: job.status,
                reason: reason.into(),
            })],
        )
        .await?;
    Ok(())
}
