//! The checkpoint resume card of a training that failed or was cancelled (docs/studio.md
//! "Resume"): the error's code and detail, the failure analysis with each suggestion and its
//! config change, the checkpoints that still verify against their recorded sha256s (step, time,
//! loss), and the form that resumes from one with the ticked suggestions applied.
//!
//! A change a checkpoint cannot carry (`RESTART_KEYS`: the adapter's shape or the model under
//! it) makes the new job start from step 0; the page says so before the click.
//!
//! The action (`resume`) is the service's resume, the same as the API's
//! `POST /api/v1/jobs/{id}/resume` (`{"from_step": N|null, "config_changes": {...}}`).

use std::collections::BTreeMap;

use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::Response;
use serde::Serialize;
use serde_json::Value;
use tunewright_actors::resume::ResumeRequest;
use tunewright_events::projection::JobView;
use tunewright_events::timestamp::format_ts;
use tunewright_schemas::{JobKind, JobStatus};

use super::form::StudioForm;
use super::page::redirect;
use crate::http::dto::{AnalysisOut, JobErrorOut};
use crate::http::error::{ApiError, ApiResult};
use crate::http::rejection::ApiPath;
use crate::http::state::AppState;

/// Config keys whose change a checkpoint cannot carry (the service's rule).
use tunewright_schemas::config::train::CHECKPOINT_BOUND_KEYS as RESTART_KEYS;

/// What the card needs from the job's log: when each checkpoint was saved, and the loss at
/// each step.
#[derive(Debug, Default)]
pub struct CheckpointFacts {
    pub saved_at_ms: BTreeMap<u64, i64>,
    pub loss_at: BTreeMap<u64, f64>,
}

#[derive(Debug, Serialize)]
pub struct SuggestionView {
    pub index: usize,
    pub action: String,
    pub detail: String,
    /// The config change as JSON text, e.g. `{"per_device_train_batch_size": 4}`.
    pub changes: String,
    /// The changed keys, comma-separated (the page reads them to warn of a restart).
    pub keys: String,
    pub restarts: bool,
}

