//! Sign-in and sign-out (docs/studio.md "Sign-in"): the token once, then a session cookie
//! (`http::session`). Where the service has no token there is nothing to sign in to.

use axum::extract::{Query, State};
use axum::http::{header, HeaderMap};
use axum::response::{IntoResponse, Response};
use axum::Form;
use serde::Deserialize;
use serde_json::json;

use super::page::{page, redirect};
use crate::http::auth::{token_matches, unauthorized};
use crate::http::error::ApiResult;
use crate::http::origin::check_same_origin;
use crate::http::session::{session_id, set_cookie};
use crate::http::state::AppState;

#[derive(Debug, Deserialize)]
pub struct Next {
    pub next: Option<String>,
}

#[derive(Debug, Deserialize)]
pub struct SignIn {
    pub token: String,
    pub next: Option<String>,
}

/// Only a path of this service: never `//host` or a full URL (an open redirect).
fn local_path(next: Option<&str>) -> String {
    match next {
        Some(p) if p.starts_with('/') && !p.starts_with("//") && !p.contains('\\') => p.into(),
        _ => "/".into(),
    }
}

/// `GET /login`.
pub async fn form(
    State(st): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<Next>,
) -> ApiResult<Response> {
    if st.config.token.is_none() {
        return Ok(redirect(&headers, "/"));
    }
    let next = local_path(q.next.as_deref());
    Ok(page(&st, &headers, "login.html", json!({"next": next}))?.into_response())
}

/// `POST /login`.
pub async fn sign_in(
    State(st): State<AppState>,
    headers: HeaderMap,
    Form(f): Form<SignIn>,
) -> ApiResult<Response> {
    check_same_origin(&headers)?;
    let Some(token) = st.config.token.as_deref() else {
        return Ok(redirect(&headers, "/"));
    };
    if !token_matches(f.token.trim(), token) {
        return Ok(unauthorized("/login"));
    }
    let id = st.sessions.create();
    let mut resp = redirect(&headers, &local_path(f.next.as_deref()));
    resp.headers_mut()
        .insert(header::SET_COOKIE, set_cookie(Some(&id)));
    Ok(resp)
}

/// `POST /logout`.
pub async fn sign_out(State(st): State<AppState>, headers: HeaderMap) -> ApiResult<Response> {
    check_same_origin(&headers)?;
    if let Some(id) = session_id(&headers) {
        st.sessions.remove(&id);
    }
    let mut resp = redirect(&headers, "/login");
    resp.headers_mut()
        .insert(header::SET_COOKIE, set_cookie(None));
    Ok(resp)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_local_paths_are_followed() {
        assert_eq!(local_path(Some("/jobs/job_1")), "/jobs/job_1");
        assert_eq!(local_path(Some("//evil.example")), "/");
        assert_eq!(local_path(Some("https://evil.example")), "/");
        assert_eq!(local_path(Some("/\\evil")), "/");
        assert_eq!(local_path(None), "/");
    }
}
