//! Who may call: a bearer token on `/api` routes, or a studio session cookie (docs/studio.md
//! "Sign-in"). A token is required when the service listens on a non-loopback address
//! (`serve` refuses to start there without one) and optional otherwise. A request that
//! changes state on the strength of the cookie must also pass the same-origin rule
//! (`origin.rs`), so another site cannot ride a signed-in browser.

use axum::extract::{Request, State};
use axum::http::header;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use subtle::ConstantTimeEq;
use tunewright_schemas::{ctx, ErrorCode};

use super::error::ApiError;
use super::origin::{check_same_origin, is_state_changing};
use super::rejection::clip;
use super::session::signed_in;
use super::state::AppState;

/// Whether `header` (the `Authorization` value) carries `token`.
pub fn bearer_matches(header: Option<&str>, token: &str) -> bool {
    let Some(given) = header.and_then(|h| {
        h.strip_prefix("Bearer ")
            .or_else(|| h.strip_prefix("bearer "))
    }) else {
        return false;
    };
    token_matches(given.trim(), token)
}

/// Constant-time comparison of a given token with the service's.
pub fn token_matches(given: &str, token: &str) -> bool {
    let given = given.as_bytes();
    given.len() == token.len() && bool::from(given.ct_eq(token.as_bytes()))
}

/// `UNAUTHORIZED` for `path`, with the `WWW-Authenticate` challenge.
pub fn unauthorized(path: &str) -> Response {
    let mut resp =
        ApiError::new(ErrorCode::Unauthorized, ctx! {"path" => clip(path)}).into_response();
    resp.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        header::HeaderValue::from_static("Bearer"),
    );
    resp
}

pub async fn require_token(State(st): State<AppState>, req: Request, next: Next) -> Response {
    let guarded = req.uri().path().starts_with("/api/");
    if let Some(token) = st.config.token.as_deref().filter(|_| guarded) {
        let header = req
            .headers()
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok());
        if !bearer_matches(header, token) {
            if !signed_in(&st.sessions, req.headers()) {
                return unauthorized(req.uri().path());
            }
            if is_state_changing(req.method()) {
                if let Err(e) = check_same_origin(req.headers()) {
                    return e.into_response();
                }
            }
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
