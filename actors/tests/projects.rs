//! Project actors through the service facade: files bookkeeping under the per-project
//! total limit, status rules for documents, the split rules of docs/projects.md, the project
//! status machine of docs/projects.md across generation and training, and that all of it
//! survives a restart on the same log and replays to the live state.

mod support;

use support::*;
use tunewright_actors::project::FileRecord;
use tunewright_actors::Service;
use tunewright_events::Event;
use tunewright_schemas::*;

fn file(name: &str, size_bytes: u64) -> FileRecord {
    FileRecord {
        file_id: FileId::new(),
        name: name.into(),
        media_type: "text/markdown".into(),
        size_bytes,
        sha256: "ab".repeat(32),
        stored_path: format!("projects/p/files/{name}"),
    }
}

fn ratios(v: &[(&str, f64)]) -> Vec<(String, f64)> {
    v.iter().map(|(k, r)| (k.to_string(), *r)).collect()
}

fn status(svc: &Service, p: ProjectId) -> ProjectStatus {
    svc.read(|s| s.projects.get(&p).map(|p| p.status))
        .expect("project exists")
}

/// The `(from, to)` of every status change of one project, in log order.
fn status_changes(svc: &Service, p: ProjectId) -> Vec<(ProjectStatus, ProjectStatus)> {
    svc.log()
        .read_after(0, usize::MAX)
        .unwrap()
        .into_iter()
        .filter_map(|e| match e.event {
            Event::ProjectStatusChanged(c) if c.project_id == p => Some((c.from, c.to)),
            _ => None,
        })
        .collect()
}

#[tokio::test(start_paused = true)]
async fn files_are_recorded_within_the_project_total_limit_and_survive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = config(dir.path());
    cfg.limits.max_total_file_bytes = 100;
    let svc = Service::start(cfg.clone(), all_kinds()).await.unwrap();
    let p = svc.create_project("docs").await.unwrap().id;

    let a = svc.record_file(p, file("a.md", 60)).await.unwrap();
    assert_eq!(a.size_bytes, 60);
    let e = svc.record_file(p, file("b.md", 50)).await.unwrap_err();
    assert_eq!(e.error_code, ErrorCode::FileTotalLimit);
    assert_eq!(e.context.0["filename"], "b.md");
    // Exactly at the limit is allowed.
    let c = svc.record_file(p, file("c.md", 40)).await.unwrap();
    assert_eq!(
        svc.read(|s| s.projects[&p].files_total_bytes()),
        100,
        "the refused file was not recorded"
    );

    let e = svc.delete_file(p, FileId::new()).await.unwrap_err();
    assert_eq!(e.error_code, ErrorCode::FileNotFound);
    let deleted = svc.delete_file(p, a.id).await.unwrap();
    assert_eq!(deleted.id, a.id);
    let e = svc.delete_file(p, a.id).await.unwrap_err();
    assert_eq!(e.error_code, ErrorCode::FileNotFound);
    // The freed space can be used again.
    svc.record_file(p, file("b.md", 50)).await.unwrap();

    let e = svc
        .record_file(ProjectId::new(), file("x.md", 1))
        .await
        .unwrap_err();
    assert_eq!(e.error_code, ErrorCode::ProjectNotFound);
    assert_eq!(status(&svc, p), ProjectStatus::Created);
    assert_replay_matches(&svc);

    let before = svc.read(|s| s.projects[&p].clone());
    svc.shutdown("test restart").await.unwrap();
    drop(svc);
    let svc = Service::start(cfg, all_kinds()).await.unwrap();
    let after = svc.read(|s| s.projects[&p].clone());
    assert_eq!(after.files, before.files);
    assert!(after.files.contains_key(&c.id));
    // The limit still counts the files recorded before the restart.
    let e = svc.record_file(p, file("d.md", 11)).await.unwrap_err();
    assert_eq!(e.error_code, ErrorCode::FileTotalLimit);
    assert_replay_matches(&svc);
}

