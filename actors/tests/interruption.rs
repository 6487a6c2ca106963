//! Restart recovery for kinds that cannot resume: a job of such a kind that was `running`
//! when the service stopped is interrupted and failed with its kind's code at the next
//! start (the project keeps the status docs/projects.md gives a failed job), while a job
//! `retrying` at the stop keeps its due time and runs after it.

mod support;

use std::sync::Arc;
use std::time::Duration;

use support::*;
use tunewright_actors::{Executors, JobContext, JobExecutor, Service};
use tunewright_events::Event;
use tunewright_schemas::*;

/// A scripted executor whose attempts cannot be resumed after a crash.
struct NotResumable;

#[async_trait::async_trait]
impl JobExecutor for NotResumable {
    async fn execute(&self, ctx: JobContext) -> Result<serde_json::Value, Failure> {
        ScriptedExecutor.execute(ctx).await
    }

    fn resumable(&self) -> bool {
        false
    }
}

fn executors() -> Executors {
    let mut e = Executors::new();
    for k in JobKind::ALL {
        e.insert(*k, Arc::new(NotResumable));
    }
    e
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_running_job_that_cannot_resume_fails_with_its_kind_code_after_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = config(dir.path());
    // A long retry wait, so the preview job is still `retrying` across the restart.
    cfg.scheduler.policies.dataset_preview.base = Duration::from_secs(2);
    cfg.scheduler.policies.dataset_preview.full_jitter = false;
    let (p, gen, preview, due) = {
        let svc = Service::start(cfg.clone(), executors()).await.unwrap();
        let p = svc.create_project("gen").await.unwrap().id;
        svc.record_file(p, dataset_doc()).await.unwrap();
        let gen = submit(&svc, p, JobKind::DatasetGenerate, &["hang", "ok"])
            .await
            .unwrap();
        wait_status(&svc, gen.id, JobStatus::Running).await;
        let preview = submit(
            &svc,
            p,
            JobKind::DatasetPreview,
            &["fail:OLLAMA_API_RATE_LIMIT", "ok"],
        )
        .await
        .unwrap();
        let r = wait_status(&svc, preview.id, JobStatus::Retrying).await;
        let due = r.retry_due_at_ms.expect("a retrying job has a due time");
        svc.shutdown("test restart").await.unwrap();
        (p, gen.id, preview.id, due)
    };

    let svc = Service::start(cfg, executors()).await.unwrap();
    let g = wait_status(&svc, gen, JobStatus::Failed).await;
    let err = g.error.expect("a failed job carries its failure");
    assert_eq!(err.error_code, ErrorCode::DatasetGenerationFailed);
    assert!(err.detail.contains("cannot resume"), "{}", err.detail);
    assert!(err.analysis.is_some(), "the failure is analyzed");
    assert_eq!(g.attempts, 1, "never started again");
    assert_eq!(g.interruptions, 1);
    let evs = job_events(&svc, gen);
    assert!(evs.iter().any(|e| matches!(e, Event::JobInterrupted(_))));
    assert_eq!(
        svc.read(|s| s.projects[&p].status),
        ProjectStatus::Generating,
        "a failed generation leaves the project generating (re-runnable)"
    );

    let r = job(&svc, preview);
    if r.status == JobStatus::Retrying {
        assert_eq!(r.retry_due_at_ms, Some(due), "the due time is kept");
    }
    let r = wait_status(&svc, preview, JobStatus::Success).await;
    assert_eq!(r.attempts, 2);
    let started_second = svc
        .log()
        .read_stream(tunewright_events::StreamId::Job(preview), 0, usize::MAX)
        .unwrap()
        .into_iter()
        .find(|e| matches!(&e.event, Event::JobAttemptStarted(s) if s.attempt == 2))
        .expect("the second attempt started");
    assert!(
        started_second.ts_ms >= due,
        "the retry ran at or after its due time ({} < {due})",
        started_second.ts_ms
    );
    assert!(svc.read(|s| s.jobs.values().all(|j| j.status.is_terminal())));
    assert_replay_matches(&svc);
    svc.shutdown("done").await.unwrap();
}

fn dataset_doc() -> tunewright_actors::project::FileRecord {
    tunewright_actors::project::FileRecord {
        file_id: FileId::new(),
        name: "doc.md".into(),
        media_type: "text/markdown".into(),
        size_bytes: 10,
        sha256: "00".repeat(32),
        stored_path: "projects/x/files/doc.md".into(),
    }
}
