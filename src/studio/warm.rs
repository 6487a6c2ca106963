//! The studio's warm start: once the service is up, the curves of the most recently active
//! trainings are read and thinned in the background, so the first view of a long run after a
//! restart is served from memory instead of reading its whole stream on the request's path
//! (docs/studio.md, "Performance"). A page requested meanwhile waits for that job's reading,
//! never longer than reading it itself would take. Afterwards it follows the log and reads
//! each training as it ends, so its reading is saved (`saved_reading`) and the first view after
//! any later restart loads it instead of reading the run.

use std::time::Duration;

use tokio::sync::broadcast::error::RecvError;
use tunewright_events::{Event, EventLog};
use tunewright_schemas::{JobId, JobKind};

use super::curves::curves_json;
use super::job_log::JobLogCache;
use crate::http::state::AppState;

/// Trainings read at start: the most recently updated (half the cache, so pages viewed
/// afterwards do not evict them at once).
pub const WARM_JOBS: usize = 8;

/// Start the warm-up; it waits for the service to be up, reads, and ends.
pub fn spawn(state: AppState, cache: JobLogCache) {
    let Ok(runtime) = tokio::runtime::Handle::try_current() else {
        return;
    };
    runtime.spawn(async move {
        let service = loop {
            if let Some(s) = state.service_if_started() {
                break s.clone();
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        let mut recent: Vec<(i64, tunewright_schemas::JobId)> = service.read(|s| {
            s.jobs
                .values()
                .filter(|j| j.kind == JobKind::Train)
                .map(|j| (j.updated_at_ms, j.id))
                .collect()
        });
        recent.sort_unstable_by(|a, b| b.cmp(a));
        recent.truncate(WARM_JOBS);
        let log = service.log().clone();
        let mut live = log.subscribe();
        for (_, job) in recent {
            read(&cache, &log, job).await;
        }
        loop {
            let ended = match live.recv().await {
                Ok(e) => match &e.event {
                    Event::JobSucceeded(x) => x.job_id,
                    Event::JobFailed(x) => x.job_id,
                    Event::JobCancelled(x) => x.job_id,
                    _ => continue,
                },
                Err(RecvError::Lagged(_)) => continue,
                Err(RecvError::Closed) => return,
            };
            let training =
                service.read(|s| s.jobs.get(&ended).is_some_and(|j| j.kind == JobKind::Train));
            if training {
                read(&cache, &log, ended).await;
            }
        }
    });
}

async fn read(cache: &JobLogCache, log: &EventLog, job: JobId) {
    if let Err(e) = cache.read(log, job, |l, _| curves_json(l)).await {
        tracing::warn!(%job, error = %e.0.detail, "studio warm-up: a job's stream could not be read");
    }
}
