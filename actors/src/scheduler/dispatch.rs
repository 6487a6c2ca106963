//! Dispatch: start every queued (or due) job that can start, oldest first. One training at a
//! time holds the device; the others wait in its FIFO queue (docs/jobs.md, "The training
//! queue"); other kinds run up to `max_parallel` at once. A job waiting here for the first time
//! gets its never-picked-up bound armed.

use std::time::Duration;

use ractor::{ActorProcessingErr, ActorRef};
use tunewright_events::event::JobAttemptStarted;
use tunewright_events::projection::JobView;
use tunewright_events::Event;
use tunewright_schemas::{JobKind, JobStatus};

use super::state::{RunningJob, SchedulerMsg, SchedulerState};
use super::timers::{schedule, wall_ms};
use crate::executor::{EventSink, ExecutorMsg, JobContext, StopSignal};

/// Start what can start.
pub async fn dispatch(
    me: &ActorRef<SchedulerMsg>,
    st: &mut SchedulerState,
) -> Result<(), ActorProcessingErr> {
    if st.shutting_down {
        return Ok(());
    }
    let mut candidates: Vec<JobView> = st.args.ledger.read(|s| {
        s.jobs
            .values()
            .filter(|j| {
                j.status == JobStatus::Queued
                    || (j.status == JobStatus::Retrying && st.due.contains(&j.id))
            })
            .cloned()
            .collect()
    });
    candidates.sort_by_key(|j| j.created_seq);
    for job in candidates {
        if job.status == JobStatus::Queued && job.attempts == 0 {
            arm_queue_timeout(me, st, &job);
        }
        if can_start(st, &job)? {
            start(st, job).await?;
        }
    }
    Ok(())
}

/// Whether `job` may start now: not already running, a device free for a training, a slot
/// free for anything else.
fn can_start(st: &SchedulerState, job: &JobView) -> Result<bool, ActorProcessingErr> {
    let running = st
        .args
        .running
        .lock()
        .map_err(|_| "running jobs lock poisoned")?;
    if running.contains_key(&job.id) {
        return Ok(false);
    }
    Ok(if job.kind == JobKind::Train {
        !running.values().any(|r| r.kind == JobKind::Train)
    } else {
        running
            .values()
            .filter(|r| r.kind != JobKind::Train)
            .count()
            < st.args.config.max_parallel
    })
}

/// Arm the never-picked-up bound of a job not yet seen waiting (what is left of it after a
/// restart).
fn arm_queue_timeout(me: &ActorRef<SchedulerMsg>, st: &mut SchedulerState, job: &JobView) {
    if !st.armed.insert(job.id) {
        return;
    }
    let waited = (wall_ms() - job.created_at_ms).max(0) as u64;
    let left = job.queue_timeout_ms.saturating_sub(waited);
    schedule(
        me,
        Duration::from_millis(left),
        SchedulerMsg::QueueTimeout(job.id),
    );
}

/// Record the attempt's start and hand it to its kind's executor.
async fn start(st: &mut SchedulerState, job: JobView) -> Result<(), ActorProcessingErr> {
    let Some(executor) = st
        .args
        .executor_names
        .get(&job.kind)
        .and_then(|n| ractor::registry::where_is(n.clone()))
        .filter(|c| c.get_status() == ractor::ActorStatus::Running)
        .map(ActorRef::<ExecutorMsg>::from)
    else {
        return Ok(());
    };
    let Some(project) = st
        .args
        .ledger
        .read(|s| s.projects.get(&job.project_id).cloned())
    else {
        return Ok(());
    };
    let attempt = job.attempts + 1;
    st.args
        .ledger
        .commit(vec![Event::JobAttemptStarted(JobAttemptStarted {
            job_id: job.id,
            attempt,
        })])
        .await?;
    st.due.remove(&job.id);
    let Some(job) = st.args.ledger.read(|s| s.jobs.get(&job.id).cloned()) else {
        return Ok(());
    };
    let (stop_tx, stop) = StopSignal::channel();
    if let Ok(mut running) = st.args.running.lock() {
        running.insert(
            job.id,
            RunningJob {
                attempt,
                kind: job.kind,
                stop: stop_tx,
            },
        );
    }
    metrics::counter!("tunewright_job_attempts_total", "kind" => job.kind.as_str()).increment(1);
    let ctx = JobContext {
        events: EventSink::new(st.args.ledger.clone(), job.id),
        job,
        project,
        attempt,
        layout: st.args.layout.clone(),
        stop,
        projects: st.args.projects.clone(),
    };
    if let Err(e) = executor.send_message(ExecutorMsg::Execute(Box::new(ctx))) {
        tracing::error!(error = %e, "executor unavailable");
    }
    Ok(())
}