#[derive(Debug, Serialize)]
pub struct CheckpointRow {
    pub step: u64,
    pub saved_at: Option<String>,
    pub loss: Option<f64>,
    pub verified: bool,
    /// Why it does not verify.
    pub problem: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct ResumeCard {
    pub status: String,
    pub error: Option<JobErrorOut>,
    pub analysis: Option<AnalysisOut>,
    /// Set when the analysis could not be fetched: the reason.
    pub analysis_error: Option<String>,
    pub suggestions: Vec<SuggestionView>,
    pub checkpoints: Vec<CheckpointRow>,
    /// The newest verified checkpoint's step.
    pub from_step: Option<u64>,
    pub restart_keys: String,
}

/// Whether `job` gets a card.
pub fn wants_card(job: &JobView) -> bool {
    job.kind == JobKind::Train && matches!(job.status, JobStatus::Failed | JobStatus::Cancelled)
}

fn suggestion_views(a: &AnalysisOut) -> Vec<SuggestionView> {
    a.suggestions
        .iter()
        .enumerate()
        .map(|(index, s)| {
            let keys: Vec<String> = s
                .config_changes
                .as_object()
                .map(|c| c.keys().cloned().collect())
                .unwrap_or_default();
            SuggestionView {
                index,
                action: s.action.clone(),
                detail: s.detail.clone(),
                changes: s.config_changes.to_string(),
                restarts: keys.iter().any(|k| RESTART_KEYS.contains(&k.as_str())),
                keys: keys.join(","),
            }
        })
        .collect()
}

/// The job's checkpoints, newest first, each verified against its recorded hashes.
async fn checkpoint_rows(
    st: &AppState,
    job: &JobView,
    facts: &CheckpointFacts,
) -> Vec<CheckpointRow> {
    let Ok(service) = st.service() else {
        return Vec::new();
    };
    let layout = service.layout();
    let checkpoints = job.checkpoints.clone();
    let verdicts = tokio::task::spawn_blocking(move || {
        checkpoints
            .iter()
            .rev()
            .map(|c| {
                let verdict = match &c.rejected {
                    Some(r) => Err(r.clone()),
                    None => {
                        tunewright_actors::trainer::checkpoints::verify(&layout.resolve(&c.dir), c)
                    }
                };
                (c.step, verdict)
            })
            .collect::<Vec<_>>()
    })
    .await
    .unwrap_or_default();
    verdicts
        .into_iter()
        .map(|(step, verdict)| CheckpointRow {
            step,
            saved_at: facts.saved_at_ms.get(&step).map(|ms| format_ts(*ms)),
            loss: facts.loss_at.get(&step).copied(),
            verified: verdict.is_ok(),
            problem: verdict.err(),
        })
        .collect()
}

/// The card of a failed or cancelled training (`None` for any other job).
pub async fn card(st: &AppState, job: &JobView, facts: &CheckpointFacts) -> Option<ResumeCard> {
    if !wants_card(job) {
        return None;
    }
    let failure = job.error.as_ref().or(job.attempt_failures.last());
    let (analysis, analysis_error) = match failure {
        None => (None, None),
        Some(_) => {
            let asked =
                crate::http::jobs::job_analysis(State(st.clone()), ApiPath(job.id.to_string()))
                    .await;
            match asked {
                Ok(a) => (Some(a.0), None),
                Err(e) => (None, Some(e.body().detail)),
            }
        }
    };
    let checkpoints = checkpoint_rows(st, job, facts).await;
    Some(ResumeCard {
        status: job.status.as_str().into(),
        error: failure.map(JobErrorOut::from),
        suggestions: analysis.as_ref().map(suggestion_views).unwrap_or_default(),
        analysis,
        analysis_error,
        from_step: checkpoints.iter().find(|c| c.verified).map(|c| c.step),
        checkpoints,
        restart_keys: RESTART_KEYS.join(","),
    })
}

/// The config changes of the ticked suggestions, merged in order.
pub fn ticked_changes(analysis: &AnalysisOut, ticked: &[usize]) -> Value {
    let mut merged = serde_json::Map::new();
    for (i, s) in analysis.suggestions.iter().enumerate() {
        if !ticked.contains(&i) {
            continue;
        }
        if let Some(c) = s.config_changes.as_object() {
            merged.extend(c.iter().map(|(k, v)| (k.clone(), v.clone())));
        }
    }
    Value::Object(merged)
}

/// The resume form: the checkpoint step (empty: from step 0) and the ticked suggestions.
fn read_form(pairs: &[(String, String)]) -> Result<(Option<u64>, Vec<usize>), ApiError> {
    let mut from_step = None;
    let mut ticked = Vec::new();
    for (k, v) in pairs {
        match k.as_str() {
            "from_step" if !v.trim().is_empty() => {
                from_step =
                    Some(v.trim().parse().map_err(|_| {
                        ApiError::validation("from_step must be a checkpoint's step")
                    })?)
            }
            "suggestion" => ticked.push(
                v.parse()
                    .map_err(|_| ApiError::validation("suggestion must be an index"))?,
            ),
            _ => {}
        }
    }
    Ok((from_step, ticked))
}

/// `POST /jobs/{id}/resume`: the service's resume (the rules of `POST /api/v1/jobs/{id}/resume`)
/// with the checkpoint and the ticked suggestions' config changes; then the new job's page.
pub async fn resume(
    State(st): State<AppState>,
    headers: HeaderMap,
    ApiPath(id): ApiPath<String>,
    StudioForm(pairs): StudioForm<Vec<(String, String)>>,
) -> ApiResult<Response> {
    let (from_step, ticked) = read_form(&pairs)?;
    let config_changes = if ticked.is_empty() {
        serde_json::json!({})
    } else {
        let analysis = crate::http::jobs::job_analysis(State(st.clone()), ApiPath(id.clone()))
            .await?
            .0;
        ticked_changes(&analysis, &ticked)
    };
    let job = crate::http::ids::job_id(&id)?;
    let request = ResumeRequest {
        from_step,
        config_changes,
    };
    let created = st.service()?.resume_job(job, request).await?;
    Ok(redirect(&headers, &format!("/jobs/{}", created.id)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::dto::SuggestionOut;
    use serde_json::json;

    fn analysis() -> AnalysisOut {
        AnalysisOut {
            job_id: None,
            error_type: "oom".into(),
            error_phase: "training".into(),
            error_code: "TRAINING_OOM".into(),
            description: "d".into(),
            confidence: "high".into(),
            suggestions: vec![
                SuggestionOut {
                    action: "halve the batch".into(),
                    detail: "".into(),
                    config_changes: json!({"per_device_train_batch_size": 1, "gradient_accumulation_steps": 4}),
                },
                SuggestionOut {
                    action: "smaller rank".into(),
                    detail: "".into(),
                    config_changes: json!({"lora_r": 8}),
                },
            ],
        }
    }

    #[test]
    fn restart_is_decided_by_the_changed_keys() {
        let v = suggestion_views(&analysis());
        assert!(!v[0].restarts);
        assert!(v[1].restarts);
        assert_eq!(v[1].keys, "lora_r");
    }

    #[test]
    fn the_form_names_a_step_and_suggestions() {
        let pairs = vec![
            ("from_step".to_string(), "24".to_string()),
            ("suggestion".into(), "0".into()),
            ("suggestion".into(), "2".into()),
        ];
        assert_eq!(read_form(&pairs).unwrap(), (Some(24), vec![0, 2]));
        assert_eq!(
            read_form(&[("from_step".into(), "".into())]).unwrap(),
            (None, vec![])
        );
        assert!(read_form(&[("suggestion".into(), "x".into())]).is_err());
    }

    #[test]
    fn ticked_changes_merge() {
        let a = analysis();
        assert_eq!(ticked_changes(&a, &[]), json!({}));
        assert_eq!(
            ticked_changes(&a, &[0, 1]),
            json!({"per_device_train_batch_size": 1, "gradient_accumulation_steps": 4, "lora_r": 8})
        );
    }
}
