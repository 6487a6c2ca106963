//! Compare runs (`/projects/{id}/compare`): the project's trainings side by side — training
//! loss curves overlaid, final and best eval loss, duration, and the config fields whose values
//! differ between them.

use std::collections::BTreeSet;

use axum::extract::{Extension, Path, State};
use axum::http::HeaderMap;
use axum::response::Html;
use serde::Serialize;
use serde_json::Value;
use tunewright_schemas::JobKind;

use super::curves::Curve;
use super::job_log::JobLogCache;
use super::page::page;
use crate::http::error::{ApiError, ApiResult};
use crate::http::ids::{project_id, project_not_found};
use crate::http::state::AppState;

/// Points per run on the overlay (several runs share one chart).
const POINTS_PER_RUN: usize = 1000;

/// Most runs compared at once (the newest), so the chart stays readable and the page bounded.
const MAX_RUNS: usize = 12;

#[derive(Debug, Serialize)]
struct Run {
    id: String,
    status: String,
    created_at: String,
    final_eval_loss: Option<f64>,
    best_eval_loss: Option<f64>,
    final_loss: Option<f64>,
    duration_secs: Option<f64>,
    steps: Option<u64>,
    /// This run's values of the fields that differ, in `differing`'s order.
    values: Vec<String>,
    loss: Curve,
}

#[derive(Debug, Serialize)]
struct ComparePage {
    project: crate::http::dto::ProjectOut,
    runs: Vec<Run>,
    differing: Vec<String>,
    curves_json: String,
}

/// Keys whose values are not the same in every config.
fn differing_keys(configs: &[&Value]) -> Vec<String> {
    let keys: BTreeSet<&String> = configs
        .iter()
        .filter_map(|c| c.as_object())
        .flat_map(|c| c.keys())
        .collect();
    keys.into_iter()
        .filter(|k| {
            let first = configs.first().and_then(|c| c.get(k.as_str()));
            configs.iter().any(|c| c.get(k.as_str()) != first)
        })
        .cloned()
        .collect()
}

fn shown(v: Option<&Value>) -> String {
    match v {
        None | Some(Value::Null) => "(default)".into(),
        Some(Value::String(s)) => s.clone(),
        Some(other) => other.to_string(),
    }
}

/// `GET /projects/{id}/compare`.
pub async fn show(
    State(st): State<AppState>,
    Extension(cache): Extension<JobLogCache>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> ApiResult<Html<String>> {
    let pid = project_id(&id)?;
    let service = st.service()?;
    let (project, jobs) = service
        .read(|s| {
            let p = s.projects.get(&pid)?;
            let jobs: Vec<_> = s
                .jobs
                .values()
                .filter(|j| j.project_id == pid && j.kind == JobKind::Train)
                .cloned()
                .collect();
            Some((crate::http::dto::ProjectOut::from(p), jobs))
        })
        .ok_or_else(|| project_not_found(pid))?;
    let jobs: Vec<_> = jobs.into_iter().rev().take(MAX_RUNS).rev().collect();
    let configs: Vec<&Value> = jobs.iter().map(|j| &j.config.0).collect();
    let differing = differing_keys(&configs);
    let log = service.log().clone();
    let mut runs = Vec::new();
    for j in &jobs {
        let (loss, evals, duration) = cache
            .read(&log, j.id, |l, _| {
                let evals: Vec<f64> = l.eval_loss.values().copied().collect();
                let duration = l
                    .first_attempt_at_ms
                    .zip(l.finished_at_ms)
                    .map(|(a, b)| (b - a) as f64 / 1000.0);
                (
                    Curve::of(&l.series(|p| p.loss), POINTS_PER_RUN),
                    evals,
                    duration,
                )
            })
            .await?;
        runs.push(Run {
            id: j.id.to_string(),
            status: j.status.as_str().into(),
            created_at: tunewright_events::timestamp::format_ts(j.created_at_ms),
            final_eval_loss: evals.last().copied(),
            best_eval_loss: evals.iter().copied().reduce(f64::min),
            final_loss: loss.1.last().copied(),
            duration_secs: duration,
            steps: j.progress.as_ref().map(|p| p.step),
            values: differing.iter().map(|k| shown(j.config.0.get(k))).collect(),
            loss,
        });
    }
    let overlay: Vec<_> = runs.iter().map(|r| (&r.id, &r.loss)).collect();
    let curves_json = serde_json::to_string(&overlay).map_err(ApiError::internal)?;
    page(
        &st,
        &headers,
        "compare.html",
        ComparePage {
            project,
            runs,
            differing,
            curves_json,
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn only_differing_fields_are_listed() {
        let a = json!({"base_model": "/m", "learning_rate": 0.001, "max_steps": 10});
        let b = json!({"base_model": "/m", "learning_rate": 0.0005, "max_steps": 10, "lora_r": 16});
        assert_eq!(differing_keys(&[&a, &b]), vec!["learning_rate", "lora_r"]);
        assert_eq!(shown(a.get("lora_r")), "(default)");
    }
}
