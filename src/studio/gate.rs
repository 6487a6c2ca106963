//! The studio's door (docs/studio.md "Sign-in"): every action must come from one of the
//! service's own pages (the same-origin rule), and where the service has a token every page
//! needs a signed-in browser; a page asked for without one sends the browser to the sign-in
//! form and back. A request that failed without htmx (a plain form post, a typed URL) gets the
//! error as a page rather than as JSON.

use axum::extract::{Request, State};
use axum::http::{header, HeaderValue};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::page::{is_htmx, page, redirect};
use crate::http::auth::unauthorized;
use crate::http::error::ErrorMarker;
use crate::http::origin::{check_same_origin, is_state_changing};
use crate::http::session::signed_in;
use crate::http::state::AppState;

/// Middleware on the studio's pages and actions.
pub async fn studio_gate(State(st): State<AppState>, req: Request, next: Next) -> Response {
    if is_state_changing(req.method()) {
        if let Err(e) = check_same_origin(req.headers()) {
            return e.into_response();
        }
    }
    if st.config.token.is_some() && !signed_in(&st.sessions, req.headers()) {
        if is_state_changing(req.method()) || is_htmx(req.headers()) {
            return unauthorized(req.uri().path());
        }
        let back = req
            .uri()
            .path_and_query()
            .map(|p| p.as_str())
            .unwrap_or("/");
        let to = format!("/login?next={}", percent_encode(back));
        return redirect(req.headers(), &to);
    }
    next.run(req).await
}

/// Middleware: an error answered to a browser without htmx becomes an error page.
pub async fn error_pages(State(st): State<AppState>, req: Request, next: Next) -> Response {
    let headers = req.headers().clone();
    let resp = next.run(req).await;
    let wants_html = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|a| a.contains("text/html"));
    if is_htmx(&headers) || !wants_html {
        return resp;
    }
    let Some(marker) = resp.extensions().get::<ErrorMarker>().cloned() else {
        return resp;
    };
    let status = resp.status();
    let body = serde_json::json!({"error": &*marker.0});
    match page(&st, &headers, "error_page.html", body) {
        Ok(html) => {
            let mut out = (status, html).into_response();
            if let Some(v) = resp.headers().get(header::WWW_AUTHENTICATE) {
                out.headers_mut()
                    .insert(header::WWW_AUTHENTICATE, v.clone());
            }
            out.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/html; charset=utf-8"),
            );
            out
        }
        Err(_) => resp,
    }
}

/// Percent-encode a path for a query parameter (everything but unreserved characters and `/`).
pub fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~' | b'/') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}
