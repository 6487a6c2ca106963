//! The project page (`/projects/{id}`): documents, dataset and splits, dataset generation,
//! the training form, the project's evaluations side by side and its jobs; and the actions that create and delete a
//! project. Each section is also a fragment an action answers with (`Section`).

use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::{Html, IntoResponse, Response};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tunewright_events::State as LogState;
use tunewright_schemas::ProjectId;

use super::form::StudioForm;
use super::page::job_json;
use super::page::{page, redirect};
use super::templates::render;
use super::train_form::{fields, FieldView};
use crate::http::dto::{CreateProject, FileOut, ProjectOut};
use crate::http::error::ApiResult;
use crate::http::evaluations::{evaluations_of, EvaluationOut};
use crate::http::ids::{project_id, project_not_found};
use crate::http::rejection::{ApiJson, ApiPath};
use crate::http::state::AppState;

/// Size limits shown before an upload.
#[derive(Debug, Serialize)]
pub struct Limits {
    pub max_file_bytes: u64,
    pub max_total_file_bytes: u64,
    pub used_file_bytes: u64,
    pub max_dataset_bytes: u64,
}

/// What the project page shows.
#[derive(Debug, Serialize)]
pub struct ProjectPage {
    pub project: ProjectOut,
    pub files: Vec<FileOut>,
    pub limits: Limits,
    /// Newest first, as the API shows them.
    pub jobs: Vec<Value>,
    pub train_fields: Vec<FieldView>,
    pub trainings: usize,
    /// The project's evaluations side by side, as the API lists them.
    pub evaluations: Vec<EvaluationOut>,
}

/// The model the training form starts with: the one this project trained last.
fn last_model(s: &LogState, id: ProjectId) -> Option<String> {
    s.jobs
        .values()
        .rev()
        .filter(|j| j.project_id == id && j.kind == tunewright_schemas::JobKind::Train)
        .find_map(|j| j.config.0.get("base_model")?.as_str().map(str::to_owned))
}

/// The page's data, from the live state.
pub fn project_page(st: &AppState, id: ProjectId) -> ApiResult<ProjectPage> {
    let service = st.service()?;
    let max_total = service.config().limits.max_total_file_bytes;
    service
        .read(|s| {
            let p = s.projects.get(&id)?;
            let jobs: Vec<Value> = s
                .jobs
                .values()
                .rev()
                .filter(|j| j.project_id == id)
                .map(|j| job_json(s, j))
                .collect();
            let trainings = jobs.iter().filter(|j| j["kind"] == "train").count();
            Some(ProjectPage {
                project: ProjectOut::from(p),
                files: p.files.values().map(FileOut::from).collect(),
                limits: Limits {
                    max_file_bytes: st.config.max_file_bytes,
                    max_total_file_bytes: max_total,
                    used_file_bytes: p.files_total_bytes(),
                    max_dataset_bytes: st.config.max_dataset_bytes,
                },
                jobs,
                train_fields: fields(last_model(s, id).as_deref()),
                trainings,
                evaluations: evaluations_of(s, id),
            })
        })
        .ok_or_else(|| project_not_found(id))
}

/// One section of the project page, rendered alone for an action's answer.
#[derive(Debug, Clone, Copy)]
pub enum Section {
    Documents,
    Dataset,
}

pub fn section(st: &AppState, id: ProjectId, which: Section) -> ApiResult<Html<String>> {
    let data = project_page(st, id)?;
    let name = match which {
        Section::Documents => "project_documents.html",
        Section::Dataset => "project_dataset.html",
    };
    render(name, data)
}

/// `GET /projects/{id}`.
pub async fn show(
    State(st): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> ApiResult<Html<String>> {
    let id = project_id(&id)?;
    let data = project_page(&st, id)?;
    page(&st, &headers, "project.html", data)
}

#[derive(Debug, Deserialize)]
pub struct NewProject {
    pub name: String,
}

/// `POST /projects`: create, then open the new project.
pub async fn create(
    State(st): State<AppState>,
    headers: HeaderMap,
    StudioForm(f): StudioForm<NewProject>,
) -> ApiResult<Response> {
    let (_, created) =
        crate::http::projects::create_project(State(st), ApiJson(CreateProject { name: f.name }))
            .await?;
    Ok(redirect(&headers, &format!("/projects/{}", created.0.id)))
}

/// `POST /projects/{id}/delete`: delete, then back to the dashboard.
pub async fn delete(
    State(st): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    crate::http::projects::delete_project(State(st), ApiPath(id)).await?;
    Ok(redirect(&headers, "/").into_response())
}
