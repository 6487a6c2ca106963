//! A project actor that dies is rebuilt from the live state: the next command reaches a
//! running actor that knows the project's files, dataset and limits, and nothing is lost.

mod support;

use std::time::Duration;

use support::*;
use tunewright_actors::project::FileRecord;
use tunewright_schemas::*;

fn file(name: &str, size_bytes: u64) -> FileRecord {
    FileRecord {
        file_id: FileId::new(),
        name: name.into(),
        media_type: "text/markdown".into(),
        size_bytes,
        sha256: "cd".repeat(32),
        stored_path: format!("projects/p/files/{name}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_project_actor_is_rebuilt_from_the_state() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = config(dir.path());
    cfg.limits.max_total_file_bytes = 100;
    let svc = tunewright_actors::Service::start(cfg, all_kinds())
        .await
        .unwrap();
    let p = ready_project(&svc, "rebuilt").await; // one 10-byte document, a dataset
    let before = svc.read(|s| s.projects[&p].clone());

    let actor = svc.projects().actor(p).await.unwrap();
    actor.kill();
    for _ in 0..1000 {
        if actor.get_status() == ractor::ActorStatus::Stopped {
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert_eq!(actor.get_status(), ractor::ActorStatus::Stopped);

    // The rebuilt actor still enforces the limit over the files recorded before.
    let e = svc.record_file(p, file("big.md", 91)).await.unwrap_err();
    assert_eq!(e.error_code, ErrorCode::FileTotalLimit);
    svc.record_file(p, file("fits.md", 90)).await.unwrap();
    let split = svc
        .create_split(
            p,
            "s".into(),
            vec![("train".into(), 0.9), ("val".into(), 0.1)],
            3,
        )
        .await
        .unwrap();
    assert_eq!(split.counts.iter().map(|(_, c)| c).sum::<u64>(), 100);
    let after = svc.read(|s| s.projects[&p].clone());
    assert_eq!(after.dataset, before.dataset);
    assert_eq!(after.files.len(), 2);
    let j = submit_with(
        &svc,
        p,
        JobKind::Train,
        serde_json::json!({"split": "s"}),
        &["ok"],
    )
    .await
    .unwrap();
    wait_status(&svc, j.id, JobStatus::Success).await;
    assert_eq!(
        svc.read(|s| s.projects[&p].status),
        ProjectStatus::Completed
    );
    assert!(
        svc.is_ready(),
        "a project actor's death does not take the service down"
    );
    assert_replay_matches(&svc);
    svc.shutdown("done").await.unwrap();
}
