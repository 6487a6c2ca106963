//! Shared test support: a real service on a temp data dir with scripted executors.
//!
//! A `ScriptedExecutor` is a real `JobExecutor` whose attempts follow the script registered
//! for the job by `submit` (`["fail:OLLAMA_API_TIMEOUT", "hang", "ok"]`): attempt n does step n
//! (the last step repeats). `hang` waits for the stop signal and reports it; `deaf` ignores a
//! cancel and stops only for a shutdown. Jobs go through
//! real admission with valid configs (a training names the tiny Llama fixture).
#![allow(dead_code)]

use std::time::Duration;

use tunewright_actors::project::{DatasetRecord, FileRecord};
use tunewright_actors::{Executors, JobContext, JobExecutor, Service, ServiceConfig, StopRequest};
use tunewright_events::projection::JobView;
use tunewright_events::{Event, State};
use tunewright_schemas::*;

/// The scripts of the jobs submitted in this test binary, by job id.
static SCRIPTS: std::sync::LazyLock<
    std::sync::Mutex<std::collections::HashMap<JobId, Vec<String>>>,
> = std::sync::LazyLock::new(Default::default);

/// The script of `job`: waits briefly for `submit` to register it (the job may start before
/// its submitter has), `["ok"]` when none comes.
async fn script_of(job: JobId) -> Vec<String> {
    for _ in 0..500 {
        if let Some(s) = SCRIPTS.lock().unwrap().get(&job) {
            return s.clone();
        }
        tokio::task::yield_now().await;
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    vec!["ok".to_string()]
}

/// The tiny Llama fixture (a real model directory: admission checks it).
pub fn tiny_llama() -> String {
    concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/fixtures/tiny-llama").to_string()
}

/// A valid config of `kind` with `extra`'s fields.
pub fn valid_config(kind: JobKind, extra: serde_json::Value) -> serde_json::Value {
    let mut c = match kind {
        JobKind::Train => serde_json::json!({"base_model": tiny_llama()}),
        _ => serde_json::json!({}),
    };
    if let (Some(o), Some(e)) = (c.as_object_mut(), extra.as_object()) {
        o.extend(e.clone());
    }
    c
}

/// Submit a job of `kind` whose attempts follow `steps`.
pub async fn submit(
    svc: &Service,
    p: ProjectId,
    kind: JobKind,
    steps: &[&str],
) -> Result<JobView, Failure> {
    submit_with(svc, p, kind, serde_json::json!({}), steps).await
}

/// The same with extra config fields.
pub async fn submit_with(
    svc: &Service,
    p: ProjectId,
    kind: JobKind,
    extra: serde_json::Value,
    steps: &[&str],
) -> Result<JobView, Failure> {
    let job = svc.submit_job(p, kind, valid_config(kind, extra)).await?;
    SCRIPTS
        .lock()
        .unwrap()
        .insert(job.id, steps.iter().map(|s| s.to_string()).collect());
    Ok(job)
}

pub struct ScriptedExecutor;

#[async_trait::async_trait]
impl JobExecutor for ScriptedExecutor {
    async fn execute(&self, mut ctx: JobContext) -> Result<serde_json::Value, Failure> {
        let script = script_of(ctx.job.id).await;
        let step = script
            .get(ctx.attempt as usize - 1)
            .or(script.last())
            .cloned()
            .unwrap_or_else(|| "ok".into());
        if let Some(code) = step.strip_prefix("fail:") {
            let code = ErrorCode::from_name(code).expect("test script names a catalog code");
            return Err(Failure::new(code, ctx! {"reason" => "scripted failure"})
                .caused_by(format!("scripted {code} on attempt {}", ctx.attempt)));
        }
        if step == "hang" {
            return match ctx.stop.wait().await {
                StopRequest::Cancel => Err(Failure::new(
                    ErrorCode::TrainingInterrupted,
                    ctx! {"reason" => "cancelled"},
                )),
                StopRequest::Shutdown => Err(Failure::new(
                    ErrorCode::TrainingInterrupted,
                    ctx! {"reason" => "shutdown"},
                )),
            };
        }
        if step == "deaf" {
            // A worker that does not hear a cancel: it stops only for a shutdown.
            while ctx.stop.wait().await != StopRequest::Shutdown {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            return Err(Failure::new(
                ErrorCode::TrainingInterrupted,
                ctx! {"reason" => "shutdown"},
            ));
        }
        if let Some(ms) = step.strip_prefix("sleep:") {
            tokio::time::sleep(Duration::from_millis(ms.parse().unwrap_or(10))).await;
        }
        Ok(serde_json::json!({"attempt": ctx.attempt, "interruptions": ctx.job.interruptions}))
    }
}

pub fn all_kinds() -> Executors {
    let mut e = Executors::new();
    for k in JobKind::ALL {
        e.insert(*k, std::sync::Arc::new(ScriptedExecutor));
    }
    e
}

pub fn config(dir: &std::path::Path) -> ServiceConfig {
    let mut c = ServiceConfig::new(dir);
    c.scheduler.queue_timeout = Duration::from_secs(10 * 24 * 3600);
    c.scheduler.jitter_seed = Some(42);
    c.restart.base_backoff = Duration::from_millis(100);
    c
}

pub async fn start(dir: &std::path::Path, executors: Executors) -> Service {
    Service::start(config(dir), executors)
        .await
        .expect("service starts")
}

/// A project with one document and a dataset (status ready_to_train).
pub async fn ready_project(svc: &Service, name: &str) -> ProjectId {
    let p = svc.create_project(name).await.unwrap().id;
    svc.record_file(
        p,
        FileRecord {
            file_id: FileId::new(),
            name: "doc.md".into(),
            media_type: "text/markdown".into(),
            size_bytes: 10,
            sha256: "00".repeat(32),
            stored_path: "projects/x/files/y".into(),
        },
    )
    .await
    .unwrap();
    svc.import_dataset(p, dataset()).await.unwrap();
    p
}

pub fn dataset() -> DatasetRecord {
    DatasetRecord {
        dataset_id: DatasetId::new(),
        format: "alpaca".into(),
        num_examples: 100,
        size_bytes: 1000,
        sha256: "11".repeat(32),
        stored_path: "projects/x/datasets/d.jsonl".into(),
        source: "upload".into(),
    }
}

pub fn job(svc: &Service, id: JobId) -> JobView {
    svc.read(|s| s.jobs.get(&id).cloned()).expect("job exists")
}

/// Wait (in the runtime's time, paused or not) until the job satisfies `pred`.
pub async fn wait_job(
    svc: &Service,
    id: JobId,
    what: &str,
    pred: impl Fn(&JobView) -> bool,
) -> JobView {
    for _ in 0..200_000 {
        let j = job(svc, id);
        if pred(&j) {
            return j;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    panic!("job {id} never became {what}: {:?}", job(svc, id).status);
}

pub async fn wait_status(svc: &Service, id: JobId, status: JobStatus) -> JobView {
    wait_job(svc, id, status.as_str(), |j| j.status == status).await
}

/// The events of one job, in order.
pub fn job_events(svc: &Service, id: JobId) -> Vec<Event> {
    svc.log()
        .read_stream(tunewright_events::StreamId::Job(id), 0, usize::MAX)
        .unwrap()
        .into_iter()
        .map(|e| e.event)
        .collect()
}

/// Replaying the log from scratch gives exactly the live state.
pub fn assert_replay_matches(svc: &Service) {
    let all = svc.log().read_after(0, usize::MAX).unwrap();
    let replayed = State::from_events(&all);
    let live = svc.read(|s| s.clone());
    assert_eq!(replayed, live, "replayed state differs from the live state");
    replayed.check_invariants().expect("invariants hold");
}
