//! What every studio page and action shares: the layout's context (version, sign-in state),
//! whether a request came from htmx, and the answer to an action that moves the user to
//! another page (`HX-Redirect` for htmx, `303 See Other` for a plain form post), and jobs as
//! the API shows them.

use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use serde::Serialize;

use super::templates::render;
use crate::http::error::ApiError;
use crate::http::session::signed_in;
use crate::http::state::AppState;

/// The layout's part of every page's context.
#[derive(Debug, Serialize)]
pub struct Chrome {
    /// The binary's version: the static files' cache key.
    pub version: &'static str,
    /// Whether a sign-out button is shown (the service has a token and this browser a session).
    pub signed_in: bool,
}

impl Chrome {
    pub fn of(st: &AppState, headers: &HeaderMap) -> Chrome {
        Chrome {
            version: env!("CARGO_PKG_VERSION"),
            signed_in: st.config.token.is_some() && signed_in(&st.sessions, headers),
        }
    }
}

/// A page: the layout's context beside the page's own.
#[derive(Debug, Serialize)]
pub struct Page<T: Serialize> {
    pub chrome: Chrome,
    #[serde(flatten)]
    pub body: T,
}

/// Render a whole page.
pub fn page<T: Serialize>(
    st: &AppState,
    headers: &HeaderMap,
    template: &str,
    body: T,
) -> Result<Html<String>, ApiError> {
    render(
        template,
        Page {
            chrome: Chrome::of(st, headers),
            body,
        },
    )
}

/// A job as the API shows it (with its place in the device's queue), as a template value.
pub fn job_json(
    s: &tunewright_events::State,
    j: &tunewright_events::projection::JobView,
) -> serde_json::Value {
    let out = crate::http::dto::JobOut::from(j).queued_at(s.queue_position(j.id));
    serde_json::to_value(out).unwrap_or(serde_json::Value::Null)
}

/// Whether htmx sent the request.
pub fn is_htmx(headers: &HeaderMap) -> bool {
    headers.contains_key("hx-request")
}

/// Send the browser to `to`.
pub fn redirect(headers: &HeaderMap, to: &str) -> Response {
    let Ok(location) = HeaderValue::from_str(to) else {
        return ApiError::internal(format!("unusable redirect target {to:?}")).into_response();
    };
    if is_htmx(headers) {
        (StatusCode::OK, [("hx-redirect", location)]).into_response()
    } else {
        (StatusCode::SEE_OTHER, [(header::LOCATION, location)]).into_response()
    }
}
