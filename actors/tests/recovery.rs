//! Restart recovery: a child process runs the service with jobs queued, retrying and running,
//! and is SIGKILLed. A new service on the same data dir must find every job where the policy
//! says — the queued one runs, the retrying one retries when due, the running one is
//! interrupted and resumes — none stuck, and the replayed log must equal the live state.

mod support;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

use support::*;
use tunewright_actors::Executors;
use tunewright_events::Event;
use tunewright_schemas::*;

const CHILD_ENV: &str = "TUNEWRIGHT_RECOVERY_CHILD_DIR";

/// Runs only in the child: set up the three jobs, print their ids, then wait to be killed.
#[test]
fn recovery_child_service() {
    let Ok(dir) = std::env::var(CHILD_ENV) else {
        return;
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async move {
        // No export executor: the export job stays queued.
        let mut execs = Executors::new();
        for k in [
            JobKind::DatasetPreview,
            JobKind::DatasetGenerate,
            JobKind::Train,
        ] {
            execs.insert(k, std::sync::Arc::new(ScriptedExecutor));
        }
        let mut cfg = config(std::path::Path::new(&dir));
        // A long first retry wait, so the generation job is still `retrying` when killed.
        cfg.scheduler.policies.dataset_generate.base = Duration::from_secs(3);
        cfg.scheduler.policies.dataset_generate.full_jitter = false;
        let svc = tunewright_actors::Service::start(cfg, execs).await.unwrap();
        // Project a: a completed training (so it may export) and a queued export.
        let p = ready_project(&svc, "exports").await;
        let first = submit(&svc, p, JobKind::Train, &["ok"]).await.unwrap();
        wait_status(&svc, first.id, JobStatus::Success).await;
        let queued = submit(&svc, p, JobKind::Export, &["ok"]).await.unwrap();
        // Project b: a training running at the kill.
        let b = ready_project(&svc, "trains").await;
        let running = submit(&svc, b, JobKind::Train, &["hang", "ok"])
            .await
            .unwrap();
        wait_status(&svc, running.id, JobStatus::Running).await;
        // Project c: a generation waiting for its retry.
        let c = ready_project(&svc, "generates").await;
        let retrying = submit(
            &svc,
            c,
            JobKind::DatasetGenerate,
            &["fail:OLLAMA_API_TIMEOUT", "ok"],
        )
        .await
        .unwrap();
        wait_status(&svc, retrying.id, JobStatus::Retrying).await;
        println!("READY {p} {} {} {}", running.id, retrying.id, queued.id);
        tokio::time::sleep(Duration::from_secs(3600)).await;
    });
}

#[tokio::test]
async fn sigkill_with_jobs_queued_retrying_and_running_then_restart() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "recovery_child_service",
            "--nocapture",
            "--test-threads",
            "1",
        ])
        .env(CHILD_ENV, dir.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let ids = loop {
        let line = lines.next().expect("child printed READY").unwrap();
        // The test harness may print "test … ... " before it on the same line.
        if let Some((_, rest)) = line.split_once("READY ") {
            break rest
                .split_whitespace()
                .map(str::to_string)
                .collect::<Vec<_>>();
        }
    };
    child.kill().unwrap(); // SIGKILL: no shutdown, no flush beyond what was acknowledged
    child.wait().unwrap();
    let _p: ProjectId = ids[0].parse().unwrap();
    let running: JobId = ids[1].parse().unwrap();
    let retrying: JobId = ids[2].parse().unwrap();
    let queued: JobId = ids[3].parse().unwrap();

    let svc = start(dir.path(), all_kinds()).await;
    // Right after start-up: the running job was interrupted and re-queued (or already resumed).
    let r = job(&svc, running);
    assert_ne!(r.status, JobStatus::Failed);
    assert_eq!(r.interruptions, 1);
    assert_eq!(
        job(&svc, retrying).status,
        JobStatus::Retrying,
        "still waiting for its due time"
    );

    let r = wait_status(&svc, running, JobStatus::Success).await;
    assert_eq!(r.attempts, 2, "resumed as a second attempt");
    assert_eq!(
        r.result.unwrap().0["interruptions"],
        1,
        "the executor saw it was interrupted"
    );
    let events = job_events(&svc, running);
    assert!(events.iter().any(|e| matches!(e, Event::JobInterrupted(_))));
    let g = wait_status(&svc, retrying, JobStatus::Success).await;
    assert_eq!(g.attempts, 2);
    let q = wait_status(&svc, queued, JobStatus::Success).await;
    assert_eq!(q.attempts, 1);
    assert!(
        svc.read(|s| s.jobs.values().all(|j| j.status.is_terminal())),
        "no job stuck"
    );
    let statuses: Vec<ProjectStatus> =
        svc.read(|s| s.projects.values().map(|p| p.status).collect());
    assert!(statuses.contains(&ProjectStatus::Completed));
    assert!(
        !statuses.contains(&ProjectStatus::Training),
        "no project left training: {statuses:?}"
    );
    assert_replay_matches(&svc);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_interrupted_job_over_its_restart_budget_fails_with_its_code() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = config(dir.path());
    cfg.scheduler.restart_budget = 1;
    {
        let svc = tunewright_actors::Service::start(cfg.clone(), all_kinds())
            .await
            .unwrap();
        let p = ready_project(&svc, "budget").await;
        let j = submit(&svc, p, JobKind::Train, &["hang"]).await.unwrap();
        wait_status(&svc, j.id, JobStatus::Running).await;
        println!("{}", j.id);
        // Graceful stop: the attempt stops for the shutdown and stays `running` in the log.
        svc.shutdown("test restart").await.unwrap();
    }
    for round in 1..=2 {
        let svc = tunewright_actors::Service::start(cfg.clone(), all_kinds())
            .await
            .unwrap();
        let j = svc.read(|s| s.jobs.values().next().cloned()).unwrap();
        if round == 1 {
            assert_eq!(j.interruptions, 1);
            wait_status(&svc, j.id, JobStatus::Running).await;
            svc.shutdown("test restart").await.unwrap();
        } else {
            let f = wait_status(&svc, j.id, JobStatus::Failed).await;
            let err = f.error.unwrap();
            assert_eq!(err.error_code, ErrorCode::TrainingInterrupted);
            assert!(err.detail.contains("over the budget"), "{}", err.detail);
            assert_eq!(
                svc.read(|s| s.projects.values().next().unwrap().status),
                ProjectStatus::ReadyToTrain
            );
            assert_replay_matches(&svc);
            svc.shutdown("done").await.unwrap();
        }
    }
}
