//! Jobs: submit (`POST /projects/{id}/jobs`), list a project's, show, cancel, the failure
//! analysis and the artifacts of one job.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use tunewright_actors::analyzer::analyze_job_failure;
use tunewright_actors::resume::ResumeRequest;
use tunewright_actors::Service;
use tunewright_events::projection::JobView;
use tunewright_schemas::{ctx, ErrorCode, JobId, JobKind};

use super::dto::{
    page_limit, paginate, AnalysisOut, ArtifactOut, ArtifactPage, CreateJob, JobOut, JobPage,
    PageQuery, ResumeJob,
};
use super::error::{ApiError, ApiResult, ErrorBody};
use super::ids::{job_id, job_not_found, project_id, project_not_found};
use super::rejection::{ApiJson, ApiPath, ApiQuery};
use super::state::AppState;

/// A job as the API shows it, with its place in the device's queue.
fn job_out(service: &Service, job: &JobView) -> JobOut {
    JobOut::from(job).queued_at(service.read(|s| s.queue_position(job.id)))
}

/// Submit a job of `kind` with `config`.
#[utoipa::path(post, path = "/api/v1/projects/{id}/jobs", tag = "jobs",
    params(("id" = String, Path, description = "Project id")),
    request_body = CreateJob,
    responses(
        (status = 201, description = "Admitted and queued (a training waiting for the device shows its queue_position)", body = JobOut),
        (status = 400, description = "VALIDATION_ERROR, DATASET_NO_DOCS, TRAINING_NO_DATASET, TRAINING_NO_GPU, MODEL_UNSUPPORTED_ARCH, EXPORT_NO_RUN, EVALUATION_NO_RUN, OLLAMA_API_KEY_MISSING", body = ErrorBody),
        (status = 401, description = "UNAUTHORIZED", body = ErrorBody),
        (status = 403, description = "MODEL_ACCESS_DENIED", body = ErrorBody),
        (status = 404, description = "PROJECT_NOT_FOUND, SPLIT_NOT_FOUND, MODEL_NOT_FOUND or CHECKPOINT_NOT_FOUND (an evaluation's checkpoint missing or failing its hash check)", body = ErrorBody),
        (status = 409, description = "TRAINING_ALREADY_RUNNING, PROJECT_INVALID_STATUS or CONFLICT", body = ErrorBody),
        (status = 413, description = "REQUEST_TOO_LARGE", body = ErrorBody),
        (status = 422, description = "EXPORT_FORMAT_UNAVAILABLE", body = ErrorBody),
        (status = 502, description = "MODEL_RESOLVE_FAILED", body = ErrorBody),
        (status = 503, description = "SERVICE_UNAVAILABLE", body = ErrorBody),
    ))]
pub async fn submit_job(
    State(st): State<AppState>,
    ApiPath(id): ApiPath<String>,
    ApiJson(body): ApiJson<CreateJob>,
) -> ApiResult<(StatusCode, Json<JobOut>)> {
    let pid = project_id(&id)?;
    let kind: JobKind = body.kind.into();
    let service = st.service()?;
    let job = service.submit_job(pid, kind, body.config).await?;
    Ok((StatusCode::CREATED, Json(job_out(service, &job))))
}

/// The project's jobs, oldest first.
#[utoipa::path(get, path = "/api/v1/projects/{id}/jobs", tag = "jobs",
    params(("id" = String, Path, description = "Project id"), PageQuery),
    responses(
        (status = 200, description = "A page of jobs", body = JobPage),
        (status = 400, description = "VALIDATION_ERROR", body = ErrorBody),
        (status = 401, description = "UNAUTHORIZED", body = ErrorBody),
        (status = 404, description = "PROJECT_NOT_FOUND", body = ErrorBody),
        (status = 503, description = "SERVICE_UNAVAILABLE", body = ErrorBody),
    ))]
pub async fn list_jobs(
    State(st): State<AppState>,
    ApiPath(id): ApiPath<String>,
    ApiQuery(q): ApiQuery<PageQuery>,
) -> ApiResult<Json<JobPage>> {
    let pid = project_id(&id)?;
    let limit = page_limit(q.limit)?;
    let (items, next) = st.service()?.read(|s| {
        if !s.projects.contains_key(&pid) {
            return Err(project_not_found(pid));
        }
        paginate::<JobId, _, _>(
            &s.jobs,
            q.cursor.as_deref(),
            limit,
            |j| j.project_id == pid,
            |j| JobOut::from(j).queued_at(s.queue_position(j.id)),
        )
    })?;
    Ok(Json(JobPage { items, next }))
}

/// One job.
#[utoipa::path(get, path = "/api/v1/jobs/{id}", tag = "jobs",
    params(("id" = String, Path, description = "Job id")),
    responses(
        (status = 200, description = "The job", body = JobOut),
        (status = 401, description = "UNAUTHORIZED", body = ErrorBody),
        (status = 404, description = "JOB_NOT_FOUND", body = ErrorBody),
        (status = 503, description = "SERVICE_UNAVAILABLE", body = ErrorBody),
    ))]
pub async fn get_job(
    State(st): State<AppState>,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<Json<JobOut>> {
    let id = job_id(&id)?;
    let service = st.service()?;
    service
        .read(|s| s.jobs.get(&id).cloned())
        .map(|j| Json(job_out(service, &j)))
        .ok_or_else(|| job_not_found(id))
}

/// Cancel a queued, retrying or running job (a running one answers `cancelling` until its
/// worker is gone, then is `cancelled`).
#[utoipa::path(post, path = "/api/v1/jobs/{id}/cancel", tag = "jobs",
    params(("id" = String, Path, description = "Job id")),
    responses(
        (status = 200, description = "Cancelled", body = JobOut),
        (status = 401, description = "UNAUTHORIZED", body = ErrorBody),
        (status = 404, description = "JOB_NOT_FOUND", body = ErrorBody),
        (status = 409, description = "JOB_ALREADY_FINISHED", body = ErrorBody),
        (status = 500, description = "JOB_CANCEL_FAILED", body = ErrorBody),
        (status = 503, description = "SERVICE_UNAVAILABLE", body = ErrorBody),
    ))]
