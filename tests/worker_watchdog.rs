//! The progress watchdog against real hung workers (docs/jobs.md, "The progress watchdog"):
//! a training worker stopped with SIGSTOP after its first checkpoint is killed, the attempt is
//! recorded `TRAINING_STALLED` and the job resumes from that checkpoint to the same adapter
//! bits as an uninterrupted run; a worker blocked reading its data from a FIFO (storage that
//! never answers) is killed in pre-flight, retried within its budget, and ends `TRAINING_STALLED`
//! with an analysis; a cancelled worker that does not stop is killed after the grace.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use tunewright_actors::project::DatasetRecord;
use tunewright_actors::trainer::watchdog::StallBounds;
use tunewright_actors::trainer::{TrainerExecutor, WorkerLauncher};
use tunewright_actors::{Executors, Service, ServiceConfig};
use tunewright_events::projection::JobView;
use tunewright_schemas::{DatasetId, ErrorCode, ErrorPhase, JobId, JobKind, JobStatus, ProjectId};

fn fixture(p: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(p)
}

/// A service whose watchdog declares a training worker hung after 3 s of silence. The start-up
/// allowance per GiB is large, so a real start (reading the sample data, loading the model) is
/// never judged hung, while a data FIFO (no size) gets the 3 s floor alone.
async fn start(dir: &Path, max_retries: u32) -> Service {
    let mut c = ServiceConfig::new(dir);
    c.scheduler.queue_timeout = Duration::from_secs(3600);
    c.scheduler.policies.train.max_retries = max_retries;
    let mut launcher = WorkerLauncher::new(PathBuf::from(env!("CARGO_BIN_EXE_tunewright-worker")));
    launcher.stall = StallBounds {
        floor: Duration::from_secs(3),
        ceiling: Duration::from_secs(600),
        startup_per_gib: Duration::from_secs(1_000_000),
    };
    launcher.cancel_grace = Duration::from_secs(1);
    let exec = Executors::new().with(JobKind::Train, TrainerExecutor::new(launcher));
    Service::start(c, exec).await.expect("service starts")
}

async fn project(svc: &Service, data: &Path) -> ProjectId {
    let p = svc.create_project("t").await.unwrap().id;
    let sample = fixture("sft-sample.jsonl");
    svc.import_dataset(
        p,
        DatasetRecord {
            dataset_id: DatasetId::new(),
            format: "alpaca".into(),
            num_examples: 273,
            size_bytes: std::fs::metadata(&sample).unwrap().len(),
            sha256: "11".repeat(32),
            stored_path: data.to_string_lossy().into_owned(),
            source: "upload".into(),
        },
    )
    .await
    .unwrap();
    p
}

fn config() -> serde_json::Value {
    serde_json::json!({
        "base_model": fixture("tiny-llama").to_string_lossy(),
        "device": "cpu",
        "max_steps": 24,
        "per_device_train_batch_size": 2,
        "gradient_accumulation_steps": 2,
        "max_seq_length": 64,
        "learning_rate": 1e-3,
        "checkpoint_every_steps": 4,
        "keep_checkpoints": 3,
        "logging_steps": 1,
        "seed": 7,
    })
}

fn job(svc: &Service, id: JobId) -> JobView {
    svc.read(|s| s.jobs.get(&id).cloned()).expect("job exists")
}

