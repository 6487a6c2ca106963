//! The job state machine and its policies (docs/jobs.md, docs/projects.md) with a paused clock.

mod support;

use std::time::Duration;

use support::*;
use tunewright_events::Event;
use tunewright_schemas::*;

#[tokio::test(start_paused = true)]
async fn retryable_failures_retry_with_capped_jittered_backoff_then_succeed() {
    let dir = tempfile::tempdir().unwrap();
    let svc = start(dir.path(), all_kinds()).await;
    let p = ready_project(&svc, "gen").await;
    let t0 = tokio::time::Instant::now();
    let j = submit(
        &svc,
        p,
        JobKind::DatasetPreview,
        &[
            "fail:OLLAMA_API_TIMEOUT",
            "fail:OLLAMA_API_RATE_LIMIT",
            "ok",
        ],
    )
    .await
    .unwrap();
    let done = wait_status(&svc, j.id, JobStatus::Success).await;
    assert_eq!(done.attempts, 3);
    assert_eq!(done.attempt_failures.len(), 2);
    let delays: Vec<u64> = job_events(&svc, j.id)
        .iter()
        .filter_map(|e| match e {
            Event::JobRetryScheduled(r) => Some(r.delay_ms),
            _ => None,
        })
        .collect();
    assert_eq!(delays.len(), 2);
    assert!(
        delays[0] <= 1000,
        "first retry waits at most base 1 s: {delays:?}"
    );
    assert!(delays[1] <= 2000, "second at most 2 s: {delays:?}");
    assert!(
        t0.elapsed() >= Duration::from_millis(delays.iter().sum()),
        "the waits really happened"
    );
    assert_replay_matches(&svc);
}

#[tokio::test(start_paused = true)]
async fn retries_stop_at_the_policy_maximum_and_the_failure_is_analyzed() {
    let dir = tempfile::tempdir().unwrap();
    let svc = start(dir.path(), all_kinds()).await;
    let p = ready_project(&svc, "gen").await;
    let j = submit(&svc, p, JobKind::DatasetPreview, &["fail:OLLAMA_API_ERROR"])
        .await
        .unwrap();
    let done = wait_status(&svc, j.id, JobStatus::Failed).await;
    assert_eq!(done.attempts, 4, "1 attempt + 3 retries");
    let err = done.error.unwrap();
    assert_eq!(err.error_code, ErrorCode::OllamaApiError);
    let analysis = err.analysis.expect("every failed job carries its analysis");
    assert!(!analysis.suggestions.is_empty());
    let events = job_events(&svc, j.id);
    let retries = events
        .iter()
        .filter(|e| matches!(e, Event::JobRetryScheduled(_)))
        .count();
    assert_eq!(retries, 3);
    for e in &events {
        if let Event::JobRetryScheduled(r) = e {
            assert!(r.delay_ms <= 60_000);
        }
    }
    assert_replay_matches(&svc);
}

#[tokio::test(start_paused = true)]
async fn non_retryable_codes_fail_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let svc = start(dir.path(), all_kinds()).await;
    let p = ready_project(&svc, "gen").await;
    let j = submit(
        &svc,
        p,
        JobKind::DatasetGenerate,
        &["fail:OLLAMA_API_KEY_INVALID"],
    )
    .await
    .unwrap();
    let done = wait_status(&svc, j.id, JobStatus::Failed).await;
    assert_eq!(done.attempts, 1);
    assert_eq!(
        done.error.unwrap().error_code,
        ErrorCode::OllamaApiKeyInvalid
    );
    // docs/projects.md: a failed generation leaves the project `generating`, re-runnable.
    assert_eq!(
        svc.read(|s| s.projects[&p].status),
        ProjectStatus::Generating
    );
    let again = submit(&svc, p, JobKind::DatasetGenerate, &["ok"])
        .await
        .unwrap();
    wait_status(&svc, again.id, JobStatus::Success).await;
    assert_eq!(
        svc.read(|s| s.projects[&p].status),
        ProjectStatus::ReadyToTrain
    );
    assert_replay_matches(&svc);
}

