//! Job lifecycle lines for operators (docs/logging.md): one log line per change of a job, with
//! its job and project ids as fields, written from the committed events (so they say exactly
//! what the log says) right after the live state applied them.

use tunewright_events::{Event, State, StoredEvent};
use tunewright_schemas::{ErrorCode, Failure};

/// Log the lifecycle lines of a committed batch (`state` has it applied).
pub fn log_batch(state: &State, batch: &[StoredEvent]) {
    for e in batch {
        log_event(state, &e.event);
    }
}

fn top_suggestion(f: &Failure) -> String {
    f.analysis
        .as_ref()
        .and_then(|a| a.suggestions.first())
        .map(|s| s.action.clone())
        .unwrap_or_default()
}

fn log_event(state: &State, event: &Event) {
    let tunewright_events::StreamId::Job(job_id) = event.stream() else {
        return;
    };
    let Some(job) = state.jobs.get(&job_id) else {
        return;
    };
    let (project_id, kind) = (job.project_id, job.kind.as_str());
    match event {
        Event::JobCreated(_) => {
            let queue_position = state.queue_position(job_id);
            tracing::info!(%job_id, %project_id, kind, queue_position, "job.queued")
        }
        Event::JobAttemptStarted(e) => {
            tracing::info!(%job_id, %project_id, kind, attempt = e.attempt, "job.started")
        }
        Event::JobRetryScheduled(e) => tracing::warn!(
            %job_id, %project_id, kind, attempt = e.next_attempt - 1, wait_ms = e.delay_ms,
            code = e.reason.as_str(), "job.retry"
        ),
        Event::JobAttemptFailed(e) if e.failure.error_code == ErrorCode::TrainingOom => {
            let f = &e.failure;
            // The failure's own figure, else the last one the run reported.
            let memory_bytes = f
                .context
                .0
                .get("memory_bytes")
                .and_then(|v| v.as_u64())
                .or_else(|| job.progress.as_ref().and_then(|p| p.memory_bytes));
            let phase = f.phase.map(|p| p.as_str()).unwrap_or("unknown");
            tracing::error!(%job_id, %project_id, kind, attempt = e.attempt, phase, memory_bytes,
                detail = %f.detail, "training.oom")
        }
        Event::JobSucceeded(e) => {
            tracing::info!(%job_id, %project_id, kind, attempt = e.attempt, "job.succeeded")
        }
        Event::JobFailed(e) => tracing::error!(
            %job_id, %project_id, kind, code = e.failure.error_code.as_str(),
            detail = %e.failure.detail, suggestion = %top_suggestion(&e.failure), "job.failed"
        ),
        Event::JobCancelled(e) => tracing::info!(
            %job_id, %project_id, kind, from_status = e.from_status.as_str(), "job.cancelled"
        ),
        Event::JobCancelRequested(e) => tracing::info!(
            %job_id, %project_id, kind, attempt = e.attempt, "job.cancelling"
        ),
        Event::JobInterrupted(e) => tracing::warn!(
            %job_id, %project_id, kind, attempt = e.attempt, reason = %e.reason, "job.interrupted"
        ),
        _ => {}
    }
}
