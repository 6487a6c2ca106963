//! Ids in paths: text that does not parse as an id names nothing, so it is answered with the
//! resource's `*_NOT_FOUND`, as an id that parses but does not exist.

use tunewright_schemas::{ctx, ErrorCode, FileId, JobId, ProjectId};

use super::error::ApiError;
use super::rejection::clip;

pub fn project_id(text: &str) -> Result<ProjectId, ApiError> {
    text.parse().map_err(|_| {
        ApiError::new(
            ErrorCode::ProjectNotFound,
            ctx! {"project_id" => clip(text)},
        )
    })
}

pub fn job_id(text: &str) -> Result<JobId, ApiError> {
    text.parse()
        .map_err(|_| ApiError::new(ErrorCode::JobNotFound, ctx! {"job_id" => clip(text)}))
}

pub fn file_id(project: ProjectId, text: &str) -> Result<FileId, ApiError> {
    text.parse().map_err(|_| {
        ApiError::new(
            ErrorCode::FileNotFound,
            ctx! {"file_id" => clip(text), "project_id" => project.to_string()},
        )
    })
}

pub fn project_not_found(id: ProjectId) -> ApiError {
    ApiError::new(
        ErrorCode::ProjectNotFound,
        ctx! {"project_id" => id.to_string()},
    )
}

pub fn job_not_found(id: JobId) -> ApiError {
    ApiError::new(ErrorCode::JobNotFound, ctx! {"job_id" => id.to_string()})
}