#[tokio::test(start_paused = true)]
async fn training_never_retries_and_a_failed_training_returns_the_project_to_ready() {
    let dir = tempfile::tempdir().unwrap();
    let svc = start(dir.path(), all_kinds()).await;
    let p = ready_project(&svc, "train").await;
    let cfg = serde_json::json!({
        "per_device_train_batch_size": 8, "gradient_accumulation_steps": 2, "max_seq_length": 2048
    });
    let j = submit_with(&svc, p, JobKind::Train, cfg, &["fail:TRAINING_OOM"])
        .await
        .unwrap();
    assert_eq!(svc.read(|s| s.projects[&p].status), ProjectStatus::Training);
    let done = wait_status(&svc, j.id, JobStatus::Failed).await;
    assert_eq!(done.attempts, 1);
    let err = done.error.unwrap();
    assert_eq!(err.error_code, ErrorCode::TrainingOom);
    let a = err.analysis.unwrap();
    let first = &a.suggestions[0];
    assert_eq!(
        first.config_changes.0,
        serde_json::json!({"per_device_train_batch_size": 4, "gradient_accumulation_steps": 4})
    );
    assert_eq!(
        svc.read(|s| s.projects[&p].status),
        ProjectStatus::ReadyToTrain
    );
    assert_replay_matches(&svc);
}

#[tokio::test(start_paused = true)]
async fn export_retries_io_errors_twice_and_leaves_the_project_completed() {
    let dir = tempfile::tempdir().unwrap();
    let svc = start(dir.path(), all_kinds()).await;
    let p = ready_project(&svc, "export").await;
    let bad = submit(&svc, p, JobKind::Export, &["ok"]).await.unwrap_err();
    assert_eq!(bad.error_code, ErrorCode::ExportNoRun);
    let t = submit(&svc, p, JobKind::Train, &["ok"]).await.unwrap();
    wait_status(&svc, t.id, JobStatus::Success).await;
    assert_eq!(
        svc.read(|s| s.projects[&p].status),
        ProjectStatus::Completed
    );
    let e = submit(&svc, p, JobKind::Export, &["fail:EXPORT_WRITE_FAILED"])
        .await
        .unwrap();
    let done = wait_status(&svc, e.id, JobStatus::Failed).await;
    assert_eq!(done.attempts, 3, "1 attempt + 2 retries for I/O errors");
    assert_eq!(
        svc.read(|s| s.projects[&p].status),
        ProjectStatus::Completed
    );
    let other = submit(&svc, p, JobKind::Export, &["fail:EXPORT_ARTIFACTS_MISSING"])
        .await
        .unwrap();
    assert_eq!(
        wait_status(&svc, other.id, JobStatus::Failed)
            .await
            .attempts,
        1,
        "not an I/O error: no retry"
    );
    assert_replay_matches(&svc);
}

#[tokio::test(start_paused = true)]
async fn cancellation_in_every_state() {
    let dir = tempfile::tempdir().unwrap();
    // No executor for exports: an export job stays queued.
    let mut execs = all_kinds();
    execs = {
        let mut e = tunewright_actors::Executors::new();
        for k in [
            JobKind::DatasetPreview,
            JobKind::DatasetGenerate,
            JobKind::Train,
        ] {
            e.insert(k, std::sync::Arc::new(ScriptedExecutor));
        }
        let _ = execs;
        e
    };
    let svc = start(dir.path(), execs).await;
    let p = ready_project(&svc, "cancel").await;

    // running
    let running = submit(&svc, p, JobKind::Train, &["hang"]).await.unwrap();
    wait_status(&svc, running.id, JobStatus::Running).await;
    let c = svc.cancel_job(running.id).await.unwrap();
    assert_eq!(
        c.status,
        JobStatus::Cancelling,
        "running until the worker is gone"
    );
    wait_status(&svc, running.id, JobStatus::Cancelled).await;
    assert_eq!(
        svc.read(|s| s.projects[&p].status),
        ProjectStatus::ReadyToTrain
    );
    let story = svc.read(|s| s.jobs[&running.id].clone());
    assert_eq!(story.attempts, 1);
    assert!(
        story.attempt_failures.is_empty(),
        "a cancelled attempt is not a failure"
    );

    // retrying
    let retrying = submit(
        &svc,
        p,
        JobKind::DatasetPreview,
        &["fail:OLLAMA_API_TIMEOUT", "ok"],
    )
    .await
    .unwrap();
    wait_status(&svc, retrying.id, JobStatus::Retrying).await;
    assert_eq!(
        svc.cancel_job(retrying.id).await.unwrap().status,
        JobStatus::Cancelled
    );
    tokio::time::sleep(Duration::from_secs(120)).await;
    assert_eq!(
        job(&svc, retrying.id).status,
        JobStatus::Cancelled,
        "the due retry did not revive it"
    );
    assert_eq!(job(&svc, retrying.id).attempts, 1);

    // queued (completed project so that an export is allowed; no export executor)
    let t = submit(&svc, p, JobKind::Train, &["ok"]).await.unwrap();
    wait_status(&svc, t.id, JobStatus::Success).await;
    let queued = submit(&svc, p, JobKind::Export, &["ok"]).await.unwrap();
    assert_eq!(
        svc.cancel_job(queued.id).await.unwrap().status,
        JobStatus::Cancelled
    );

    // finished
    let err = svc.cancel_job(t.id).await.unwrap_err();
    assert_eq!(err.error_code, ErrorCode::JobAlreadyFinished);
    assert_eq!(err.error_code.http_status(), 409);
    let err = svc.cancel_job(JobId::new()).await.unwrap_err();
    assert_eq!(err.error_code, ErrorCode::JobNotFound);
    assert_replay_matches(&svc);
}

