//! A job's artifacts on its page (name, size, sha256) and their download
//! (`/jobs/{id}/artifacts/{name}`): only a file the log records as one of this job's
//! artifacts is served, and only from inside the data directory (a recorded path that
//! resolves elsewhere, through `..` or a link, is refused).

use std::path::PathBuf;

use axum::extract::{Path, Request, State};
use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use tower::ServiceExt;
use tower_http::services::ServeFile;
use tunewright_events::projection::JobView;
use tunewright_schemas::{ctx, ErrorCode};

use super::gate::percent_encode;
use crate::http::error::{ApiError, ApiResult};
use crate::http::ids::{job_id, job_not_found};
use crate::http::rejection::clip;
use crate::http::state::AppState;

#[derive(Debug, Serialize)]
pub struct ArtifactRow {
    pub name: String,
    pub sha256: String,
    pub size_bytes: Option<u64>,
    pub url: String,
}

/// The job's artifacts as its page lists them.
pub fn rows(st: &AppState, job: &JobView) -> Vec<ArtifactRow> {
    job.artifacts
        .iter()
        .map(|(name, (path, sha256))| ArtifactRow {
            name: name.clone(),
            sha256: sha256.clone(),
            size_bytes: std::fs::metadata(st.config.data_dir.join(path))
                .ok()
                .map(|m| m.len()),
            url: format!("/jobs/{}/artifacts/{}", job.id, percent_encode(name)),
        })
        .collect()
}

fn not_found(what: String) -> ApiError {
    ApiError::new(ErrorCode::NotFound, ctx! {"resource" => what})
}

/// The file of artifact `name` of the job, inside the data directory.
fn artifact_file(st: &AppState, id: &str, name: &str) -> ApiResult<PathBuf> {
    let jid = job_id(id)?;
    let recorded = st
        .service()?
        .read(|s| s.jobs.get(&jid).map(|j| j.artifacts.get(name).cloned()))
        .ok_or_else(|| job_not_found(jid))?;
    let what = || format!("Artifact '{}' of job {jid}", clip(name));
    let (path, _) = recorded.ok_or_else(|| not_found(what()))?;
    let root = st
        .config
        .data_dir
        .canonicalize()
        .map_err(ApiError::internal)?;
    let file = st
        .config
        .data_dir
        .join(&path)
        .canonicalize()
        .map_err(|_| not_found(what()))?;
    if !file.starts_with(&root) || !file.is_file() {
        tracing::warn!(job = %jid, artifact = name, path = %path, "refused an artifact outside the data directory");
        return Err(not_found(what()));
    }
    Ok(file)
}

/// A file name safe inside a quoted `Content-Disposition` value.
fn download_name(name: &str) -> String {
    let base = name.rsplit('/').next().unwrap_or(name);
    base.chars()
        .map(|c| {
            if c.is_ascii_graphic() && c != '"' && c != '\\' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// `GET /jobs/{id}/artifacts/{name}`.
pub async fn download(
    State(st): State<AppState>,
    Path((id, name)): Path<(String, String)>,
    req: Request,
) -> ApiResult<Response> {
    let file = artifact_file(&st, &id, &name)?;
    let served = ServeFile::new(&file)
        .oneshot(req)
        .await
        .map_err(ApiError::internal)?;
    let mut resp = served.into_response();
    let disposition = format!("attachment; filename=\"{}\"", download_name(&name));
    if let Ok(v) = HeaderValue::from_str(&disposition) {
        resp.headers_mut().insert(header::CONTENT_DISPOSITION, v);
    }
    Ok(resp)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn download_names_are_plain() {
        assert_eq!(
            download_name("adapter/adapter_model.safetensors"),
            "adapter_model.safetensors"
        );
        assert_eq!(download_name("a\"b\\c d"), "a_b_c_d");
    }
}
