//! `POST /api/v1/projects/{id}/dataset`: a ready SFT dataset as JSONL, sent as the raw body
//! or as the multipart field `file`. Streamed to disk under a size limit, validated line by
//! line (`DATASET_UPLOAD_INVALID` names the first bad line), then recorded; the project
//! becomes `ready_to_train`.

use axum::extract::multipart::Multipart;
use axum::extract::{FromRequest, Request, State};
use axum::http::{header, StatusCode};
use axum::Json;
use serde::Serialize;
use tunewright_actors::project::DatasetRecord;
use tunewright_schemas::{ctx, DatasetId, ErrorCode, Failure, ProjectId};
use utoipa::ToSchema;

use super::dto::DatasetOut;
use super::error::{ApiError, ApiResult, ErrorBody};
use super::files::{drain_multipart, multipart_error, multipart_rejection};
use super::ids::{project_id, project_not_found};
use super::rejection::ApiPath;
use super::state::AppState;
use super::upload::name::check_file_name;
use super::upload::store::PartFile;
use super::upload::{drain, pump, with_actual_size, SizeLimits, DRAIN_CAP_BYTES, MAX_FIELD_BYTES};

/// The multipart form of a dataset upload.
#[derive(Debug, Serialize, ToSchema)]
pub struct DatasetUpload {
    /// JSONL: one example per line (alpaca, messages or prompt/completion).
    #[schema(value_type = String, format = Binary)]
    pub file: Vec<u8>,
}

struct Stored {
    part: PartFile,
    name: String,
}

/// Upload the project's dataset.
#[utoipa::path(post, path = "/api/v1/projects/{id}/dataset", tag = "datasets",
    params(("id" = String, Path, description = "Project id")),
    request_body(
        description = "JSONL as the raw body (`application/jsonl`, `application/x-ndjson`, `text/plain`, ...) or multipart field `file`",
        content(
            (String = "application/jsonl"),
            (DatasetUpload = "multipart/form-data"),
        )
    ),
    responses(
        (status = 201, description = "Validated and recorded", body = DatasetOut),
        (status = 400, description = "DATASET_UPLOAD_INVALID, DATASET_TOO_FEW_EXAMPLES, FILE_EMPTY, FILE_INVALID_NAME or VALIDATION_ERROR", body = ErrorBody),
        (status = 401, description = "UNAUTHORIZED", body = ErrorBody),
        (status = 404, description = "PROJECT_NOT_FOUND", body = ErrorBody),
        (status = 408, description = "REQUEST_TIMEOUT", body = ErrorBody),
        (status = 409, description = "PROJECT_INVALID_STATUS (training)", body = ErrorBody),
        (status = 413, description = "FILE_TOO_LARGE", body = ErrorBody),
        (status = 500, description = "FILE_UPLOAD_FAILED", body = ErrorBody),
        (status = 503, description = "SERVICE_UNAVAILABLE", body = ErrorBody),
    ))]
pub async fn upload_dataset(
    State(st): State<AppState>,
    ApiPath(id): ApiPath<String>,
    req: Request,
) -> ApiResult<(StatusCode, Json<DatasetOut>)> {
    let service = st.service()?.clone();
    let pid = project_id(&id)?;
    if !service.read(|s| s.projects.contains_key(&pid)) {
        return Err(project_not_found(pid));
    }
    let dataset_id = DatasetId::new();
    let stored_path = format!("projects/{pid}/datasets/{dataset_id}.jsonl");
    let dest = st.config.data_dir.join(&stored_path);
    let limits = SizeLimits {
        max_file_bytes: st.config.max_dataset_bytes,
        project_total: None,
    };
    let is_multipart = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.to_ascii_lowercase().starts_with("multipart/"));
    // A project deleted while its dataset streamed is `PROJECT_NOT_FOUND`, not a failed write.
    let gone = |e: ApiError| {
        if super::files::project_gone(&service, pid) {
            project_not_found(pid)
        } else {
            e
        }
    };
    let stored = if is_multipart {
        receive_multipart(req, &dest, limits).await.map_err(gone)?
    } else {
        let mut body = req.into_body().into_data_stream();
        let name = "dataset.jsonl".to_string();
        let mut part = PartFile::create(dest.clone(), &name)
            .await
            .map_err(|f| gone(f.into()))?;
        if let Err(f) = pump(&mut body, &mut part, &name, limits, |_| Ok(())).await {
            let rest = drain(&mut body, DRAIN_CAP_BYTES).await;
            return Err(gone(with_actual_size(f, rest).into()));
        }
        Stored { part, name }
    };
    let record = validate_and_commit(stored, pid, dataset_id, stored_path)
        .await
        .map_err(gone)?;
    match service.import_dataset(pid, record).await {
        Ok(view) => Ok((StatusCode::CREATED, Json(DatasetOut::from(&view)))),
        Err(f) => {
            let _ = tokio::fs::remove_file(&dest).await;
            Err(gone(f.into()))
        }
    }
}

async fn receive_multipart(
    req: Request,
    dest: &std::path::Path,
    limits: SizeLimits,
) -> Result<Stored, ApiError> {
    let mut mp = Multipart::from_request(req, &())
        .await
        .map_err(multipart_rejection)?;
    loop {
        let Some(field) = mp.next_field().await.map_err(multipart_error)? else {
            return Err(ApiError::validation(
                "the multipart field 'file' is missing",
            ));
        };
        let mut field = Box::pin(field);
        if field.name() != Some("file") {
            if drain(&mut field, MAX_FIELD_BYTES).await.is_none() {
                return Err(ApiError::new(
                    ErrorCode::RequestTooLarge,
                    ctx! {"limit_bytes" => MAX_FIELD_BYTES},
                ));
            }
            continue;
        }
        let name = match field.file_name() {
            Some(n) => check_file_name(n)?.to_string(),
            None => "dataset.jsonl".to_string(),
        };
        let mut part = PartFile::create(dest.to_path_buf(), &name).await?;
        if let Err(f) = pump(&mut field, &mut part, &name, limits, |_| Ok(())).await {
            let rest = drain(&mut field, DRAIN_CAP_BYTES).await;
            drop(field);
            drain_multipart(&mut mp).await;
            return Err(with_actual_size(f, rest).into());
        }
        return Ok(Stored { part, name });
    }
}

/// Validate the received bytes line by line, then make the file durable.
async fn validate_and_commit(
    stored: Stored,
    _pid: ProjectId,
    dataset_id: DatasetId,
    stored_path: String,
) -> Result<DatasetRecord, ApiError> {
    let Stored { mut part, name } = stored;
    if part.len() == 0 {
        return Err(Failure::new(ErrorCode::FileEmpty, ctx! {"filename" => name}).into());
    }
    part.flush().await?;
    let path = part.part_path().to_path_buf();
    let summary = tokio::task::spawn_blocking(move || -> Result<_, Failure> {
        let bytes = std::fs::read(&path)
            .map_err(|e| super::upload::store::write_failed("dataset.jsonl", e))?;
        tunewright_schemas::dataset::validate_jsonl(&bytes)
    })
    .await
    .map_err(ApiError::internal)??;
    let (size_bytes, sha256) = part.commit().await?;
    Ok(DatasetRecord {
        dataset_id,
        format: summary.format.to_string(),
        num_examples: summary.num_examples as u64,
        size_bytes,
        sha256,
        stored_path,
        source: "upload".into(),
    })
}
