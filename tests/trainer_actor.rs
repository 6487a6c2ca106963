//! The trainer actor's executor end to end: a real service (redb log, scheduler, supervisor)
//! running `train` jobs in worker processes. The real `tunewright-worker` for pre-flight
//! failures; stand-in workers (scripts in `tests/fixtures/fake-worker/`, spawned with an
//! argument vector like the real one) for deaths by SIGKILL, so the restart budget, the
//! resume from the last verified checkpoint and the fallback past a corrupted one are tested
//! without a training loop.

use std::path::{Path, PathBuf};
use std::time::Duration;

use tunewright_actors::project::DatasetRecord;
use tunewright_actors::trainer::{TrainerExecutor, WorkerLauncher};
use tunewright_actors::{Executors, Service, ServiceConfig};
use tunewright_events::projection::JobView;
use tunewright_events::{Event, StreamId};
use tunewright_schemas::{DatasetId, ErrorCode, JobId, JobKind, JobStatus, ProjectId};

fn fake(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/fake-worker")
        .join(name)
}

/// A train config on the tiny Llama fixture (admission checks the model), with `extra`.
fn tiny_config(extra: serde_json::Value) -> serde_json::Value {
    let mut c = serde_json::json!({
        "base_model": Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/tiny-llama"),
    });
    if let (Some(o), Some(e)) = (c.as_object_mut(), extra.as_object()) {
        o.extend(e.clone());
    }
    c
}

async fn start(dir: &Path, worker: PathBuf) -> Service {
    start_with(dir, worker, 3).await
}

async fn start_with(dir: &Path, worker: PathBuf, max_restarts: u64) -> Service {
    let mut c = ServiceConfig::new(dir);
    c.scheduler.queue_timeout = Duration::from_secs(3600);
    let exec = Executors::new().with(
        JobKind::Train,
        TrainerExecutor::new(WorkerLauncher::new(worker)).with_max_restarts(max_restarts),
    );
    Service::start(c, exec).await.expect("service starts")
}

async fn project(svc: &Service) -> ProjectId {
    let p = svc.create_project("t").await.unwrap().id;
    svc.import_dataset(
        p,
        DatasetRecord {
            dataset_id: DatasetId::new(),
            format: "alpaca".into(),
            num_examples: 3,
            size_bytes: 100,
            sha256: "11".repeat(32),
            stored_path: "projects/t/dataset.jsonl".into(),
            source: "upload".into(),
        },
    )
    .await
    .unwrap();
    p
}

