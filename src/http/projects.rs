//! `/api/v1/projects`: create, list, show, delete; splits of a project's dataset.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use tunewright_schemas::ProjectId;

use super::dto::{
    page_limit, paginate, CreateProject, CreateSplit, PageQuery, ProjectOut, ProjectPage, SplitOut,
};
use super::error::{ApiResult, ErrorBody};
use super::ids::{project_id, project_not_found};
use super::rejection::{ApiJson, ApiPath, ApiQuery};
use super::state::AppState;

/// Create a project.
#[utoipa::path(post, path = "/api/v1/projects", tag = "projects",
    request_body = CreateProject,
    responses(
        (status = 201, description = "Created", body = ProjectOut),
        (status = 400, description = "VALIDATION_ERROR", body = ErrorBody),
        (status = 401, description = "UNAUTHORIZED", body = ErrorBody),
        (status = 413, description = "REQUEST_TOO_LARGE", body = ErrorBody),
        (status = 503, description = "SERVICE_UNAVAILABLE", body = ErrorBody),
    ))]
pub async fn create_project(
    State(st): State<AppState>,
    ApiJson(body): ApiJson<CreateProject>,
) -> ApiResult<(StatusCode, Json<ProjectOut>)> {
    let p = st.service()?.create_project(&body.name).await?;
    Ok((StatusCode::CREATED, Json(ProjectOut::from(&p))))
}

/// List projects, oldest first.
#[utoipa::path(get, path = "/api/v1/projects", tag = "projects",
    params(PageQuery),
    responses(
        (status = 200, description = "A page of projects", body = ProjectPage),
        (status = 400, description = "VALIDATION_ERROR", body = ErrorBody),
        (status = 401, description = "UNAUTHORIZED", body = ErrorBody),
        (status = 503, description = "SERVICE_UNAVAILABLE", body = ErrorBody),
    ))]
pub async fn list_projects(
    State(st): State<AppState>,
    ApiQuery(q): ApiQuery<PageQuery>,
) -> ApiResult<Json<ProjectPage>> {
    let limit = page_limit(q.limit)?;
    let (items, next) = st.service()?.read(|s| {
        paginate::<ProjectId, _, _>(
            &s.projects,
            q.cursor.as_deref(),
            limit,
            |_| true,
            |p| ProjectOut::from(p),
        )
    })?;
    Ok(Json(ProjectPage { items, next }))
}

/// One project.
#[utoipa::path(get, path = "/api/v1/projects/{id}", tag = "projects",
    params(("id" = String, Path, description = "Project id")),
    responses(
        (status = 200, description = "The project", body = ProjectOut),
        (status = 401, description = "UNAUTHORIZED", body = ErrorBody),
        (status = 404, description = "PROJECT_NOT_FOUND", body = ErrorBody),
        (status = 503, description = "SERVICE_UNAVAILABLE", body = ErrorBody),
    ))]
pub async fn get_project(
    State(st): State<AppState>,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<Json<ProjectOut>> {
    let id = project_id(&id)?;
    st.service()?
        .read(|s| s.projects.get(&id).map(ProjectOut::from))
        .map(Json)
        .ok_or_else(|| project_not_found(id))
}

/// Delete a project and its files (refused while it has queued or running jobs).
#[utoipa::path(delete, path = "/api/v1/projects/{id}", tag = "projects",
    params(("id" = String, Path, description = "Project id")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 401, description = "UNAUTHORIZED", body = ErrorBody),
        (status = 404, description = "PROJECT_NOT_FOUND", body = ErrorBody),
        (status = 409, description = "PROJECT_DELETE_RUNNING", body = ErrorBody),
        (status = 503, description = "SERVICE_UNAVAILABLE", body = ErrorBody),
    ))]
pub async fn delete_project(
    State(st): State<AppState>,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<StatusCode> {
    let id = project_id(&id)?;
    st.service()?.delete_project(id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Split the project's dataset into named parts (docs/projects.md).
#[utoipa::path(post, path = "/api/v1/projects/{id}/splits", tag = "datasets",
    params(("id" = String, Path, description = "Project id")),
    request_body = CreateSplit,
    responses(
        (status = 201, description = "Created", body = SplitOut),
        (status = 400, description = "VALIDATION_ERROR", body = ErrorBody),
        (status = 401, description = "UNAUTHORIZED", body = ErrorBody),
        (status = 404, description = "PROJECT_NOT_FOUND", body = ErrorBody),
        (status = 413, description = "REQUEST_TOO_LARGE", body = ErrorBody),
        (status = 422, description = "DATASET_NOT_IMPORTED", body = ErrorBody),
        (status = 503, description = "SERVICE_UNAVAILABLE", body = ErrorBody),
    ))]
pub async fn create_split(
    State(st): State<AppState>,
    ApiPath(id): ApiPath<String>,
    ApiJson(body): ApiJson<CreateSplit>,
) -> ApiResult<(StatusCode, Json<SplitOut>)> {
    let id = project_id(&id)?;
    let ratios = body.ratios.into_iter().collect();
    let split = st
        .service()?
        .create_split(id, body.name, ratios, body.seed)
        .await?;
    Ok((StatusCode::CREATED, Json(SplitOut::from(&split))))
}
