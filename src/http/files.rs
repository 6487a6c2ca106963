//! `/api/v1/projects/{id}/files`: document uploads (multipart field `file`), listing,
//! deletion. The file is stored under a generated id in `DATA_DIR/projects/<id>/files/`,
//! complete and fsynced before the `file_uploaded` event is appended.

use axum::extract::multipart::{Multipart, MultipartError, MultipartRejection};
use axum::extract::{FromRequest, Request, State};
use axum::http::StatusCode;
use axum::Json;
use serde::Serialize;
use tunewright_actors::project::FileRecord;
use tunewright_schemas::{ctx, ErrorCode, Failure, FileId, ProjectId};
use utoipa::ToSchema;

use super::dto::{page_limit, paginate, FileOut, FilePage, PageQuery};
use super::error::{ApiError, ApiResult, ErrorBody};
use super::ids::{file_id, project_id, project_not_found};
use super::rejection::{ApiPath, ApiQuery};
use super::state::AppState;
use super::upload::kind::{kind_from_name, ContentCheck};
use super::upload::name::check_file_name;
use super::upload::store::PartFile;
use super::upload::{
    body_failure, drain, pump, with_actual_size, SizeLimits, DRAIN_CAP_BYTES, MAX_FIELD_BYTES,
};

/// The multipart form of a document upload.
#[derive(Debug, Serialize, ToSchema)]
pub struct FileUpload {
    /// The document: text, markdown, PDF, JSON, JSONL or CSV.
    #[schema(value_type = String, format = Binary)]
    pub file: Vec<u8>,
}

pub fn multipart_rejection(r: MultipartRejection) -> ApiError {
    ApiError::validation(format!("expected multipart/form-data: {}", r.body_text()))
}

pub fn multipart_error(e: MultipartError) -> ApiError {
    ApiError(body_failure(e.body_text()))
}

/// Discard what is left of a multipart body, within bounds.
pub async fn drain_multipart(mp: &mut Multipart) {
    let mut budget = DRAIN_CAP_BYTES;
    while let Ok(Some(field)) = mp.next_field().await {
        let mut field = Box::pin(field);
        let mut seen = 0u64;
        while let Some(Ok(c)) = futures::StreamExt::next(&mut field).await {
            seen += c.len() as u64;
            if seen > budget {
                return;
            }
        }
        budget = budget.saturating_sub(seen);
    }
}

/// Read a small non-file field and forget it.
async fn skip_field<S, E>(field: &mut S) -> Result<(), ApiError>
where
    S: futures::Stream<Item = Result<axum::body::Bytes, E>> + Unpin,
{
    if drain(field, MAX_FIELD_BYTES).await.is_some() {
        Ok(())
    } else {
        Err(ApiError::new(
            ErrorCode::RequestTooLarge,
            ctx! {"limit_bytes" => MAX_FIELD_BYTES},
        ))
    }
}

/// Upload a document.
#[utoipa::path(post, path = "/api/v1/projects/{id}/files", tag = "files",
    params(("id" = String, Path, description = "Project id")),
    request_body(content = FileUpload, content_type = "multipart/form-data"),
    responses(
        (status = 201, description = "Stored and recorded", body = FileOut),
        (status = 400, description = "VALIDATION_ERROR, FILE_EMPTY, FILE_INVALID_NAME or FILE_UNSUPPORTED_TYPE", body = ErrorBody),
        (status = 401, description = "UNAUTHORIZED", body = ErrorBody),
        (status = 404, description = "PROJECT_NOT_FOUND", body = ErrorBody),
        (status = 408, description = "REQUEST_TIMEOUT", body = ErrorBody),
        (status = 413, description = "FILE_TOO_LARGE or FILE_TOTAL_LIMIT", body = ErrorBody),
        (status = 500, description = "FILE_UPLOAD_FAILED", body = ErrorBody),
        (status = 503, description = "SERVICE_UNAVAILABLE", body = ErrorBody),
    ))]
pub async fn upload_file(
    State(st): State<AppState>,
    ApiPath(id): ApiPath<String>,
    req: Request,
) -> ApiResult<(StatusCode, Json<FileOut>)> {
    let service = st.service()?.clone();
    let pid = project_id(&id)?;
    let held = service
        .read(|s| s.projects.get(&pid).map(|p| p.files_total_bytes()))
        .ok_or_else(|| project_not_found(pid))?;
    let limits = SizeLimits {
        max_file_bytes: st.config.max_file_bytes,
        project_total: Some((held, service.config().limits.max_total_file_bytes)),
    };
    let mut mp = Multipart::from_request(req, &())
        .await
        .map_err(multipart_rejection)?;
    loop {
        let Some(field) = mp.next_field().await.map_err(multipart_error)? else {
            return Err(ApiError::validation(
                "the multipart field 'file' is missing",
            ));
        };
        if field.name() != Some("file") {
            skip_field(&mut Box::pin(field)).await?;
            continue;
        }
        let raw_name = field.file_name().map(str::to_owned);
        let mut field = Box::pin(field);
        let received = receive(&st, pid, raw_name.as_deref(), &mut field, limits).await;
        let record = match received {
            Ok(r) => r,
            Err(f) => {
                let rest = drain(&mut field, DRAIN_CAP_BYTES).await;
                drop(field);
                drain_multipart(&mut mp).await;
                // The project was deleted while the file streamed (its directory went with it).
                if project_gone(&service, pid) {
                    return Err(project_not_found(pid));
                }
                return Err(with_actual_size(f, rest).into());
            }
        };
        drop(field);
        let dest = st.config.data_dir.join(&record.stored_path);
        return match service.record_file(pid, record).await {
            Ok(view) => Ok((StatusCode::CREATED, Json(FileOut::from(&view)))),
            Err(f) => {
                let _ = tokio::fs::remove_file(&dest).await;
                if project_gone(&service, pid) {
                    return Err(project_not_found(pid));
                }
                Err(f.into())
            }
        };
    }
}