async fn finished(svc: &Service, id: JobId) -> JobView {
    let t0 = Instant::now();
    while t0.elapsed() < Duration::from_secs(600) {
        let j = job(svc, id);
        if j.status.is_terminal() {
            return j;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("job {id} never finished");
}

fn adapter(data_dir: &Path, id: JobId) -> Vec<u8> {
    let p = data_dir
        .join("jobs")
        .join(id.to_string())
        .join("adapter/adapter_model.safetensors");
    std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

/// The pid of the worker process training `id` (a child of this test process).
fn worker_pid(id: JobId) -> Option<i32> {
    let needle = id.to_string();
    for entry in std::fs::read_dir("/proc").ok()?.flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        let Ok(cmd) = std::fs::read(entry.path().join("cmdline")) else {
            continue;
        };
        let cmd = String::from_utf8_lossy(&cmd);
        if cmd.contains("worker\0train") && cmd.contains(&needle) {
            return Some(pid);
        }
    }
    None
}

/// Whether `pid` still exists (a reaped process has no /proc entry).
fn alive(pid: i32) -> bool {
    Path::new(&format!("/proc/{pid}")).exists()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopped_worker_is_killed_as_stalled_and_the_job_resumes_to_the_same_adapter() {
    let dir = tempfile::tempdir().unwrap();
    let svc = start(dir.path(), 3).await;
    let p = project(&svc, &fixture("sft-sample.jsonl")).await;

    let plain = svc.submit_job(p, JobKind::Train, config()).await.unwrap();
    let done = finished(&svc, plain.id).await;
    assert_eq!(done.status, JobStatus::Success, "{:?}", done.error);
    let expected = adapter(dir.path(), plain.id);

    let hung = svc.submit_job(p, JobKind::Train, config()).await.unwrap();
    let mut victim = None;
    let t0 = Instant::now();
    while victim.is_none() && t0.elapsed() < Duration::from_secs(300) {
        let j = job(&svc, hung.id);
        assert!(!j.status.is_terminal(), "finished before it was stopped");
        if !j.checkpoints.is_empty() {
            victim = worker_pid(hung.id);
        }
        tokio::time::sleep(Duration::from_micros(200)).await;
    }
    let pid = victim.expect("the worker was seen after its first checkpoint");
    // SAFETY: stopping a child process of this test.
    unsafe { libc::kill(pid, libc::SIGSTOP) };
    let stopped_at = Instant::now();

    let done = finished(&svc, hung.id).await;
    assert_eq!(done.status, JobStatus::Success, "{:?}", done.error);
    assert!(!alive(pid), "the stopped worker was killed and reaped");
    let stall = done
        .attempt_failures
        .iter()
        .find(|f| f.error_code == ErrorCode::TrainingStalled)
        .expect("the stalled attempt is recorded as TRAINING_STALLED");
    assert_eq!(stall.phase, Some(ErrorPhase::Training));
    assert_eq!(stall.context.0["stage"], "training");
    let silent = stall.context.0["silent_secs"].as_u64().unwrap();
    let bound = stall.context.0["bound_secs"].as_u64().unwrap();
    assert!(
        bound >= 3 && silent >= bound,
        "silent {silent} s, bound {bound} s"
    );
    assert!(
        stopped_at.elapsed() >= Duration::from_secs(3),
        "never killed before the floor"
    );
    let analysis = stall.analysis.as_ref().expect("analysed");
    assert_eq!(analysis.error_type.as_str(), "stalled");
    assert!(!analysis.suggestions.is_empty());
    assert!(done.attempts >= 2, "a new attempt ran: {}", done.attempts);
    let resumed = done.resumed_from_step.expect("resumed from a checkpoint");
    assert!(resumed >= 4 && resumed % 4 == 0, "{resumed}");
    assert_eq!(adapter(dir.path(), hung.id), expected, "bit-for-bit");
    svc.shutdown("test").await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_blocked_on_storage_that_never_answers_ends_stalled_after_its_retries() {
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("data-on-a-hung-mount.jsonl");
    let c_path = std::ffi::CString::new(fifo.to_string_lossy().as_bytes()).unwrap();
    // SAFETY: a valid NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(c_path.as_ptr(), 0o600) }, 0, "mkfifo");
    let svc = start(dir.path(), 1).await;
    let p = project(&svc, &fifo).await;
    let j = svc.submit_job(p, JobKind::Train, config()).await.unwrap();
    let done = finished(&svc, j.id).await;
    assert_eq!(done.status, JobStatus::Failed);
    assert_eq!(done.attempts, 2, "one retry, then the budget is spent");
    let err = done.error.expect("the failure");
    assert_eq!(err.error_code, ErrorCode::TrainingStalled, "{}", err.detail);
    assert_eq!(err.phase, Some(ErrorPhase::Preflight));
    assert_eq!(err.context.0["stage"], "pre-flight");
    assert!(err.detail.contains("no progress"), "{}", err.detail);
    let analysis = err.analysis.expect("analysed");
    assert_eq!(analysis.error_type.as_str(), "stalled");
    assert!(
        analysis
            .suggestions
            .iter()
            .any(|s| s.action.contains("storage")),
        "{:?}",
        analysis.suggestions
    );
    assert_eq!(worker_pid(j.id), None, "no worker is left behind");
    svc.shutdown("test").await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancelled_worker_that_does_not_stop_is_killed_after_the_grace() {
    let dir = tempfile::tempdir().unwrap();
    let svc = start(dir.path(), 0).await;
    let p = project(&svc, &fixture("sft-sample.jsonl")).await;
    let mut cfg = config();
    cfg["max_steps"] = serde_json::json!(100_000);
    let j = svc.submit_job(p, JobKind::Train, cfg).await.unwrap();
    let mut victim = None;
    let t0 = Instant::now();
    while victim.is_none() && t0.elapsed() < Duration::from_secs(300) {
        if job(&svc, j.id).progress.is_some() {
            victim = worker_pid(j.id);
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let pid = victim.expect("the worker was seen stepping");
    // SAFETY: stopping a child process of this test; it cannot read its stop command.
    unsafe { libc::kill(pid, libc::SIGSTOP) };
    let view = svc.cancel_job(j.id).await.unwrap();
    assert_eq!(view.status, JobStatus::Cancelling, "the worker still lives");
    let t0 = Instant::now();
    while alive(pid) && t0.elapsed() < Duration::from_secs(30) {
        assert!(
            !(job(&svc, j.id).status == JobStatus::Cancelled && alive(pid)),
            "cancelled only once the worker is gone"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(!alive(pid), "killed after the 1 s grace");
    assert_eq!(finished(&svc, j.id).await.status, JobStatus::Cancelled);
    // The device is free again: a new training starts and finishes.
    let next = svc.submit_job(p, JobKind::Train, config()).await.unwrap();
    assert_eq!(finished(&svc, next.id).await.status, JobStatus::Success);
    svc.shutdown("test").await.unwrap();
}
