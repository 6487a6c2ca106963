//! Starting and stopping jobs from the pages: a training from the training form, a dataset
//! preview or generation, an export of a finished training, a cancellation. Every one goes
//! through the API's `submit_job`/`cancel_job`, so admission (the project's state, the
//! device, the config) refuses here exactly as it does for the API, with the same code and
//! detail.

use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::Response;
use serde_json::{json, Map, Value};

use super::form::StudioForm;
use super::page::redirect;
use super::train_form::config_of;
use crate::http::dto::{CreateJob, JobKindIn};
use crate::http::error::{ApiError, ApiResult};
use crate::http::rejection::{ApiJson, ApiPath};
use crate::http::state::AppState;

/// Submit through the API's handler; the new job's id.
pub async fn submit(
    st: &AppState,
    project: String,
    kind: JobKindIn,
    config: Value,
) -> ApiResult<String> {
    let (_, job) = crate::http::jobs::submit_job(
        State(st.clone()),
        ApiPath(project),
        ApiJson(CreateJob { kind, config }),
    )
    .await?;
    Ok(job.0.id)
}

/// `POST /projects/{id}/train`: the training form; then the new job's page.
pub async fn train(
    State(st): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    StudioForm(pairs): StudioForm<Vec<(String, String)>>,
) -> ApiResult<Response> {
    let config = config_of(&pairs)?;
    let job = submit(&st, id, JobKindIn::Train, config).await?;
    Ok(redirect(&headers, &format!("/jobs/{job}")))
}

/// The generation form's fields that are numbers (the rest are text; empty means default).
const GENERATION_NUMBERS: &[&str] = &["preview_chunks", "examples_per_chunk", "chunk_tokens"];
const GENERATION_TEXTS: &[&str] = &["llm_model", "llm_base_url"];

fn generation_config(pairs: &[(String, String)]) -> Result<Value, ApiError> {
    let mut config = Map::new();
    for (k, v) in pairs {
        let v = v.trim();
        if v.is_empty() {
            continue;
        }
        if GENERATION_NUMBERS.contains(&k.as_str()) {
            let n: u64 = v
                .parse()
                .map_err(|_| ApiError::validation(format!("{k}: must be a whole number")))?;
            config.insert(k.clone(), json!(n));
        } else if GENERATION_TEXTS.contains(&k.as_str()) {
            config.insert(k.clone(), json!(v));
        }
    }
    Ok(Value::Object(config))
}

/// `POST /projects/{id}/generate`: a `dataset_preview` (field `kind=preview`) or
/// `dataset_generate` job from the project's documents; then the job's page.
pub async fn generate(
    State(st): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    StudioForm(pairs): StudioForm<Vec<(String, String)>>,
) -> ApiResult<Response> {
    let preview = pairs.iter().any(|(k, v)| k == "kind" && v == "preview");
    let kind = if preview {
        JobKindIn::DatasetPreview
    } else {
        JobKindIn::DatasetGenerate
    };
    let job = submit(&st, id, kind, generation_config(&pairs)?).await?;
    Ok(redirect(&headers, &format!("/jobs/{job}")))
}

/// `POST /jobs/{id}/export`: export a finished training's adapter (PEFT); then the export's page.
pub async fn export(
    State(st): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    let job_id = crate::http::ids::job_id(&id)?;
    let project = st
        .service()?
        .read(|s| s.jobs.get(&job_id).map(|j| j.project_id.to_string()))
        .ok_or_else(|| crate::http::ids::job_not_found(job_id))?;
    let config = json!({"format": "peft", "train_job_id": id});
    let job = submit(&st, project, JobKindIn::Export, config).await?;
    Ok(redirect(&headers, &format!("/jobs/{job}")))
}

/// `POST /jobs/{id}/cancel`: back to the job's page.
pub async fn cancel(
    State(st): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    let _cancelled = crate::http::jobs::cancel_job(State(st), ApiPath(id.clone())).await?;
    Ok(redirect(&headers, &format!("/jobs/{id}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generation_fields() {
        let pairs = vec![
            ("kind".to_string(), "preview".to_string()),
            ("preview_chunks".into(), "2".into()),
            ("llm_model".into(), " llama3.1:8b ".into()),
            ("examples_per_chunk".into(), "".into()),
        ];
        let c = generation_config(&pairs).unwrap();
        assert_eq!(c, json!({"preview_chunks": 2, "llm_model": "llama3.1:8b"}));
        assert!(generation_config(&[("chunk_tokens".into(), "x".into())]).is_err());
    }
}
