//! The never-picked-up bound (docs/jobs.md): a job still queued, never started, when its bound
//! runs out fails with `JOB_TIMEOUT` — unless it is a training waiting its turn for a busy
//! device, which is not "no one picking it up": its bound starts over.

use std::time::Duration;

use ractor::{ActorProcessingErr, ActorRef};
use tunewright_events::event::JobFailed;
use tunewright_events::Event;
use tunewright_schemas::{ctx, ErrorCode, Failure, JobId, JobKind, JobStatus};

use super::state::{SchedulerMsg, SchedulerState};
use super::timers::schedule;
use crate::analyzer::analyze_job_failure;

pub async fn queue_timeout(
    me: &ActorRef<SchedulerMsg>,
    st: &mut SchedulerState,
    job_id: JobId,
) -> Result<(), ActorProcessingErr> {
    let Some(job) = st.args.ledger.read(|s| s.jobs.get(&job_id).cloned()) else {
        return Ok(());
    };
    if job.status != JobStatus::Queued || job.attempts > 0 {
        st.armed.remove(&job_id);
        return Ok(());
    }
    if job.kind == JobKind::Train && st.device_busy() && !st.shutting_down {
        schedule(
            me,
            Duration::from_millis(job.queue_timeout_ms),
            SchedulerMsg::QueueTimeout(job_id),
        );
        return Ok(());
    }
    let secs = job.queue_timeout_ms / 1000;
    let failure = analyze_job_failure(
        Failure::new(
            ErrorCode::JobTimeout,
            ctx! {"job_id" => job_id.to_string(), "timeout_secs" => secs},
        ),
        &job,
        None,
    );
    metrics::counter!("tunewright_jobs_total", "kind" => job.kind.as_str(), "status" => "failed")
        .increment(1);
    st.armed.remove(&job_id);
    st.args
        .projects
        .finish_job(
            job.project_id,
            job_id,
            vec![Event::JobFailed(JobFailed { job_id, failure })],
        )
        .await?;
    Ok(())
}
