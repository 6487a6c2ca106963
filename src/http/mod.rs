//! The HTTP admin endpoint (axum 0.8): the routes of the README's "Using it", JSON in and out,
//! errors always `{"detail", "error_code", "context"}` with the catalog's status, and the
//! OpenAPI document generated from the handlers (`/api/v1/openapi.json`).
//!
//! The web studio (`crate::studio`) is merged in at `/` under the same layers.
//!
//! Layers, outermost first: HTMX error toasts, panic -> `INTERNAL_ERROR`, time limits, refusal
//! of work while draining; `/api` routes also check the bearer token (or a studio session). JSON bodies are bounded
//! (`REQUEST_TOO_LARGE`); uploads stream under their own limits (`FILE_TOO_LARGE`).

// `Failure` (the catalog error every layer shares) is large; boxing it at every edge buys nothing here.
#![allow(clippy::result_large_err)]

pub mod auth;
pub mod dataset;
pub mod dto;
pub mod error;
pub mod evaluations;
pub mod events;
pub mod files;
pub mod guard;
pub mod hardware;
pub mod health;
pub mod ids;
pub mod jobs;
pub mod listener;
pub mod metrics;
pub mod origin;
pub mod projects;
pub mod rejection;
pub mod session;
pub mod sse;
pub mod state;
pub mod toast;
pub mod upload;

use axum::extract::DefaultBodyLimit;
use axum::middleware::{from_fn, from_fn_with_state};
use axum::routing::get;
use axum::{Json, Router};
use tower_http::catch_panic::CatchPanicLayer;
use utoipa::OpenApi;
use utoipa_axum::router::{OpenApiRouter, UtoipaMethodRouter};
use utoipa_axum::routes;

pub use state::{AppState, HttpConfig};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "tunewright",
        description = "Admin API of tunewright, an event-sourced fine-tuning service. Every error is `{detail, error_code, context}` with the catalog's HTTP status. When the service listens on a non-loopback address, `/api` routes need `Authorization: Bearer <token>`."
    ),
    components(schemas(error::ErrorBody)),
    tags(
        (name = "projects"), (name = "files"), (name = "datasets"), (name = "jobs"),
        (name = "events"), (name = "service")
    )
)]
struct ApiDoc;

fn unbounded_body(r: UtoipaMethodRouter<AppState>) -> UtoipaMethodRouter<AppState> {
    let (schemas, paths, method_router) = r;
    (
        schemas,
        paths,
        method_router.layer(DefaultBodyLimit::disable()),
    )
}

/// The routes with their OpenAPI description.
fn documented() -> OpenApiRouter<AppState> {
    let api = OpenApiRouter::new()
        .routes(routes!(projects::create_project, projects::list_projects))
        .routes(routes!(projects::get_project, projects::delete_project))
        .routes(routes!(projects::create_split))
        .routes(unbounded_body(routes!(files::upload_file)))
        .routes(routes!(files::list_files))
        .routes(routes!(files::delete_file))
        .routes(unbounded_body(routes!(dataset::upload_dataset)))
        .routes(routes!(jobs::submit_job, jobs::list_jobs))
        .routes(routes!(jobs::get_job))
        .routes(routes!(jobs::cancel_job))
        .routes(routes!(jobs::resume_job))
        .routes(routes!(jobs::job_analysis))
        .routes(routes!(jobs::job_artifacts))
        .routes(routes!(evaluations::list_evaluations))
        .routes(routes!(events::list_events))
        .routes(routes!(sse::event_stream))
        .routes(routes!(hardware::hardware));
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(health::health))
        .routes(routes!(health::ready))
        .routes(routes!(metrics::metrics))
        .merge(api)
}

/// The whole application.
pub fn router(state: AppState) -> Router {
    rejection::JSON_LIMIT_BYTES.store(
        state.config.max_json_bytes,
        std::sync::atomic::Ordering::Relaxed,
    );
    let (routes, doc) = documented().split_for_parts();
    let doc = std::sync::Arc::new(doc);
    let openapi_json = get(move || {
        let doc = doc.clone();
        async move { Json((*doc).clone()) }
    });
    // The token guards `/api`; health, readiness and metrics stay open to the local supervisor.
    let routes = routes
        .route("/api/v1/openapi.json", openapi_json)
        .route_layer(from_fn_with_state(state.clone(), auth::require_token));
    routes
        .merge(crate::studio::router(state.clone()))
        .fallback(rejection::route_not_found)
        .method_not_allowed_fallback(rejection::method_not_allowed)
        .layer(DefaultBodyLimit::max(state.config.max_json_bytes as usize))
        .layer(from_fn_with_state(
            state.clone(),
            guard::refuse_work_while_draining,
        ))
        .layer(from_fn_with_state(state.clone(), guard::time_limit))
        .layer(from_fn_with_state(state.clone(), guard::declared_length))
        .layer(CatchPanicLayer::custom(guard::panic_response))
        .layer(from_fn(toast::htmx_errors))
        .with_state(state)
}
