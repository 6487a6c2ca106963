//! Request guards: a declared body larger than the route takes (`413` at once, before a byte of
//! it is read), time limits (`REQUEST_TIMEOUT`), refusal of work while draining
//! (`SERVICE_UNAVAILABLE`) and panics turned into `INTERNAL_ERROR`.

use std::any::Any;

use axum::extract::{Request, State};
use axum::http::Method;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use tunewright_schemas::{ctx, ErrorCode};

use super::error::ApiError;
use super::state::{unavailable, AppState};

/// Uploads stream large bodies and get the longer limit.
fn is_upload(req: &Request) -> bool {
    req.method() == Method::POST
        && (req.uri().path().ends_with("/files") || req.uri().path().ends_with("/dataset"))
}

/// Room a multipart upload's framing (boundaries, part headers, small fields) may take beyond
/// the file itself.
const MULTIPART_OVERHEAD_BYTES: u64 = 64 * 1024;

/// Most of a refused body read and thrown away after the refusal, and for how long: a client
/// that writes its body before reading the answer (most do) then reads the `413` instead of a
/// reset connection. Beyond either bound the connection is closed.
const DRAIN_BYTES: u64 = 64 * 1024 * 1024;
const DRAIN_TIME: std::time::Duration = std::time::Duration::from_secs(10);

/// Answer `refusal` at once (with `Connection: close`) and read what the client is still
/// sending in the background, within `DRAIN_BYTES` and `DRAIN_TIME`.
fn refuse_body(req: Request, refusal: ApiError) -> Response {
    let mut body = req.into_body().into_data_stream();
    tokio::spawn(async move {
        use futures::StreamExt;
        let drain = async {
            let mut read = 0u64;
            while let Some(Ok(chunk)) = body.next().await {
                read += chunk.len() as u64;
                if read > DRAIN_BYTES {
                    break;
                }
            }
        };
        let _ = tokio::time::timeout(DRAIN_TIME, drain).await;
    });
    let mut resp = refusal.into_response();
    resp.headers_mut().insert(
        axum::http::header::CONNECTION,
        axum::http::HeaderValue::from_static("close"),
    );
    resp
}

/// Refuse a request whose declared `Content-Length` exceeds what its route accepts, at once:
/// `FILE_TOO_LARGE` for uploads, `REQUEST_TOO_LARGE` for the rest.
pub async fn declared_length(State(st): State<AppState>, req: Request, next: Next) -> Response {
    let declared = req
        .headers()
        .get(axum::http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    let Some(declared) = declared else {
        return next.run(req).await;
    };
    if is_upload(&req) {
        let max = if req.uri().path().ends_with("/dataset") {
            st.config.max_dataset_bytes
        } else {
            st.config.max_file_bytes
        };
        if declared > max.saturating_add(MULTIPART_OVERHEAD_BYTES) {
            let refusal = ApiError::new(
                ErrorCode::FileTooLarge,
                ctx! {
                    "filename" => "(declared by Content-Length)",
                    "max_size_mb" => super::upload::mb(max),
                    "max_size_bytes" => max,
                    "declared_bytes" => declared,
                },
            );
            return refuse_body(req, refusal);
        }
    } else if declared > st.config.max_json_bytes {
        let refusal = ApiError::new(
            ErrorCode::RequestTooLarge,
            ctx! {"limit_bytes" => st.config.max_json_bytes, "declared_bytes" => declared},
        );
        return refuse_body(req, refusal);
    }
    next.run(req).await
}

/// Answer `REQUEST_TIMEOUT` when the handler takes longer than the limit. A live event
/// stream answers at once and is not bounded by this.
pub async fn time_limit(State(st): State<AppState>, req: Request, next: Next) -> Response {
    let limit = if is_upload(&req) {
        st.config.upload_timeout
    } else {
        st.config.request_timeout
    };
    match tokio::time::timeout(limit, next.run(req)).await {
        Ok(resp) => resp,
        Err(_) => ApiError::new(
            ErrorCode::RequestTimeout,
            ctx! {"timeout_secs" => limit.as_secs()},
        )
        .into_response(),
    }
}

/// While stopping, refuse anything that would change state.
pub async fn refuse_work_while_draining(
    State(st): State<AppState>,
    req: Request,
    next: Next,
) -> Response {
    if st.is_draining() && !matches!(*req.method(), Method::GET | Method::HEAD) {
        return unavailable("shutting down").into_response();
    }
    next.run(req).await
}

/// `CatchPanicLayer`'s answer: logged, and `INTERNAL_ERROR` without internals.
pub fn panic_response(err: Box<dyn Any + Send + 'static>) -> Response {
    let text = if let Some(s) = err.downcast_ref::<String>() {
        s.clone()
    } else if let Some(s) = err.downcast_ref::<&str>() {
        s.to_string()
    } else {
        "a handler panicked".to_string()
    };
    ApiError::internal(format!("panic: {text}")).into_response()
}
