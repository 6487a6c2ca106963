//! The scheduler's Prometheus counters, read from a real recorder installed for this test
//! binary: jobs by kind and final status, retries by kind, failures by catalog code.

mod support;

use metrics_exporter_prometheus::PrometheusBuilder;
use support::*;
use tunewright_schemas::*;

/// The value of one counter line (`name{labels} value`) in the rendered exposition.
fn counter(text: &str, name: &str, labels: &[(&str, &str)]) -> u64 {
    text.lines()
        .filter(|l| l.starts_with(name) && !l.starts_with('#'))
        .filter(|l| {
            labels
                .iter()
                .all(|(k, v)| l.contains(&format!("{k}=\"{v}\"")))
        })
        .filter_map(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
        .sum()
}

#[tokio::test(start_paused = true)]
async fn job_outcomes_retries_and_failure_codes_are_counted() {
    let recorder = PrometheusBuilder::new().build_recorder();
    let handle = recorder.handle();
    metrics::set_global_recorder(recorder).expect("the only recorder of this test binary");

    let dir = tempfile::tempdir().unwrap();
    let svc = start(dir.path(), all_kinds()).await;
    let p = ready_project(&svc, "metrics").await;

    // Two retryable failures then success: 2 retries, 2 failures of that code, 1 success.
    let preview = submit(
        &svc,
        p,
        JobKind::DatasetPreview,
        &["fail:OLLAMA_API_TIMEOUT", "fail:OLLAMA_API_TIMEOUT", "ok"],
    )
    .await
    .unwrap();
    wait_status(&svc, preview.id, JobStatus::Success).await;
    // Training never retries: 1 failure, 0 retries.
    let train = submit(&svc, p, JobKind::Train, &["fail:TRAINING_OOM"])
        .await
        .unwrap();
    wait_status(&svc, train.id, JobStatus::Failed).await;
    // A cancelled job.
    let hang = submit(&svc, p, JobKind::DatasetPreview, &["hang"])
        .await
        .unwrap();
    wait_status(&svc, hang.id, JobStatus::Running).await;
    svc.cancel_job(hang.id).await.unwrap();
    wait_status(&svc, hang.id, JobStatus::Cancelled).await;

    let text = handle.render();
    let jobs = |kind, status| {
        counter(
            &text,
            "tunewright_jobs_total",
            &[("kind", kind), ("status", status)],
        )
    };
    assert_eq!(jobs("dataset_preview", "success"), 1, "{text}");
    assert_eq!(jobs("dataset_preview", "cancelled"), 1, "{text}");
    assert_eq!(jobs("train", "failed"), 1, "{text}");
    assert_eq!(jobs("train", "success"), 0, "{text}");
    let retries = |kind| counter(&text, "tunewright_job_retries_total", &[("kind", kind)]);
    assert_eq!(retries("dataset_preview"), 2, "{text}");
    assert_eq!(retries("train"), 0, "{text}");
    let failures = |code| counter(&text, "tunewright_job_failures_total", &[("code", code)]);
    assert_eq!(failures("OLLAMA_API_TIMEOUT"), 2, "{text}");
    assert_eq!(failures("TRAINING_OOM"), 1, "{text}");
    assert_replay_matches(&svc);
}
