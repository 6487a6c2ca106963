//! Errors for HTMX (docs/errors.md): a request with an `HX-Request` header gets its error as a
//! dismissible HTML toast fragment, user text escaped, with the same status code, and the
//! `HX-Retarget`/`HX-Reswap` headers that make htmx put it at the top of the page's toast area
//! (`#toasts`, which every studio page has) whatever the request's own target was.

use std::sync::OnceLock;

use axum::extract::Request;
use axum::http::{header, HeaderValue};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::error::{ErrorBody, ErrorMarker};

/// The CSS selector of the toast area of every studio page.
pub const TOAST_AREA: &str = "#toasts";

const TEMPLATE: &str = r#"<div class="toast toast-error" role="alert" data-error-code="{{ error_code }}"><strong class="toast-code">{{ error_code }}</strong> <span class="toast-detail">{{ detail }}</span><button type="button" class="toast-close" aria-label="Dismiss" onclick="this.parentElement.remove()">&times;</button></div>
"#;

fn env() -> &'static minijinja::Environment<'static> {
    static ENV: OnceLock<minijinja::Environment<'static>> = OnceLock::new();
    ENV.get_or_init(|| {
        let mut env = minijinja::Environment::new();
        // `.html` names are auto-escaped by minijinja's default callback.
        if let Err(e) = env.add_template("error_toast.html", TEMPLATE) {
            tracing::error!(error = %e, "the error toast template does not compile");
        }
        env
    })
}

/// The toast fragment for one error.
pub fn render(body: &ErrorBody) -> String {
    let rendered = env().get_template("error_toast.html").and_then(|t| {
        t.render(minijinja::context! {error_code => body.error_code, detail => body.detail})
    });
    match rendered {
        Ok(html) => html,
        Err(e) => {
            tracing::error!(error = %e, "rendering the error toast failed");
            "<div class=\"toast toast-error\" role=\"alert\">An unexpected error occurred</div>\n"
                .to_string()
        }
    }
}

/// Middleware: re-render error responses as HTML for HTMX requests.
pub async fn htmx_errors(req: Request, next: Next) -> Response {
    let htmx = req.headers().contains_key("hx-request");
    let resp = next.run(req).await;
    if !htmx {
        return resp;
    }
    let Some(marker) = resp.extensions().get::<ErrorMarker>().cloned() else {
        return resp;
    };
    let status = resp.status();
    let mut html = (status, render(&marker.0)).into_response();
    let headers = html.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    headers.insert("hx-retarget", HeaderValue::from_static(TOAST_AREA));
    headers.insert("hx-reswap", HeaderValue::from_static("afterbegin"));
    html.extensions_mut().insert(marker);
    html
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_text_is_escaped() {
        let html = render(&ErrorBody {
            detail: "File '<script>alert(1)</script>' & \"x\" is empty".into(),
            error_code: "FILE_EMPTY".into(),
            context: serde_json::json!({}),
        });
        assert!(!html.contains("<script>"), "{html}");
        assert!(html.contains("&lt;script&gt;"), "{html}");
        assert!(html.contains("&amp;"), "{html}");
        assert!(html.contains("FILE_EMPTY"));
    }
}
