//! axum's own rejections (malformed JSON, wrong content type, bad query, body too large),
//! unknown routes and wrong methods, all answered in the catalog's error shape.

use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::extract::FromRequest;
use axum::extract::FromRequestParts;
use axum::http::{Method, StatusCode, Uri};
use tunewright_schemas::{ctx, ErrorCode};

use super::error::ApiError;

/// `axum::Json` whose rejections are `VALIDATION_ERROR` / `REQUEST_TOO_LARGE`.
#[derive(Debug, FromRequest)]
#[from_request(via(axum::Json), rejection(ApiError))]
pub struct ApiJson<T>(pub T);

/// `axum::extract::Query` whose rejection is `VALIDATION_ERROR`.
#[derive(Debug, FromRequestParts)]
#[from_request(via(axum::extract::Query), rejection(ApiError))]
pub struct ApiQuery<T>(pub T);

/// `axum::extract::Path` whose rejection is `VALIDATION_ERROR`.
#[derive(Debug, FromRequestParts)]
#[from_request(via(axum::extract::Path), rejection(ApiError))]
pub struct ApiPath<T>(pub T);

/// The configured JSON body limit, for the message of `REQUEST_TOO_LARGE`.
pub static JSON_LIMIT_BYTES: std::sync::atomic::AtomicU64 =
    std::sync::atomic::AtomicU64::new(1024 * 1024);

fn too_large() -> ApiError {
    ApiError::new(
        ErrorCode::RequestTooLarge,
        ctx! {"limit_bytes" => JSON_LIMIT_BYTES.load(std::sync::atomic::Ordering::Relaxed)},
    )
}

fn from_status(status: StatusCode, text: String) -> ApiError {
    if status == StatusCode::PAYLOAD_TOO_LARGE {
        too_large()
    } else if status.is_server_error() {
        ApiError::internal(text)
    } else {
        ApiError::validation(text)
    }
}

impl From<JsonRejection> for ApiError {
    fn from(r: JsonRejection) -> Self {
        from_status(r.status(), r.body_text())
    }
}

impl From<QueryRejection> for ApiError {
    fn from(r: QueryRejection) -> Self {
        from_status(r.status(), r.body_text())
    }
}

impl From<PathRejection> for ApiError {
    fn from(r: PathRejection) -> Self {
        from_status(r.status(), r.body_text())
    }
}

/// Fallback for paths no route matches.
pub async fn route_not_found(method: Method, uri: Uri) -> ApiError {
    ApiError::new(
        ErrorCode::RouteNotFound,
        ctx! {"method" => method.as_str(), "path" => clip(uri.path())},
    )
}

/// Fallback for a known path with a method it does not serve.
pub async fn method_not_allowed(method: Method, uri: Uri) -> ApiError {
    ApiError::new(
        ErrorCode::MethodNotAllowed,
        ctx! {"method" => method.as_str(), "path" => clip(uri.path())},
    )
}

/// User text echoed in errors is bounded.
pub fn clip(s: &str) -> String {
    s.chars().take(200).collect()
}
