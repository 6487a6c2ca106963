//! Uploads from the project page: documents (for dataset generation) and a ready JSONL
//! dataset. The browser sends the same multipart form the API takes and the API's handlers
//! stream, check and record it (size limits, types, line-numbered dataset validation); the
//! answer is the refreshed section of the page.

use axum::extract::{Path, Request, State};
use axum::response::Html;

use super::project::{section, Section};
use crate::http::error::ApiResult;
use crate::http::ids::project_id;
use crate::http::rejection::ApiPath;
use crate::http::state::AppState;

/// `POST /projects/{id}/files` (multipart `file`): the documents section.
pub async fn document(
    State(st): State<AppState>,
    Path(id): Path<String>,
    req: Request,
) -> ApiResult<Html<String>> {
    let pid = project_id(&id)?;
    let _stored = crate::http::files::upload_file(State(st.clone()), ApiPath(id), req).await?;
    section(&st, pid, Section::Documents)
}

/// `POST /projects/{id}/files/{file_id}/delete`: the documents section.
pub async fn delete_document(
    State(st): State<AppState>,
    Path((id, file)): Path<(String, String)>,
) -> ApiResult<Html<String>> {
    let pid = project_id(&id)?;
    crate::http::files::delete_file(State(st.clone()), ApiPath((id, file))).await?;
    section(&st, pid, Section::Documents)
}

/// `POST /projects/{id}/dataset` (multipart `file`): the dataset section.
pub async fn dataset(
    State(st): State<AppState>,
    Path(id): Path<String>,
    req: Request,
) -> ApiResult<Html<String>> {
    let pid = project_id(&id)?;
    let _imported =
        crate::http::dataset::upload_dataset(State(st.clone()), ApiPath(id), req).await?;
    section(&st, pid, Section::Dataset)
}
