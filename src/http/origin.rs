//! The same-origin rule for state-changing requests from browsers (docs/studio.md
//! "Sign-in"): a request that changes state on the strength of a cookie, or any studio action,
//! must come from a page of this service. Browsers say where a request comes from in
//! `Sec-Fetch-Site`, `Origin` and `Referer`; a request that names another origin in any of
//! them is refused with `CROSS_ORIGIN_REFUSED`. A request that names none (curl, scripts) is
//! not a browser's and cannot have been forged by another site.

use axum::http::{header, HeaderMap, Method};
use tunewright_schemas::{ctx, ErrorCode};

use super::error::ApiError;
use super::rejection::clip;

/// Whether `method` can change state.
pub fn is_state_changing(method: &Method) -> bool {
    !matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS)
}

/// `scheme://host[:port]` of a URL, lowercased; `None` if it is not an absolute http(s) URL.
fn origin_of(url: &str) -> Option<String> {
    let (scheme, rest) = url.split_once("://")?;
    if !matches!(scheme, "http" | "https") {
        return None;
    }
    let authority = rest.split(['/', '?', '#']).next()?;
    Some(format!("{scheme}://{authority}").to_ascii_lowercase())
}

/// Whether `origin` names the host this request was sent to.
fn same_host(origin: &str, headers: &HeaderMap) -> bool {
    let Some(host) = headers.get(header::HOST).and_then(|h| h.to_str().ok()) else {
        return false;
    };
    let host = host.to_ascii_lowercase();
    origin_of(origin).is_some_and(|o| {
        o.strip_prefix("http://")
            .or_else(|| o.strip_prefix("https://"))
            .is_some_and(|authority| authority == host)
    })
}

/// Refuse the request unless nothing in its headers says it comes from another origin.
pub fn check_same_origin(headers: &HeaderMap) -> Result<(), ApiError> {
    let text = |name: header::HeaderName| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    let refused = |from: &str| {
        Err(ApiError::new(
            ErrorCode::CrossOriginRefused,
            ctx! {"origin" => clip(from)},
        ))
    };
    if let Some(site) = text(header::HeaderName::from_static("sec-fetch-site")) {
        if !matches!(site.as_str(), "same-origin" | "none") {
            return refused(&format!("a {site} page"));
        }
    }
    if let Some(origin) = text(header::ORIGIN) {
        if !same_host(&origin, headers) {
            return refused(&origin);
        }
    } else if let Some(referer) = text(header::REFERER) {
        if !same_host(&referer, headers) {
            return refused(&origin_of(&referer).unwrap_or(referer));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(header::HOST, HeaderValue::from_static("127.0.0.1:7340"));
        for (k, v) in pairs {
            h.insert(*k, HeaderValue::from_static(v));
        }
        h
    }

    #[test]
    fn same_origin_requests_pass() {
        assert!(check_same_origin(&headers(&[])).is_ok());
        assert!(check_same_origin(&headers(&[
            ("sec-fetch-site", "same-origin"),
            ("origin", "http://127.0.0.1:7340"),
        ]))
        .is_ok());
        assert!(
            check_same_origin(&headers(&[("referer", "http://127.0.0.1:7340/jobs/x")])).is_ok()
        );
    }

    #[test]
    fn other_origins_are_refused_with_the_catalog_code() {
        for h in [
            headers(&[("sec-fetch-site", "cross-site")]),
            headers(&[("origin", "http://evil.example")]),
            headers(&[("origin", "http://127.0.0.1:7341")]),
            headers(&[("origin", "null")]),
            headers(&[("referer", "https://evil.example/a")]),
        ] {
            let e = check_same_origin(&h).unwrap_err();
            assert_eq!(e.0.error_code, ErrorCode::CrossOriginRefused, "{h:?}");
        }
    }
}
