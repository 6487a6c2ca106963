//! A project's evaluations side by side (`GET /projects/{id}/evaluations`): one row per
//! `evaluate` job, oldest first, with the training, checkpoint and split it scored, its
//! figures (from the job's result) and its status. The studio's project page shows the same
//! rows.

use axum::extract::State;
use axum::Json;
use serde::Serialize;
use serde_json::Value;
use tunewright_events::projection::JobView;
use tunewright_events::timestamp::format_ts;
use tunewright_schemas::{JobKind, ProjectId};
use utoipa::ToSchema;

use super::error::{ApiResult, ErrorBody};
use super::ids::{project_id, project_not_found};
use super::rejection::ApiPath;
use super::state::AppState;

/// One evaluation.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct EvaluationOut {
    pub job_id: String,
    /// The job's status (`queued`, `running`, `success`, `failed`, ...).
    pub status: String,
    /// The training evaluated.
    pub train_job: Option<String>,
    /// The checkpoint's step; `null` for the training's final adapter.
    pub checkpoint_step: Option<u64>,
    /// The split whose `val` part was scored; `null`: the whole dataset.
    pub split: Option<String>,
    /// Examples scored (set once the evaluation succeeded, as are the figures).
    pub examples: Option<u64>,
    pub loss: Option<f64>,
    pub perplexity: Option<f64>,
    pub token_accuracy: Option<f64>,
    /// The generations file (relative to the data directory) and its sha256.
    pub generations: Option<String>,
    pub generations_sha256: Option<String>,
    /// The failure's code, for a failed evaluation.
    pub error_code: Option<String>,
    pub created_at: String,
}

/// The answer of `GET /projects/{id}/evaluations`.
#[derive(Debug, Serialize, ToSchema)]
pub struct EvaluationList {
    pub items: Vec<EvaluationOut>,
}

impl From<&JobView> for EvaluationOut {
    fn from(j: &JobView) -> Self {
        let config = &j.config.0;
        let result = j.result.as_ref().map(|r| &r.0);
        let number = |k: &str| result.and_then(|r| r.get(k)).and_then(Value::as_f64);
        let generations = result.and_then(|r| r.get("generations"));
        let text = |v: Option<&Value>, k: &str| {
            v.and_then(|v| v.get(k))
                .and_then(Value::as_str)
                .map(str::to_string)
        };
        EvaluationOut {
            job_id: j.id.to_string(),
            status: j.status.as_str().into(),
            train_job: text(Some(config), "train_job"),
            checkpoint_step: config.get("checkpoint_step").and_then(Value::as_u64),
            split: text(Some(config), "split"),
            examples: result
                .and_then(|r| r.get("examples"))
                .and_then(Value::as_u64),
            loss: number("loss"),
            perplexity: number("perplexity"),
            token_accuracy: number("token_accuracy"),
            generations: text(generations, "path"),
            generations_sha256: text(generations, "sha256"),
            error_code: j.error.as_ref().map(|f| f.error_code.as_str().to_string()),
            created_at: format_ts(j.created_at_ms),
        }
    }
}

/// The evaluations of `project`, oldest first.
pub fn evaluations_of(state: &tunewright_events::State, project: ProjectId) -> Vec<EvaluationOut> {
    state
        .jobs_of(project)
        .filter(|j| j.kind == JobKind::Evaluate)
        .map(EvaluationOut::from)
        .collect()
}

/// The project's evaluations side by side.
#[utoipa::path(get, path = "/api/v1/projects/{id}/evaluations", tag = "jobs",
    params(("id" = String, Path, description = "Project id")),
    responses(
        (status = 200, description = "One row per evaluate job, oldest first", body = EvaluationList),
        (status = 401, description = "UNAUTHORIZED", body = ErrorBody),
        (status = 404, description = "PROJECT_NOT_FOUND", body = ErrorBody),
        (status = 503, description = "SERVICE_UNAVAILABLE", body = ErrorBody),
    ))]
pub async fn list_evaluations(
    State(st): State<AppState>,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<Json<EvaluationList>> {
    let pid = project_id(&id)?;
    let items = st.service()?.read(|s| {
        if !s.projects.contains_key(&pid) {
            return Err(project_not_found(pid));
        }
        Ok(evaluations_of(s, pid))
    })?;
    Ok(Json(EvaluationList { items }))
}