async fn finished(svc: &Service, id: JobId) -> JobView {
    for _ in 0..6000 {
        let j = svc.read(|s| s.jobs.get(&id).cloned()).expect("job exists");
        if matches!(
            j.status,
            JobStatus::Success | JobStatus::Failed | JobStatus::Cancelled
        ) {
            return j;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("job {id} never finished");
}

fn events(svc: &Service, id: JobId) -> Vec<Event> {
    svc.log()
        .read_stream(StreamId::Job(id), 0, usize::MAX)
        .unwrap()
        .into_iter()
        .map(|e| e.event)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sigkilled_worker_resumes_from_its_last_checkpoint() {
    let dir = tempfile::tempdir().unwrap();
    let svc = start(dir.path(), fake("checkpoint-then-die")).await;
    let p = project(&svc).await;
    let j = svc
        .submit_job(p, JobKind::Train, tiny_config(serde_json::json!({})))
        .await
        .unwrap();
    let done = finished(&svc, j.id).await;
    assert_eq!(done.status, JobStatus::Success, "{:?}", done.error);
    let resumed = done.result.as_ref().unwrap().0["resumed_from"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(resumed.ends_with("checkpoints/step-4"), "{resumed}");
    assert_eq!(done.resumed_from_step, Some(4));
    assert_eq!(done.checkpoints.len(), 2);
    let evs = events(&svc, j.id);
    let note = evs.iter().find_map(|e| match e {
        Event::JobNote(n) if n.topic == "worker_restarted" => Some(n.data.0.clone()),
        _ => None,
    });
    let note = note.expect("the restart is recorded");
    assert_eq!(note["status"], "killed by signal 9 (SIGKILL)");
    let tail = note["log_tail"].as_array().unwrap();
    assert!(tail.iter().any(|l| l == "about to die"), "{tail:?}");
    assert!(tail.iter().any(|l| l == "step 5 of 8"), "{tail:?}");
    assert!(evs
        .iter()
        .any(|e| matches!(e, Event::TrainingResumed(r) if r.resumed_from_step == 4)));
    svc.shutdown("test").await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_corrupted_latest_checkpoint_falls_back_to_the_previous_one() {
    let dir = tempfile::tempdir().unwrap();
    let svc = start(dir.path(), fake("checkpoint-then-die")).await;
    let p = project(&svc).await;
    let j = svc
        .submit_job(
            p,
            JobKind::Train,
            tiny_config(serde_json::json!({"seed": 7})),
        )
        .await
        .unwrap();
    let done = finished(&svc, j.id).await;
    assert_eq!(done.status, JobStatus::Success, "{:?}", done.error);
    let resumed = done.result.as_ref().unwrap().0["resumed_from"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(resumed.ends_with("checkpoints/step-2"), "{resumed}");
    assert_eq!(done.resumed_from_step, Some(2));
    let rejected: Vec<_> = events(&svc, j.id)
        .into_iter()
        .filter_map(|e| match e {
            Event::CheckpointRejected(r) => Some(r),
            _ => None,
        })
        .collect();
    assert_eq!(rejected.len(), 1);
    assert_eq!(rejected[0].step, 4);
    assert!(
        rejected[0].reason.contains("does not match"),
        "{}",
        rejected[0].reason
    );
    svc.shutdown("test").await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_that_keeps_dying_ends_training_interrupted_with_signal_and_log_tail() {
    let dir = tempfile::tempdir().unwrap();
    let svc = start_with(dir.path(), fake("always-dies"), 2).await;
    let p = project(&svc).await;
    let j = svc
        .submit_job(p, JobKind::Train, tiny_config(serde_json::json!({})))
        .await
        .unwrap();
    let done = finished(&svc, j.id).await;
    assert_eq!(done.status, JobStatus::Failed);
    let err = done.error.clone().unwrap();
    assert_eq!(err.error_code, ErrorCode::TrainingInterrupted);
    assert!(
        err.detail.contains("killed by signal 9 (SIGKILL)"),
        "{}",
        err.detail
    );
    assert_eq!(err.log_tail, vec!["loading model".to_string()]);
    let restarts = events(&svc, j.id)
        .iter()
        .filter(|e| matches!(e, Event::JobNote(n) if n.topic == "worker_restarted"))
        .count();
    assert_eq!(
        restarts, 2,
        "the restart budget is spent, then the job fails"
    );
    // The service keeps serving.
    assert!(svc.create_project("after").await.is_ok());
    svc.shutdown("test").await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cuda_without_a_gpu_is_training_no_gpu_from_the_real_worker() {
    let dir = tempfile::tempdir().unwrap();
    let svc = start(
        dir.path(),
        PathBuf::from(env!("CARGO_BIN_EXE_tunewright-worker")),
    )
    .await;
    let p = project(&svc).await;
    std::fs::create_dir_all(dir.path().join("projects/t")).unwrap();
    std::fs::write(dir.path().join("projects/t/dataset.jsonl"), "{}\n").unwrap();
    let j = svc
        .submit_job(p, JobKind::Train, serde_json::json!({
                "device": "cuda",
                "base_model": Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/tiny-llama"),
            }))
        .await
        .unwrap();
    let done = finished(&svc, j.id).await;
    assert_eq!(done.status, JobStatus::Failed);
    let code = done.error.unwrap().error_code;
    if tch_has_cuda() {
        assert_ne!(code, ErrorCode::TrainingNoGpu);
    } else {
        assert_eq!(code, ErrorCode::TrainingNoGpu);
    }
    assert!(svc.create_project("after").await.is_ok());
    svc.shutdown("test").await.unwrap();
}

/// Whether this machine has a GPU, asked of `tunewright-worker probe` (the service never
/// initialises CUDA itself).
fn tch_has_cuda() -> bool {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_tunewright-worker"))
        .args(["probe"])
        .output()
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    v["cuda_available"].as_bool().unwrap()
}

#[test]
fn worker_probe_prints_the_hardware_report_as_json() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_tunewright-worker"))
        .args(["probe"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(v["cuda_available"].is_boolean());
    assert!(v["cpu_threads"].as_i64().unwrap() >= 1);
}

#[test]
fn worker_with_an_unreadable_spec_writes_a_failure_line_and_exits_3() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_tunewright-worker"))
        .args(["export", "--spec", "/nonexistent/spec.json"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3));
    let line: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(line["type"], "failure");
    assert_eq!(line["failure"]["error_code"], "EXPORT_WRITE_FAILED");
}