/// Whether the project no longer exists (deleted while a request about it ran).
pub fn project_gone(service: &tunewright_actors::Service, pid: ProjectId) -> bool {
    service.read(|s| !s.projects.contains_key(&pid))
}

/// Check the name, stream the content to disk, check type and size, commit the file.
async fn receive<S, E>(
    st: &AppState,
    pid: ProjectId,
    raw_name: Option<&str>,
    body: &mut S,
    limits: SizeLimits,
) -> Result<FileRecord, Failure>
where
    S: futures::Stream<Item = Result<axum::body::Bytes, E>> + Unpin,
    E: std::fmt::Display,
{
    let name = check_file_name(raw_name.unwrap_or(""))?.to_string();
    let kind = kind_from_name(&name)?;
    let file_id = FileId::new();
    let stored_path = format!("projects/{pid}/files/{file_id}");
    let mut part = PartFile::create(st.config.data_dir.join(&stored_path), &name).await?;
    let mut check = ContentCheck::new(&name, kind);
    pump(body, &mut part, &name, limits, |c| check.feed(c)).await?;
    if part.len() == 0 {
        return Err(Failure::new(
            ErrorCode::FileEmpty,
            ctx! {"filename" => name},
        ));
    }
    let media_type = check.finish()?;
    let (size_bytes, sha256) = part.commit().await?;
    Ok(FileRecord {
        file_id,
        name,
        media_type: media_type.into(),
        size_bytes,
        sha256,
        stored_path,
    })
}

/// The project's documents, oldest first.
#[utoipa::path(get, path = "/api/v1/projects/{id}/files", tag = "files",
    params(("id" = String, Path, description = "Project id"), PageQuery),
    responses(
        (status = 200, description = "A page of files", body = FilePage),
        (status = 400, description = "VALIDATION_ERROR", body = ErrorBody),
        (status = 401, description = "UNAUTHORIZED", body = ErrorBody),
        (status = 404, description = "PROJECT_NOT_FOUND", body = ErrorBody),
        (status = 503, description = "SERVICE_UNAVAILABLE", body = ErrorBody),
    ))]
pub async fn list_files(
    State(st): State<AppState>,
    ApiPath(id): ApiPath<String>,
    ApiQuery(q): ApiQuery<PageQuery>,
) -> ApiResult<Json<FilePage>> {
    let pid = project_id(&id)?;
    let limit = page_limit(q.limit)?;
    let (items, next) = st
        .service()?
        .read(|s| {
            s.projects.get(&pid).map(|p| {
                paginate::<FileId, _, _>(
                    &p.files,
                    q.cursor.as_deref(),
                    limit,
                    |_| true,
                    |f| FileOut::from(f),
                )
            })
        })
        .ok_or_else(|| project_not_found(pid))??;
    Ok(Json(FilePage { items, next }))
}

/// Delete a document (refused while a dataset job reads the documents).
#[utoipa::path(delete, path = "/api/v1/projects/{id}/files/{file_id}", tag = "files",
    params(("id" = String, Path, description = "Project id"), ("file_id" = String, Path, description = "File id")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 401, description = "UNAUTHORIZED", body = ErrorBody),
        (status = 404, description = "PROJECT_NOT_FOUND or FILE_NOT_FOUND", body = ErrorBody),
        (status = 409, description = "PROJECT_INVALID_STATUS", body = ErrorBody),
        (status = 503, description = "SERVICE_UNAVAILABLE", body = ErrorBody),
    ))]
pub async fn delete_file(
    State(st): State<AppState>,
    ApiPath((id, fid)): ApiPath<(String, String)>,
) -> ApiResult<StatusCode> {
    let pid = project_id(&id)?;
    let service = st.service()?;
    if !service.read(|s| s.projects.contains_key(&pid)) {
        return Err(project_not_found(pid));
    }
    let fid = file_id(pid, &fid)?;
    service.delete_file(pid, fid).await?;
    Ok(StatusCode::NO_CONTENT)
}