pub async fn cancel_job(
    State(st): State<AppState>,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<Json<JobOut>> {
    let id = job_id(&id)?;
    let service = st.service()?;
    let job = service.cancel_job(id).await?;
    Ok(Json(job_out(service, &job)))
}

/// Continue a failed or cancelled training as a new job, linked to it (docs/jobs.md).
#[utoipa::path(post, path = "/api/v1/jobs/{id}/resume", tag = "jobs",
    params(("id" = String, Path, description = "The failed or cancelled training")),
    request_body = ResumeJob,
    responses(
        (status = 201, description = "The new, linked training (admitted and queued)", body = JobOut),
        (status = 400, description = "VALIDATION_ERROR, TRAINING_NO_GPU, MODEL_UNSUPPORTED_ARCH", body = ErrorBody),
        (status = 401, description = "UNAUTHORIZED", body = ErrorBody),
        (status = 404, description = "JOB_NOT_FOUND, CHECKPOINT_NOT_FOUND or MODEL_NOT_FOUND", body = ErrorBody),
        (status = 409, description = "CONFLICT (not a failed or cancelled training), TRAINING_ALREADY_RUNNING", body = ErrorBody),
        (status = 503, description = "SERVICE_UNAVAILABLE", body = ErrorBody),
    ))]
pub async fn resume_job(
    State(st): State<AppState>,
    ApiPath(id): ApiPath<String>,
    ApiJson(body): ApiJson<ResumeJob>,
) -> ApiResult<(StatusCode, Json<JobOut>)> {
    let id = job_id(&id)?;
    let service = st.service()?;
    let request = ResumeRequest {
        from_step: body.from_step,
        config_changes: body.config_changes,
    };
    let job = service.resume_job(id, request).await?;
    Ok((StatusCode::CREATED, Json(job_out(service, &job))))
}

/// The analysis of the job's failure (its final failure, else its latest failed attempt).
#[utoipa::path(get, path = "/api/v1/jobs/{id}/analysis", tag = "jobs",
    params(("id" = String, Path, description = "Job id")),
    responses(
        (status = 200, description = "The failure analysis (docs/errors.md)", body = AnalysisOut),
        (status = 401, description = "UNAUTHORIZED", body = ErrorBody),
        (status = 404, description = "JOB_NOT_FOUND, or NOT_FOUND when the job has not failed", body = ErrorBody),
        (status = 503, description = "SERVICE_UNAVAILABLE", body = ErrorBody),
    ))]
pub async fn job_analysis(
    State(st): State<AppState>,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<Json<AnalysisOut>> {
    let id = job_id(&id)?;
    let job = st
        .service()?
        .read(|s| s.jobs.get(&id).cloned())
        .ok_or_else(|| job_not_found(id))?;
    let failure = job
        .error
        .clone()
        .or_else(|| job.attempt_failures.last().cloned())
        .ok_or_else(|| {
            ApiError::new(
                ErrorCode::NotFound,
                ctx! {"resource" => format!("A failure analysis of job {id} (status '{}')", job.status)},
            )
        })?;
    let gpu = if job.kind == JobKind::Train {
        st.service()?.hardware().gpu_available().await
    } else {
        None
    };
    let analysed = analyze_job_failure(failure, &job, gpu);
    match analysed.analysis.as_ref() {
        Some(a) => {
            let mut out = AnalysisOut::from(a);
            out.job_id = Some(id.to_string());
            Ok(Json(out))
        }
        None => Err(ApiError::internal("the analyzer returned no analysis")),
    }
}

/// What the job produced (checkpoints, adapters, exports), by name.
#[utoipa::path(get, path = "/api/v1/jobs/{id}/artifacts", tag = "jobs",
    params(("id" = String, Path, description = "Job id"), PageQuery),
    responses(
        (status = 200, description = "Artifacts", body = ArtifactPage),
        (status = 400, description = "VALIDATION_ERROR", body = ErrorBody),
        (status = 401, description = "UNAUTHORIZED", body = ErrorBody),
        (status = 404, description = "JOB_NOT_FOUND", body = ErrorBody),
        (status = 503, description = "SERVICE_UNAVAILABLE", body = ErrorBody),
    ))]
pub async fn job_artifacts(
    State(st): State<AppState>,
    ApiPath(id): ApiPath<String>,
    ApiQuery(q): ApiQuery<PageQuery>,
) -> ApiResult<Json<ArtifactPage>> {
    let id = job_id(&id)?;
    let limit = page_limit(q.limit)?;
    let artifacts = st
        .service()?
        .read(|s| s.jobs.get(&id).map(|j| j.artifacts.clone()))
        .ok_or_else(|| job_not_found(id))?;
    let (items, next) = paginate::<String, _, _>(
        &artifacts
            .into_iter()
            .map(|(k, v)| (k.clone(), (k, v)))
            .collect(),
        q.cursor.as_deref(),
        limit,
        |_| true,
        |(name, (path, sha256))| ArtifactOut {
            name: name.clone(),
            path: path.clone(),
            sha256: sha256.clone(),
        },
    )?;
    Ok(Json(ArtifactPage { items, next }))
}
