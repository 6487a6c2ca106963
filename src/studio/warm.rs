//! The studio's warm start: once the service is up, the curves of the most recently active
//! trainings are read and thinned in the background, so the first view of a long run after a
//! restart is served from memory instead of reading its whole stream on the request's path
//! (docs/studio.md, "Performance"). A page requested meanwhile waits for that job's reading,
//! never longer than reading it itself would take.

use std::time::Duration;

use tunewright_schemas::JobKind;

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
        for (_, job) in recent {
            if let Err(e) = cache.read(&log, job, |l, _| curves_json(l)).await {
                tracing::warn!(%job, error = %e.0.detail, "studio warm-up: a job's stream could not be read");
            }
        }
    });
}
