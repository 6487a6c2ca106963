//! Cancellation, in every non-final state: a running attempt is told to stop (it keeps its
//! device or slot until it has really stopped); the job is recorded `cancelled` at once.

use tunewright_events::event::JobCancelled;
use tunewright_events::projection::JobView;
use tunewright_events::Event;
use tunewright_schemas::{ctx, ErrorCode, Failure, JobId, JobStatus};

use super::state::SchedulerState;
use crate::executor::StopRequest;

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
    if job.status == JobStatus::Running {
        if let Ok(running) = st.args.running.lock() {
            if let Some(r) = running.get(&job_id) {
                let _ = r.stop.send(Some(StopRequest::Cancel));
            }
        }
    }
    st.due.remove(&job_id);
    st.args
        .projects
        .finish_job(
            job.project_id,
            job_id,
            vec![Event::JobCancelled(JobCancelled {
                job_id,
                from_status: job.status,
                reason: "cancelled by the user".into(),
            })],
        )
        .await?;
    metrics::counter!("tunewright_jobs_total", "kind" => job.kind.as_str(), "status" => "cancelled")
        .increment(1);
    st.args
        .ledger
        .read(|s| s.jobs.get(&job_id).cloned())
        .ok_or_else(|| job_not_found(job_id))
}
