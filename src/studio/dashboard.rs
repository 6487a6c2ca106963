//! The dashboard (`/`): the projects with their status, the training device with what runs on
//! it and its FIFO queue (docs/jobs.md), and the hardware probe's report (`/hardware`, loaded
//! after the page so a slow probe never delays it).

use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::Html;
use serde::Serialize;
use serde_json::Value;
use tunewright_events::projection::JobView;
use tunewright_events::State as LogState;
use tunewright_schemas::{JobKind, JobStatus};

use super::page::job_json;
use super::page::page;
use super::templates::render;
use crate::http::dto::ProjectOut;
use crate::http::error::ApiResult;
use crate::http::hardware::HardwareOut;
use crate::http::state::AppState;

#[derive(Debug, Serialize)]
struct ProjectRow {
    project: ProjectOut,
    jobs: usize,
    active_jobs: usize,
}

/// A training on the device or waiting for it, with its project's name.
#[derive(Debug, Serialize)]
struct DeviceJob {
    /// The job as the API shows it (a `queue_position` appears here when the API has one).
    job: Value,
    project_name: String,
}

#[derive(Debug, Serialize)]
struct Dashboard {
    projects: Vec<ProjectRow>,
    running: Vec<DeviceJob>,
    queue: Vec<DeviceJob>,
}

fn is_active(j: &JobView) -> bool {
    matches!(
        j.status,
        JobStatus::Queued | JobStatus::Running | JobStatus::Retrying | JobStatus::Cancelling
    )
}

fn device_job(s: &LogState, j: &JobView) -> DeviceJob {
    DeviceJob {
        job: job_json(s, j),
        project_name: s
            .projects
            .get(&j.project_id)
            .map(|p| p.name.clone())
            .unwrap_or_else(|| "(deleted project)".into()),
    }
}

fn dashboard(s: &LogState) -> Dashboard {
    let projects = s
        .projects
        .values()
        .map(|p| {
            let jobs = s.jobs.values().filter(|j| j.project_id == p.id);
            let (all, active) = jobs.fold((0, 0), |(n, a), j| (n + 1, a + is_active(j) as usize));
            ProjectRow {
                project: ProjectOut::from(p),
                jobs: all,
                active_jobs: active,
            }
        })
        .collect();
    let running = s
        .jobs
        .values()
        .filter(|j| {
            j.kind == JobKind::Train
                && matches!(j.status, JobStatus::Running | JobStatus::Cancelling)
        })
        .map(|j| device_job(s, j))
        .collect();
    let queue = s
        .training_queue()
        .into_iter()
        .map(|j| device_job(s, j))
        .collect();
    Dashboard {
        projects,
        running,
        queue,
    }
}

/// `GET /`.
pub async fn show(State(st): State<AppState>, headers: HeaderMap) -> ApiResult<Html<String>> {
    let body = st.service()?.read(dashboard);
    page(&st, &headers, "dashboard.html", body)
}

/// `GET /hardware`: the hardware panel (a fragment).
pub async fn hardware(State(st): State<AppState>) -> ApiResult<Html<String>> {
    let report = st.service()?.hardware().report().await;
    let context = match report {
        Ok(r) => serde_json::json!({"hardware": HardwareOut::from(r), "error": null}),
        Err(f) => {
            serde_json::json!({"hardware": null, "error": crate::http::error::ApiError(f).body()})
        }
    };
    render("hardware.html", context)
}