#[tokio::test(start_paused = true)]
async fn documents_cannot_be_deleted_while_a_dataset_job_reads_them() {
    let dir = tempfile::tempdir().unwrap();
    let svc = start(dir.path(), all_kinds()).await;
    let p = svc.create_project("gen").await.unwrap().id;
    let doc = svc.record_file(p, file("doc.md", 10)).await.unwrap();
    let gen = submit(&svc, p, JobKind::DatasetGenerate, &["hang"])
        .await
        .unwrap();
    assert_eq!(status(&svc, p), ProjectStatus::Generating);
    wait_status(&svc, gen.id, JobStatus::Running).await;

    let e = svc.delete_file(p, doc.id).await.unwrap_err();
    assert_eq!(e.error_code, ErrorCode::ProjectInvalidStatus);
    let e = submit(&svc, p, JobKind::DatasetGenerate, &["ok"])
        .await
        .unwrap_err();
    assert_eq!(
        e.error_code,
        ErrorCode::Conflict,
        "one generation at a time"
    );

    svc.cancel_job(gen.id).await.unwrap();
    wait_status(&svc, gen.id, JobStatus::Cancelled).await;
    // A cancelled generation without a dataset returns the project to `created`.
    assert_eq!(status(&svc, p), ProjectStatus::Created);
    svc.delete_file(p, doc.id).await.unwrap();
    let e = submit(&svc, p, JobKind::DatasetGenerate, &["ok"])
        .await
        .unwrap_err();
    assert_eq!(e.error_code, ErrorCode::DatasetNoDocs);
    assert_replay_matches(&svc);
}

#[tokio::test(start_paused = true)]
async fn split_validations_follow_seed_002() {
    let dir = tempfile::tempdir().unwrap();
    let svc = start(dir.path(), all_kinds()).await;
    let p = ready_project(&svc, "splits").await;

    let refused: &[(&str, &[(&str, f64)])] = &[
        ("sum", &[("train", 0.8), ("val", 0.22)]),
        ("sum", &[("train", 0.7), ("val", 0.2)]),
        ("noval", &[("train", 0.8), ("test", 0.2)]),
        ("notrain", &[("val", 0.2), ("test", 0.8)]),
        ("neg", &[("train", 1.2), ("val", -0.2)]),
        ("dup", &[("train", 0.4), ("train", 0.4), ("val", 0.2)]),
        ("nan", &[("train", f64::NAN), ("val", 0.2)]),
        ("bad name!", &[("train", 0.8), ("val", 0.2)]),
        ("", &[("train", 0.8), ("val", 0.2)]),
    ];
    for (name, r) in refused {
        let e = svc
            .create_split(p, name.to_string(), ratios(r), 7)
            .await
            .unwrap_err();
        assert_eq!(e.error_code, ErrorCode::ValidationError, "{name}: {r:?}");
    }
    assert!(svc.read(|s| s.projects[&p].splits.is_empty()));

    // Within 0.01 of 1.0 is accepted; every example lands in exactly one part.
    let s = svc
        .create_split(
            p,
            "three-way".into(),
            ratios(&[("train", 0.705), ("val", 0.15), ("test", 0.15)]),
            7,
        )
        .await
        .unwrap();
    assert_eq!(s.counts.iter().map(|(_, c)| c).sum::<u64>(), 100);
    assert_eq!(s.seed, 7);
    let train = submit_with(
        &svc,
        p,
        JobKind::Train,
        serde_json::json!({"split": "three-way"}),
        &["ok"],
    )
    .await
    .unwrap();
    wait_status(&svc, train.id, JobStatus::Success).await;
    assert_replay_matches(&svc);
}