#[tokio::test(start_paused = true)]
async fn a_job_never_picked_up_fails_after_the_bound() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = config(dir.path());
    cfg.scheduler.queue_timeout = Duration::from_secs(30);
    // No executor at all: nothing ever picks the job up.
    let svc = tunewright_actors::Service::start(cfg, tunewright_actors::Executors::new())
        .await
        .unwrap();
    let p = ready_project(&svc, "timeout").await;
    let j = submit(&svc, p, JobKind::DatasetPreview, &["ok"])
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_secs(29)).await;
    assert_eq!(job(&svc, j.id).status, JobStatus::Queued);
    let done = wait_status(&svc, j.id, JobStatus::Failed).await;
    assert_eq!(done.error.unwrap().error_code, ErrorCode::JobTimeout);
    assert_eq!(done.attempts, 0);
    assert_replay_matches(&svc);
}

#[tokio::test(start_paused = true)]
async fn one_training_at_a_time_on_the_device_the_others_wait_in_line() {
    let dir = tempfile::tempdir().unwrap();
    let svc = start(dir.path(), all_kinds()).await;
    let a = ready_project(&svc, "a").await;
    let b = ready_project(&svc, "b").await;
    let c = ready_project(&svc, "c").await;
    let first = submit(&svc, a, JobKind::Train, &["hang"]).await.unwrap();
    wait_status(&svc, first.id, JobStatus::Running).await;
    // Another project's training is admitted and waits for the device, first in line.
    let second = submit(&svc, b, JobKind::Train, &["ok"]).await.unwrap();
    let third = submit(&svc, c, JobKind::Train, &["ok"]).await.unwrap();
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert_eq!(job(&svc, second.id).status, JobStatus::Queued);
    assert_eq!(svc.read(|s| s.queue_position(second.id)), Some(1));
    assert_eq!(svc.read(|s| s.queue_position(third.id)), Some(2));
    // The same project's second training is refused: one training per project.
    let err = submit(&svc, a, JobKind::Train, &["ok"]).await.unwrap_err();
    assert_eq!(err.error_code, ErrorCode::TrainingAlreadyRunning);
    assert!(err.detail.contains(&first.id.to_string()), "{}", err.detail);
    let err = submit(&svc, b, JobKind::Train, &["ok"]).await.unwrap_err();
    assert_eq!(
        err.error_code,
        ErrorCode::TrainingAlreadyRunning,
        "a queued training counts"
    );
    svc.cancel_job(first.id).await.unwrap();
    let done = wait_status(&svc, second.id, JobStatus::Success).await;
    assert_eq!(done.attempts, 1);
    wait_status(&svc, third.id, JobStatus::Success).await;
    // First in, first out: the second started before the third.
    let started = |id| {
        svc.log()
            .read_stream(tunewright_events::StreamId::Job(id), 0, usize::MAX)
            .unwrap()
            .into_iter()
            .find(|e| matches!(e.event, Event::JobAttemptStarted(_)))
            .unwrap()
            .seq
    };
    assert!(started(second.id) < started(third.id));
    assert_replay_matches(&svc);
}

#[tokio::test(start_paused = true)]
async fn a_training_waiting_for_the_busy_device_is_not_timed_out() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = config(dir.path());
    cfg.scheduler.queue_timeout = Duration::from_secs(30);
    let svc = tunewright_actors::Service::start(cfg, all_kinds())
        .await
        .unwrap();
    let a = ready_project(&svc, "a").await;
    let b = ready_project(&svc, "b").await;
    let first = submit(&svc, a, JobKind::Train, &["hang"]).await.unwrap();
    wait_status(&svc, first.id, JobStatus::Running).await;
    let waiting = submit(&svc, b, JobKind::Train, &["ok"]).await.unwrap();
    tokio::time::sleep(Duration::from_secs(95)).await;
    assert_eq!(
        job(&svc, waiting.id).status,
        JobStatus::Queued,
        "three bounds passed while the device was busy"
    );
    svc.cancel_job(first.id).await.unwrap();
    wait_status(&svc, waiting.id, JobStatus::Success).await;
    assert_replay_matches(&svc);
}

