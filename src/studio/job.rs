//! The job page (`/jobs/{id}`): live status (step of total, ETA, tokens/s, memory), the
//! curves, the resume card of a failed training, the artifacts and the job's story. The page
//! is rendered at one point of the log and continues live from there over the event stream
//! (`/api/v1/events/stream?stream=JOB&after=SEQ`, then `Last-Event-ID` on reconnect), so a
//! reload or a dropped connection neither loses nor repeats a point. Fragments: `summary`
//! (re-read when the job's status changes) and `story`; `curves` is the curves as JSON.

use axum::extract::{Extension, Path, State};
use axum::http::header;
use axum::http::HeaderMap;
use axum::response::{Html, IntoResponse, Response};
use serde::Serialize;
use serde_json::Value;
use tunewright_events::projection::JobView;
use tunewright_schemas::{JobKind, JobStatus};

use super::artifacts::{rows, ArtifactRow};
use super::curves::curves_json;
use super::job_log::{JobLog, JobLogCache, StoryRow};
use super::page::{job_json, page};
use super::resume::{card, CheckpointFacts, ResumeCard};
use super::templates::render;
use crate::http::error::ApiResult;
use crate::http::ids::{job_id, job_not_found};
use crate::http::state::AppState;

/// Timing the log tells about the job.
#[derive(Debug, Default, Serialize)]
pub struct Timing {
    /// Seconds left at the latest attempt's pace.
    pub eta_secs: Option<f64>,
    /// Seconds from the first attempt to the end (or to now while it runs).
    pub duration_secs: Option<f64>,
    /// Milliseconds per step of the latest attempt.
    pub ms_per_step: Option<f64>,
}

fn timing(j: &JobView, log: &JobLog, now_ms: i64) -> Timing {
    let ms_per_step = log
        .attempt_progress
        .and_then(|((s0, t0), (s1, t1))| (s1 > s0).then(|| (t1 - t0) as f64 / (s1 - s0) as f64));
    let eta_secs = match (&j.progress, ms_per_step, j.status) {
        (Some(p), Some(ms), JobStatus::Running) => {
            Some(p.total_steps.saturating_sub(p.step) as f64 * ms / 1000.0)
        }
        _ => None,
    };
    let duration_secs = log
        .first_attempt_at_ms
        .map(|start| (log.finished_at_ms.unwrap_or(now_ms) - start) as f64 / 1000.0);
    Timing {
        eta_secs,
        duration_secs,
        ms_per_step,
    }
}

/// The status panel (a fragment of its own).
#[derive(Debug, Serialize)]
pub struct Summary {
    pub job: Value,
    pub project_name: String,
    pub timing: Timing,
    pub active: bool,
    pub can_export: bool,
    pub artifacts: Vec<ArtifactRow>,
    pub resume: Option<ResumeCard>,
}

#[derive(Debug, Serialize)]
struct JobPage {
    #[serde(flatten)]
    summary: Summary,
    /// The curves as JSON, for the charts' script.
    curves_json: String,
    has_curves: bool,
    through_seq: u64,
    story: Vec<StoryRow>,
    story_dropped: u64,
}

#[derive(Debug, Serialize)]
struct StoryFragment {
    job: Value,
    story: Vec<StoryRow>,
    story_dropped: u64,
}

