//! Bearer-token check on `/api` routes. A token is required when the service listens on a
//! non-loopback address (`serve` refuses to start there without one) and optional otherwise.

use axum::extract::{Request, State};
use axum::http::header;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use subtle::ConstantTimeEq;
use tunewright_schemas::{ctx, ErrorCode};

use super::error::ApiError;
use super::rejection::clip;
use super::state::AppState;

/// Whether `header` (the `Authorization` value) carries `token`.
pub fn bearer_matches(header: Option<&str>, token: &str) -> bool {
    let Some(given) = header.and_then(|h| {
        h.strip_prefix("Bearer ")
            .or_else(|| h.strip_prefix("bearer "))
    }) else {
        return false;
    };
    let given = given.trim().as_bytes();
    given.len() == token.len() && bool::from(given.ct_eq(token.as_bytes()))
}

pub async fn require_token(State(st): State<AppState>, req: Request, next: Next) -> Response {
    let guarded = req.uri().path().starts_with("/api/");
    if let Some(token) = st.config.token.as_deref().filter(|_| guarded) {
        let header = req
            .headers()
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok());
        if !bearer_matches(header, token) {
            let mut resp = ApiError::new(
                ErrorCode::Unauthorized,
                ctx! {"path" => clip(req.uri().path())},
            )
            .into_response();
            resp.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                header::HeaderValue::from_static("Bearer"),
            );
            return resp;
        }
    }
    next.run(req).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bearer_matching() {
        assert!(bearer_matches(Some("Bearer s3cret"), "s3cret"));
        assert!(!bearer_matches(Some("Bearer s3cre"), "s3cret"));
        assert!(!bearer_matches(Some("Basic s3cret"), "s3cret"));
        assert!(!bearer_matches(None, "s3cret"));
    }
}