#[tokio::test(start_paused = true)]
async fn job_and_project_validation_errors() {
    let dir = tempfile::tempdir().unwrap();
    let svc = start(dir.path(), all_kinds()).await;
    let empty = svc.create_project("empty").await.unwrap().id;
    let e = submit(&svc, empty, JobKind::Train, &["ok"])
        .await
        .unwrap_err();
    assert_eq!(e.error_code, ErrorCode::TrainingNoDataset);
    let e = submit(&svc, empty, JobKind::DatasetGenerate, &["ok"])
        .await
        .unwrap_err();
    assert_eq!(e.error_code, ErrorCode::DatasetNoDocs);
    let e = svc
        .create_split(
            empty,
            "default".into(),
            vec![("train".into(), 0.8), ("val".into(), 0.2)],
            1,
        )
        .await
        .unwrap_err();
    assert_eq!(e.error_code, ErrorCode::DatasetNotImported);
    let e = submit(&svc, ProjectId::new(), JobKind::Train, &["ok"])
        .await
        .unwrap_err();
    assert_eq!(e.error_code, ErrorCode::ProjectNotFound);
    let e = svc.create_project("  ").await.unwrap_err();
    assert_eq!(e.error_code, ErrorCode::ValidationError);

    let p = ready_project(&svc, "ok").await;
    let e = svc
        .create_split(
            p,
            "s".into(),
            vec![("train".into(), 0.5), ("val".into(), 0.2)],
            1,
        )
        .await
        .unwrap_err();
    assert_eq!(e.error_code, ErrorCode::ValidationError);
    let split = svc
        .create_split(
            p,
            "s".into(),
            vec![("train".into(), 0.8), ("val".into(), 0.2)],
            1,
        )
        .await
        .unwrap();
    assert_eq!(
        split.counts,
        vec![("train".to_string(), 80), ("val".to_string(), 20)]
    );
    let e = submit_with(
        &svc,
        p,
        JobKind::Train,
        serde_json::json!({"split": "nope"}),
        &["ok"],
    )
    .await
    .unwrap_err();
    assert_eq!(e.error_code, ErrorCode::SplitNotFound);

    let running = submit(&svc, p, JobKind::Train, &["hang"]).await.unwrap();
    wait_status(&svc, running.id, JobStatus::Running).await;
    let e = svc.delete_project(p).await.unwrap_err();
    assert_eq!(e.error_code, ErrorCode::ProjectDeleteRunning);
    let e = svc.import_dataset(p, dataset()).await.unwrap_err();
    assert_eq!(e.error_code, ErrorCode::ProjectInvalidStatus);
    svc.cancel_job(running.id).await.unwrap();
    svc.delete_project(p).await.unwrap();
    assert!(svc.read(|s| !s.projects.contains_key(&p)));
    let e = svc.delete_project(p).await.unwrap_err();
    assert_eq!(e.error_code, ErrorCode::ProjectNotFound);
    assert_replay_matches(&svc);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_cancelling_when_the_service_stops_is_cancelled_at_the_next_start() {
    let dir = tempfile::tempdir().unwrap();
    let svc = start(dir.path(), all_kinds()).await;
    let p = ready_project(&svc, "deaf").await;
    let j = submit(&svc, p, JobKind::Train, &["deaf"]).await.unwrap();
    wait_status(&svc, j.id, JobStatus::Running).await;
    assert_eq!(
        svc.cancel_job(j.id).await.unwrap().status,
        JobStatus::Cancelling
    );
    // Asked again: the same answer, and nothing else recorded.
    assert_eq!(
        svc.cancel_job(j.id).await.unwrap().status,
        JobStatus::Cancelling
    );
    // The worker has not stopped, so the device is still its: a second training waits.
    let q = ready_project(&svc, "waits").await;
    let next = submit(&svc, q, JobKind::Train, &["ok"]).await.unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(job(&svc, next.id).status, JobStatus::Queued);
    svc.shutdown("test").await.unwrap();

    let svc = start(dir.path(), all_kinds()).await;
    wait_status(&svc, j.id, JobStatus::Cancelled).await;
    wait_status(&svc, next.id, JobStatus::Success).await;
    let requests = svc.read(|s| s.jobs[&j.id].clone());
    assert_eq!(requests.attempts, 1, "a cancelling job is never resumed");
    assert_eq!(
        svc.read(|s| s.projects[&p].status),
        ProjectStatus::ReadyToTrain
    );
    svc.shutdown("test").await.unwrap();
}