#[tokio::test(start_paused = true)]
async fn project_status_follows_docs_across_generation_training_and_export() {
    let dir = tempfile::tempdir().unwrap();
    let svc = start(dir.path(), all_kinds()).await;
    let p = svc.create_project("life").await.unwrap().id;
    svc.record_file(p, file("doc.md", 10)).await.unwrap();

    // A failed generation stays `generating` (re-runnable).
    let gen = submit(
        &svc,
        p,
        JobKind::DatasetGenerate,
        &["fail:OLLAMA_API_KEY_INVALID"],
    )
    .await
    .unwrap();
    let failed = wait_status(&svc, gen.id, JobStatus::Failed).await;
    assert_eq!(
        failed.error.as_ref().map(|f| f.error_code),
        Some(ErrorCode::OllamaApiKeyInvalid)
    );
    assert_eq!(status(&svc, p), ProjectStatus::Generating);
    // Training is refused without a dataset, whatever the status.
    let e = submit(&svc, p, JobKind::Train, &["ok"]).await.unwrap_err();
    assert_eq!(e.error_code, ErrorCode::TrainingNoDataset);

    // Importing a dataset makes the project ready to train.
    svc.import_dataset(p, dataset()).await.unwrap();
    assert_eq!(status(&svc, p), ProjectStatus::ReadyToTrain);
    let e = submit(&svc, p, JobKind::Export, &["ok"]).await.unwrap_err();
    assert_eq!(e.error_code, ErrorCode::ExportNoRun);

    // Training: `training`, then `completed` on success.
    let t = submit(&svc, p, JobKind::Train, &["hang"]).await.unwrap();
    assert_eq!(status(&svc, p), ProjectStatus::Training);
    let e = submit(&svc, p, JobKind::DatasetPreview, &["ok"])
        .await
        .unwrap_err();
    assert_eq!(e.error_code, ErrorCode::ProjectInvalidStatus);
    wait_status(&svc, t.id, JobStatus::Running).await;
    svc.cancel_job(t.id).await.unwrap();
    wait_status(&svc, t.id, JobStatus::Cancelled).await;
    assert_eq!(status(&svc, p), ProjectStatus::ReadyToTrain);
    let t = submit(&svc, p, JobKind::Train, &["ok"]).await.unwrap();
    wait_status(&svc, t.id, JobStatus::Success).await;
    assert_eq!(status(&svc, p), ProjectStatus::Completed);

    // A failed export leaves the project `completed`.
    let x = submit(&svc, p, JobKind::Export, &["fail:EXPORT_ARTIFACTS_MISSING"])
        .await
        .unwrap();
    wait_status(&svc, x.id, JobStatus::Failed).await;
    assert_eq!(status(&svc, p), ProjectStatus::Completed);

    // Re-training from `completed` and failing returns to `ready_to_train`.
    let t = submit(&svc, p, JobKind::Train, &["fail:TRAINING_OOM"])
        .await
        .unwrap();
    wait_status(&svc, t.id, JobStatus::Failed).await;
    assert_eq!(status(&svc, p), ProjectStatus::ReadyToTrain);

    use ProjectStatus::*;
    assert_eq!(
        status_changes(&svc, p),
        vec![
            (Created, Generating),
            (Generating, ReadyToTrain),
            (ReadyToTrain, Training),
            (Training, ReadyToTrain),
            (ReadyToTrain, Training),
            (Training, Completed),
            (Completed, Training),
            (Training, ReadyToTrain),
        ]
    );
    assert_replay_matches(&svc);
}

#[tokio::test(start_paused = true)]
async fn a_gguf_export_is_judged_by_the_family_of_the_model_it_exports() {
    let dir = tempfile::tempdir().unwrap();
    let svc = start(dir.path(), all_kinds()).await;
    let p = svc.create_project("gguf").await.unwrap().id;
    svc.import_dataset(p, dataset()).await.unwrap();
    let t = submit(&svc, p, JobKind::Train, &["ok"]).await.unwrap();
    wait_status(&svc, t.id, JobStatus::Success).await;
    // A GGUF export is judged by the family of the base model it exports (docs/exports.md):
    // the newest training's Phi-3 is refused at submission, naming it; the named Llama is not.
    let phi3 = tiny_llama().replace("tiny-llama", "tiny-phi3");
    let t3 = submit_with(
        &svc,
        p,
        JobKind::Train,
        serde_json::json!({"base_model": phi3}),
        &["ok"],
    )
    .await
    .unwrap();
    wait_status(&svc, t3.id, JobStatus::Success).await;
    let gguf = serde_json::json!({"format": "gguf"});
    let e = submit_with(&svc, p, JobKind::Export, gguf, &["ok"])
        .await
        .unwrap_err();
    assert_eq!(e.error_code, ErrorCode::ExportFormatUnavailable);
    assert!(e.detail.contains("'gguf for phi3'"), "{}", e.detail);
    let named = serde_json::json!({"format": "ollama", "train_job": t.id.to_string()});
    let x = submit_with(&svc, p, JobKind::Export, named, &["ok"])
        .await
        .unwrap();
    wait_status(&svc, x.id, JobStatus::Success).await;
}