/// The job, as the API shows it, and its project's name.
fn find(st: &AppState, id: &str) -> ApiResult<(JobView, Value, String)> {
    let jid = job_id(id)?;
    st.service()?
        .read(|s| {
            let j = s.jobs.get(&jid)?.clone();
            let shown = job_json(s, &j);
            let name = s
                .projects
                .get(&j.project_id)
                .map(|p| p.name.clone())
                .unwrap_or_else(|| "(deleted project)".into());
            Some((j, shown, name))
        })
        .ok_or_else(|| job_not_found(jid))
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

async fn summary(
    st: &AppState,
    (j, shown, project_name): (&JobView, Value, String),
    timing: Timing,
    facts: CheckpointFacts,
) -> Summary {
    Summary {
        job: shown,
        project_name,
        timing,
        active: matches!(
            j.status,
            JobStatus::Queued | JobStatus::Running | JobStatus::Retrying | JobStatus::Cancelling
        ),
        can_export: j.kind == JobKind::Train && j.status == JobStatus::Success,
        artifacts: rows(st, j),
        resume: card(st, j, &facts).await,
    }
}

fn facts(log: &JobLog) -> CheckpointFacts {
    CheckpointFacts {
        saved_at_ms: log.checkpoint_at_ms.clone(),
        loss_at: log
            .checkpoint_at_ms
            .keys()
            .filter_map(|s| log.steps.get(s).and_then(|p| p.loss).map(|l| (*s, l)))
            .collect(),
    }
}

/// `GET /jobs/{id}`.
pub async fn show(
    State(st): State<AppState>,
    Extension(cache): Extension<JobLogCache>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> ApiResult<Html<String>> {
    let (j, shown, project_name) = find(&st, &id)?;
    let log = st.service()?.log().clone();
    let now = now_ms();
    let (curves, through_seq, timing, facts, story, dropped) = cache
        .read(&log, j.id, |l, after| {
            let story: Vec<StoryRow> = l.story.iter().rev().cloned().collect();
            (
                curves_json(l),
                after,
                timing(&j, l, now),
                facts(l),
                story,
                l.story_dropped,
            )
        })
        .await?;
    let summary = summary(&st, (&j, shown, project_name), timing, facts).await;
    let body = JobPage {
        summary,
        curves_json: curves.to_string(),
        has_curves: j.kind == JobKind::Train,
        through_seq,
        story,
        story_dropped: dropped,
    };
    page(&st, &headers, "job.html", body)
}

/// `GET /jobs/{id}/summary`: the status panel.
pub async fn summary_fragment(
    State(st): State<AppState>,
    Extension(cache): Extension<JobLogCache>,
    Path(id): Path<String>,
) -> ApiResult<Html<String>> {
    let (j, shown, project_name) = find(&st, &id)?;
    let log = st.service()?.log().clone();
    let now = now_ms();
    let (timing, facts) = cache
        .read(&log, j.id, |l, _| (timing(&j, l, now), facts(l)))
        .await?;
    render(
        "job_summary.html",
        summary(&st, (&j, shown, project_name), timing, facts).await,
    )
}

/// `GET /jobs/{id}/story`: the job's story.
pub async fn story_fragment(
    State(st): State<AppState>,
    Extension(cache): Extension<JobLogCache>,
    Path(id): Path<String>,
) -> ApiResult<Html<String>> {
    let (j, job, _) = find(&st, &id)?;
    let log = st.service()?.log().clone();
    let (story, story_dropped) = cache
        .read(&log, j.id, |l, _| {
            (l.story.iter().rev().cloned().collect(), l.story_dropped)
        })
        .await?;
    render(
        "job_story.html",
        StoryFragment {
            job,
            story,
            story_dropped,
        },
    )
}

/// `GET /jobs/{id}/curves`: `{"through_seq": SEQ, "curves": {...}}`, what a page reloads when
/// its live points grow past the bound (the stream continues after `through_seq`).
pub async fn curves(
    State(st): State<AppState>,
    Extension(cache): Extension<JobLogCache>,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    let (j, _, _) = find(&st, &id)?;
    let log = st.service()?.log().clone();
    let (json, after) = cache
        .read(&log, j.id, |l, after| (curves_json(l), after))
        .await?;
    // Both parts are JSON already: the cached curves are not serialized again.
    let body = format!(r#"{{"through_seq":{after},"curves":{json}}}"#);
    Ok(([(header::CONTENT_TYPE, "application/json")], body).into_response())
}
