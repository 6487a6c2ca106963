//! The studio's static files, embedded in the binary so the pages work with no network: the
//! vendored htmx and uPlot (`assets/vendor/`, versions and licences in its `VERSIONS.md`) and
//! the studio's own stylesheet and script. Served at `/static/{name}` with a long cache
//! lifetime: a file's URL carries the binary's version (`?v=`), so an upgrade is fetched anew.

use axum::extract::Path;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use tunewright_schemas::{ctx, ErrorCode};

use crate::http::error::ApiError;

/// One embedded file.
pub struct Asset {
    pub name: &'static str,
    pub content_type: &'static str,
    pub bytes: &'static [u8],
}

/// Every file the pages load.
pub const ASSETS: &[Asset] = &[
    Asset {
        name: "htmx.min.js",
        content_type: "text/javascript; charset=utf-8",
        bytes: include_bytes!("assets/vendor/htmx.min.js"),
    },
    Asset {
        name: "uPlot.iife.min.js",
        content_type: "text/javascript; charset=utf-8",
        bytes: include_bytes!("assets/vendor/uPlot.iife.min.js"),
    },
    Asset {
        name: "uPlot.min.css",
        content_type: "text/css; charset=utf-8",
        bytes: include_bytes!("assets/vendor/uPlot.min.css"),
    },
    Asset {
        name: "studio.css",
        content_type: "text/css; charset=utf-8",
        bytes: include_bytes!("assets/studio.css"),
    },
    Asset {
        name: "studio.js",
        content_type: "text/javascript; charset=utf-8",
        bytes: include_bytes!("assets/studio.js"),
    },
    Asset {
        name: "charts.js",
        content_type: "text/javascript; charset=utf-8",
        bytes: include_bytes!("assets/charts.js"),
    },
];

/// `GET /static/{name}`.
pub async fn serve(Path(name): Path<String>) -> Response {
    let Some(asset) = ASSETS.iter().find(|a| a.name == name) else {
        return ApiError::new(
            ErrorCode::NotFound,
            ctx! {"resource" => format!("Static file '{}'", crate::http::rejection::clip(&name))},
        )
        .into_response();
    };
    (
        StatusCode::OK,
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static(asset.content_type),
            ),
            (
                header::CACHE_CONTROL,
                HeaderValue::from_static("public, max-age=31536000, immutable"),
            ),
        ],
        asset.bytes,
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;
    use sha2::{Digest, Sha256};

    #[test]
    fn vendored_files_match_their_recorded_versions() {
        let table = include_str!("assets/vendor/VERSIONS.md");
        for asset in ASSETS
            .iter()
            .filter(|a| !matches!(a.name, "studio.css" | "studio.js" | "charts.js"))
        {
            let row = table
                .lines()
                .find(|l| l.starts_with(&format!("| `{}` |", asset.name)))
                .unwrap_or_else(|| panic!("VERSIONS.md has no row for {}", asset.name));
            let sha = hex::encode(Sha256::digest(asset.bytes));
            assert!(
                row.contains(&sha),
                "{}: sha256 {sha} not in {row}",
                asset.name
            );
        }
    }

    #[test]
    fn no_asset_loads_anything_from_another_origin() {
        for asset in ASSETS
            .iter()
            .filter(|a| a.name.starts_with("studio") || a.name == "charts.js")
        {
            let text = std::str::from_utf8(asset.bytes).unwrap();
            assert!(
                !text.contains("http://") && !text.contains("https://"),
                "{}",
                asset.name
            );
        }
    }
}
