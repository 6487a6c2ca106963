//! The HTTP edge of every error: a `Failure` (catalog code, detail, context) becomes
//! `{"detail", "error_code", "context"}` with the catalog's status. Unexpected errors are
//! logged with their cause chain and answered `INTERNAL_ERROR` without internals.
//!
//! Each error response carries an `ErrorMarker` extension so that `toast` can re-render it as
//! an HTML fragment for HTMX requests.

use std::sync::Arc;

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use tunewright_schemas::{ctx, ErrorCode, Failure};
use utoipa::ToSchema;

/// The error body of every non-2xx answer (docs/errors.md).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ErrorBody {
    /// Readable English message.
    pub detail: String,
    /// Machine code from the catalog, e.g. `FILE_TOO_LARGE`.
    pub error_code: String,
    /// Additional facts (the message's fields and more).
    #[schema(value_type = Object)]
    pub context: serde_json::Value,
}

/// Attached to error responses: what `toast` renders for HTMX.
#[derive(Debug, Clone)]
pub struct ErrorMarker(pub Arc<ErrorBody>);

/// An error answered by the API.
#[derive(Debug)]
pub struct ApiError(pub Failure);

pub type ApiResult<T> = Result<T, ApiError>;

impl From<Failure> for ApiError {
    fn from(f: Failure) -> Self {
        ApiError(f)
    }
}

impl ApiError {
    pub fn new(
        code: ErrorCode,
        context: std::collections::BTreeMap<String, serde_json::Value>,
    ) -> Self {
        ApiError(Failure::new(code, context))
    }

    pub fn validation(reason: impl Into<String>) -> Self {
        ApiError::new(ErrorCode::ValidationError, ctx! {"reason" => reason.into()})
    }

    /// An unexpected error: the cause is logged, never shown.
    pub fn internal(cause: impl std::fmt::Display) -> Self {
        ApiError(Failure::new(ErrorCode::InternalError, ctx! {}).caused_by(cause.to_string()))
    }

    /// The body as answered (internals removed for INTERNAL_ERROR).
    pub fn body(&self) -> ErrorBody {
        let f = &self.0;
        if f.error_code == ErrorCode::InternalError {
            return ErrorBody {
                detail: ErrorCode::InternalError.render(&Default::default()),
                error_code: ErrorCode::InternalError.as_str().into(),
                context: serde_json::json!({}),
            };
        }
        let context = match &f.context.0 {
            serde_json::Value::Object(_) => f.context.0.clone(),
            serde_json::Value::Null => serde_json::json!({}),
            other => serde_json::json!({ "value": other }),
        };
        ErrorBody {
            detail: f.detail.clone(),
            error_code: f.error_code.as_str().into(),
            context,
        }
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let f = &self.0;
        let status = StatusCode::from_u16(f.error_code.http_status())
            .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        if status.is_server_error() {
            tracing::error!(
                error_code = %f.error_code,
                detail = %f.detail,
                cause_chain = ?f.cause_chain,
                "request failed"
            );
        } else {
            tracing::debug!(error_code = %f.error_code, detail = %f.detail, "request rejected");
        }
        let body = self.body();
        metrics::counter!("tunewright_http_errors_total", "code" => f.error_code.as_str())
            .increment(1);
        let marker = ErrorMarker(Arc::new(body.clone()));
        let mut resp = (status, axum::Json(body)).into_response();
        resp.extensions_mut().insert(marker);
        resp
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn internal_errors_hide_their_cause() {
        let e = ApiError::internal("disk /secret/path exploded");
        let b = e.body();
        assert_eq!(b.error_code, "INTERNAL_ERROR");
        assert!(!b.detail.contains("secret"));
        assert_eq!(b.context, serde_json::json!({}));
    }

    #[test]
    fn catalog_errors_keep_detail_and_context() {
        let e = ApiError::new(ErrorCode::FileEmpty, ctx! {"filename" => "a.txt"});
        let b = e.body();
        assert_eq!(b.detail, "File 'a.txt' is empty (0 bytes)");
        assert_eq!(b.context["filename"], "a.txt");
        let r = e.into_response();
        assert_eq!(r.status(), StatusCode::BAD_REQUEST);
        assert!(r.extensions().get::<ErrorMarker>().is_some());
    }
}
