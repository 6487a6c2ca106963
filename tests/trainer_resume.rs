//! Real training through the service (tiny Llama fixture, CPU): a worker SIGKILLed mid-run is
//! restarted from its last recorded checkpoint and the final adapter equals an uninterrupted
//! run's bit for bit; a huge learning rate ends `TRAINING_DIVERGED` at the step it happened.

use std::path::{Path, PathBuf};
use std::time::Duration;

use tunewright_actors::project::DatasetRecord;
use tunewright_actors::trainer::{TrainerExecutor, WorkerLauncher};
use tunewright_actors::{Executors, Service, ServiceConfig};
use tunewright_events::projection::JobView;
use tunewright_events::{Event, StreamId};
use tunewright_schemas::{DatasetId, ErrorCode, JobId, JobKind, JobStatus, ProjectId};

fn fixture(p: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(p)
}

async fn start(dir: &Path) -> Service {
    let mut c = ServiceConfig::new(dir);
    c.scheduler.queue_timeout = Duration::from_secs(3600);
    let launcher = WorkerLauncher::new(PathBuf::from(env!("CARGO_BIN_EXE_tunewright-worker")));
    let exec = Executors::new().with(JobKind::Train, TrainerExecutor::new(launcher));
    Service::start(c, exec).await.expect("service starts")
}

async fn project(svc: &Service) -> ProjectId {
    let p = svc.create_project("t").await.unwrap().id;
    let data = fixture("sft-sample.jsonl");
    svc.import_dataset(
        p,
        DatasetRecord {
            dataset_id: DatasetId::new(),
            format: "alpaca".into(),
            num_examples: 273,
            size_bytes: std::fs::metadata(&data).unwrap().len(),
            sha256: "11".repeat(32),
            stored_path: data.to_string_lossy().into_owned(),
            source: "upload".into(),
        },
    )
    .await
    .unwrap();
    p
}

fn config(lr: f64) -> serde_json::Value {
    serde_json::json!({
        "base_model": fixture("tiny-llama").to_string_lossy(),
        "device": "cpu",
        "max_steps": 24,
        "per_device_train_batch_size": 2,
        "gradient_accumulation_steps": 2,
        "max_seq_length": 64,
        "learning_rate": lr,
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
    for _ in 0..60_000 {
        let j = job(svc, id);
        if matches!(
            j.status,
            JobStatus::Success | JobStatus::Failed | JobStatus::Cancelled
        ) {
            return j;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
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

fn events(svc: &Service, id: JobId) -> Vec<Event> {
    svc.log()
        .read_stream(StreamId::Job(id), 0, usize::MAX)
        .unwrap()
        .into_iter()
        .map(|e| e.event)
        .collect()
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sigkilled_worker_resumes_and_ends_with_the_uninterrupted_adapter_bit_for_bit() {
    let dir = tempfile::tempdir().unwrap();
    let svc = start(dir.path()).await;
    let p = project(&svc).await;

    let plain = svc
        .submit_job(p, JobKind::Train, config(1e-3))
        .await
        .unwrap();
    let done = finished(&svc, plain.id).await;
    assert_eq!(done.status, JobStatus::Success, "{:?}", done.error);
    assert_eq!(done.checkpoints.len(), 5, "steps 4..20");
    let expected = adapter(dir.path(), plain.id);

    let killed = svc
        .submit_job(p, JobKind::Train, config(1e-3))
        .await
        .unwrap();
    // Kill the worker once it has recorded a checkpoint, before it finishes.
    let mut victim = None;
    for _ in 0..600_000 {
        let j = job(&svc, killed.id);
        if j.status != JobStatus::Running && j.status != JobStatus::Queued {
            break;
        }
        if !j.checkpoints.is_empty() {
            victim = worker_pid(killed.id);
            if victim.is_some() {
                break;
            }
        }
        tokio::time::sleep(Duration::from_micros(200)).await;
    }
    let pid = victim.expect("the worker was seen running after its first checkpoint");
    // SAFETY: sending a signal to a child process of this test.
    unsafe { libc::kill(pid, libc::SIGKILL) };
    let done = finished(&svc, killed.id).await;
    assert_eq!(done.status, JobStatus::Success, "{:?}", done.error);
    let evs = events(&svc, killed.id);
    let note = evs
        .iter()
        .find_map(|e| match e {
            Event::JobNote(n) if n.topic == "worker_restarted" => Some(n.data.0.clone()),
            _ => None,
        })
        .expect("the worker's death is recorded");
    assert_eq!(note["status"], "killed by signal 9 (SIGKILL)");
    let resumed = done
        .resumed_from_step
        .expect("the run resumed from a checkpoint");
    assert!(resumed >= 4 && resumed % 4 == 0, "{resumed}");
    assert_eq!(
        adapter(dir.path(), killed.id),
        expected,
        "bit-for-bit equal adapters"
    );
    svc.shutdown("test").await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_huge_learning_rate_ends_training_diverged_at_its_step() {
    let dir = tempfile::tempdir().unwrap();
    let svc = start(dir.path()).await;
    let p = project(&svc).await;
    let j = svc
        .submit_job(p, JobKind::Train, config(1e30))
        .await
        .unwrap();
    let done = finished(&svc, j.id).await;
    assert_eq!(done.status, JobStatus::Failed);
    let err = done.error.unwrap();
    assert_eq!(
        err.error_code,
        ErrorCode::TrainingDiverged,
        "{}",
        err.detail
    );
    let step = err.context.0["step"]
        .as_u64()
        .expect("the step is in the context");
    assert!((1..=24).contains(&step), "{step}");
    assert!(
        err.detail.contains(&format!("step {step}")),
        "{}",
        err.detail
    );
    // Progress was recorded up to, not beyond, the diverged step.
    let last = done.progress.map(|p| p.step).unwrap_or(0);
    assert!(last < step, "progress {last} vs diverged at {step}");
    assert!(
        svc.create_project("after").await.is_ok(),
        "the service keeps serving"
    );
    svc.shutdown("test").await.unwrap();
}
