//! `GET /metrics`: Prometheus text. The recorder is installed once per process; counters and
//! histograms come from where things happen (the log writer: append latency and group-commit
//! batch sizes; the trainer: time per step; the scheduler: jobs, attempts, retries, failures by
//! code; this edge: errors by code), and gauges (jobs by kind and status, training tokens/s,
//! device memory, and per running training its step, loss, learning rate, tokens/s and memory,
//! labelled `job_id`) are read off the live state at each scrape. A gauge nobody sets for
//! `GAUGE_IDLE` is dropped, so a finished job's gauges leave the exposition.

use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use metrics::{describe_counter, describe_gauge, describe_histogram, gauge, Unit};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use metrics_util::MetricKindMask;
use tunewright_schemas::{JobKind, JobStatus};

use super::error::ApiError;
use super::state::AppState;

/// How long a gauge stays in the exposition without being set. The service-wide gauges are set
/// at every scrape; a running training's are set while it runs, so they disappear this long
/// after it ends (a scrape interval or two), and the exposition does not grow with every job
/// ever run.
pub const GAUGE_IDLE: std::time::Duration = std::time::Duration::from_secs(30);

/// Install the process-wide recorder. `None` if one is already installed.
pub fn install() -> Option<PrometheusHandle> {
    let latency = [
        0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
    ];
    let batches = [
        1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 512.0, 1024.0, 4096.0, 8192.0,
    ];
    let builder = PrometheusBuilder::new()
        .idle_timeout(MetricKindMask::GAUGE, Some(GAUGE_IDLE))
        .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), &latency)
        .and_then(|b| {
            b.set_buckets_for_metric(
                Matcher::Full("tunewright_group_commit_batch_size".into()),
                &batches,
            )
        });
    let handle = match builder.and_then(|b| b.install_recorder()) {
        Ok(h) => h,
        Err(e) => {
            tracing::warn!(error = %e, "metrics recorder not installed");
            return None;
        }
    };
    describe();
    Some(handle)
}

fn describe() {
    describe_histogram!(
        "tunewright_event_append_seconds",
        Unit::Seconds,
        "Time from an append request to its durable commit."
    );
    describe_histogram!(
        "tunewright_training_step_seconds",
        Unit::Seconds,
        "Time per optimizer step of the running trainings (between progress lines)."
    );
    for (name, help) in JOB_GAUGES {
        describe_gauge!(*name, *help);
    }
    describe_histogram!(
        "tunewright_group_commit_batch_size",
        Unit::Count,
        "Events per group-committed transaction."
    );
    describe_counter!(
        "tunewright_events_appended_total",
        Unit::Count,
        "Events committed to the log."
    );
    describe_counter!(
        "tunewright_jobs_total",
        Unit::Count,
        "Jobs that finished, by kind and final status."
    );
    describe_counter!(
        "tunewright_job_attempts_total",
        Unit::Count,
        "Job attempts started, by kind."
    );
    describe_counter!(
        "tunewright_job_retries_total",
        Unit::Count,
        "Job retries scheduled, by kind."
    );
    describe_counter!(
        "tunewright_job_failures_total",
        Unit::Count,
        "Job attempt failures, by catalog code."
    );
    describe_counter!(
        "tunewright_http_errors_total",
        Unit::Count,
        "Error answers of the HTTP API, by catalog code."
    );
    describe_gauge!(
        "tunewright_jobs",
        Unit::Count,
        "Jobs in the live state, by kind and status."
    );
    describe_gauge!(
        "tunewright_projects",
        Unit::Count,
        "Projects in the live state."
    );
    describe_gauge!(
        "tunewright_training_tokens_per_second",
        "Tokens per second of the running trainings (latest progress)."
    );
    describe_gauge!(
        "tunewright_gpu_memory_bytes",
        Unit::Bytes,
        "Device memory the running trainings reported (latest progress)."
    );
    describe_gauge!(
        "tunewright_event_log_last_seq",
        "Seq of the last committed event."
    );
    describe_gauge!(
        "tunewright_ready",
        "1 when the service is ready (recovered, not draining)."
    );
}

/// The per-training gauges, labelled `job_id`.
const JOB_GAUGES: &[(&str, &str)] = &[
    (
        "tunewright_job_step",
        "Optimizer step a running training reached.",
    ),
    (
        "tunewright_job_loss",
        "Training loss of a running training (latest progress).",
    ),
    (
        "tunewright_job_learning_rate",
        "Learning rate of a running training (latest progress).",
    ),
    (
        "tunewright_job_tokens_per_second",
        "Tokens per second of a running training (latest progress).",
    ),
    (
        "tunewright_job_memory_bytes",
        "Device memory a running training reported (latest progress).",
    ),
];

/// Set one running training's gauges.
fn job_gauges(job: &tunewright_events::projection::JobView) {
    let Some(p) = &job.progress else {
        return;
    };
    let id = job.id.to_string();
    let values = [
        Some(p.step as f64),
        p.loss,
        p.learning_rate,
        p.tokens_per_sec,
        p.memory_bytes.map(|m| m as f64),
    ];
    for ((name, _), value) in JOB_GAUGES.iter().zip(values) {
        if let Some(v) = value.filter(|v| v.is_finite()) {
            gauge!(*name, "job_id" => id.clone()).set(v);
        }
    }
}

/// Set the gauges from the live state.
fn refresh(st: &AppState) {
    gauge!("tunewright_ready").set(if st.is_ready() { 1.0 } else { 0.0 });
    let Some(service) = st.service_if_started() else {
        return;
    };
    gauge!("tunewright_event_log_last_seq").set(service.log().last_seq() as f64);
    service.read(|s| {
        gauge!("tunewright_projects").set(s.projects.len() as f64);
        let mut counts = std::collections::BTreeMap::new();
        let (mut tokens, mut memory) = (0.0, 0.0);
        for j in s.jobs.values() {
            *counts.entry((j.kind, j.status)).or_insert(0u64) += 1;
            if j.kind == JobKind::Train && j.status == JobStatus::Running {
                job_gauges(j);
                if let Some(p) = &j.progress {
                    tokens += p.tokens_per_sec.filter(|t| t.is_finite()).unwrap_or(0.0);
                    memory += p.memory_bytes.unwrap_or(0) as f64;
                }
            }
        }
        for kind in JobKind::ALL {
            for status in JobStatus::ALL {
                let n = counts.get(&(*kind, *status)).copied().unwrap_or(0);
                gauge!("tunewright_jobs", "kind" => kind.as_str(), "status" => status.as_str())
                    .set(n as f64);
            }
        }
        gauge!("tunewright_training_tokens_per_second").set(tokens);
        gauge!("tunewright_gpu_memory_bytes").set(memory);
    });
}

/// Prometheus text exposition.
#[utoipa::path(get, path = "/metrics", tag = "service",
    responses((status = 200, description = "Prometheus text format", content_type = "text/plain", body = String)))]
pub async fn metrics(State(st): State<AppState>) -> Response {
    let Some(handle) = st.metrics.clone() else {
        return ApiError::internal("the metrics recorder is not installed").into_response();
    };
    refresh(&st);
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        handle.render(),
    )
        .into_response()
}
