//! The studio: server-rendered pages for every project, job and failure, served by
//! `tunewright serve` at `/` on the API's listener (docs/studio.md). Hypermedia first: htmx
//! sends the forms and swaps the HTML fragments the server answers with; errors come back as
//! toasts (`http::toast`); uPlot draws the curves, fed live by the API's event stream. Every
//! action calls the API's own handlers, so each rule keeps its one owner.
//!
//! - `dashboard`, `project`, `job`, `compare`, `login`: the pages.
//! - `uploads`, `splits`, `submit`, `artifacts`: the actions and downloads.
//! - `train_form`, `resume`, `curves`, `downsample`, `job_log`: the view models behind them;
//!   `warm`: recent trainings read in the background at start.
//! - `templates`, `assets`, `page`, `form`, `gate`: rendering, embedded files, shared helpers,
//!   and the door (sign-in, same-origin rule, error pages).

pub mod artifacts;
pub mod assets;
pub mod compare;
pub mod curves;
pub mod dashboard;
pub mod downsample;
pub mod form;
pub mod gate;
pub mod job;
pub mod job_log;
pub mod login;
pub mod page;
pub mod project;
pub mod resume;
pub mod saved_reading;
pub mod splits;
pub mod submit;
pub mod templates;
pub mod train_form;
pub mod uploads;
pub mod warm;

use axum::extract::DefaultBodyLimit;
use axum::middleware::from_fn_with_state;
use axum::routing::{get, post};
use axum::{Extension, Router};

use crate::http::state::AppState;

/// The studio's routes (merged into the HTTP router, under its layers).
pub fn router(state: AppState) -> Router<AppState> {
    let uploads = Router::new()
        .route("/projects/{id}/files", post(uploads::document))
        .route("/projects/{id}/dataset", post(uploads::dataset))
        .layer(DefaultBodyLimit::disable());
    let pages = Router::new()
        .route("/", get(dashboard::show))
        .route("/hardware", get(dashboard::hardware))
        .route("/projects", post(project::create))
        .route("/projects/{id}", get(project::show))
        .route("/projects/{id}/delete", post(project::delete))
        .route(
            "/projects/{id}/files/{file_id}/delete",
            post(uploads::delete_document),
        )
        .route("/projects/{id}/splits", post(splits::create))
        .route("/projects/{id}/train", post(submit::train))
        .route("/projects/{id}/generate", post(submit::generate))
        .route("/projects/{id}/compare", get(compare::show))
        .route("/jobs/{id}", get(job::show))
        .route("/jobs/{id}/summary", get(job::summary_fragment))
        .route("/jobs/{id}/story", get(job::story_fragment))
        .route("/jobs/{id}/curves", get(job::curves))
        .route("/jobs/{id}/cancel", post(submit::cancel))
        .route("/jobs/{id}/export", post(submit::export))
        .route("/jobs/{id}/resume", post(resume::resume))
        .route("/jobs/{id}/artifacts/{name}", get(artifacts::download))
        .merge(uploads)
        .route_layer(from_fn_with_state(state.clone(), gate::studio_gate));
    let job_logs = job_log::JobLogCache::saving_in(tunewright_schemas::DataLayout::new(
        &state.0.config.data_dir,
    ));
    warm::spawn(state.clone(), job_logs.clone());
    Router::new()
        .route("/static/{name}", get(assets::serve))
        .route("/login", get(login::form).post(login::sign_in))
        .route("/logout", post(login::sign_out))
        .merge(pages)
        .layer(from_fn_with_state(state, gate::error_pages))
        .layer(Extension(job_logs))
}
