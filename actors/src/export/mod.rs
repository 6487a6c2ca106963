//! The executor of `export` jobs: finds the training run to export (the config's `train_job`,
//! which admission fills in with the project's newest successful training when none is
//! named), runs `tunewright-worker export` in a worker process (the export touches tensors, so
//! it runs where torch lives), records the exported files as artifacts. I/O failures are the retryable `EXPORT_WRITE_FAILED`.

use std::path::Path;

use serde_json::Value;
use tunewright_events::event::{ArtifactRecorded, Event};
use tunewright_events::projection::JobView;
use tunewright_schemas::config::ExportConfig;
use tunewright_schemas::worker::{ExportWorkerSpec, WorkerLine};
use tunewright_schemas::{ctx, ErrorCode, Failure, JobId, JobKind, JobStatus};

use crate::executor::{JobContext, JobExecutor};
use crate::trainer::process::{LineHandler, WorkerEnd, WorkerLauncher};
use crate::trainer::with_model_dir;

/// Runs `export` jobs in worker processes.
#[derive(Clone)]
pub struct ExportExecutor {
    launcher: WorkerLauncher,
}

impl ExportExecutor {
    pub fn new(launcher: WorkerLauncher) -> Self {
        ExportExecutor { launcher }
    }
}

struct Ignore;

#[async_trait::async_trait]
impl LineHandler for Ignore {
    async fn line(&mut self, _line: &WorkerLine) -> Result<(), Failure> {
        Ok(())
    }
}

fn write_failed(reason: String) -> Failure {
    Failure::new(
        ErrorCode::ExportWriteFailed,
        ctx! {"reason" => reason.clone()},
    )
    .caused_by(reason)
}

/// The training run to export: the one admission recorded in the config (`train_job`), still a
/// successful training of this project.
fn source_run(ctx: &JobContext, config: &ExportConfig) -> Result<JobView, Failure> {
    let project_id = ctx.project.id;
    let found = config.train_job.and_then(|id| {
        ctx.events.ledger().read(|s| {
            s.jobs
                .get(&id)
                .filter(|j| {
                    j.kind == JobKind::Train
                        && j.project_id == project_id
                        && j.status == JobStatus::Success
                })
                .cloned()
        })
    });
    found.ok_or_else(|| {
        let reason = match config.train_job {
            Some(w) => format!("training job {w} of this project did not succeed"),
            None => "the export names no training job".into(),
        };
        Failure::new(ErrorCode::ExportNoRun, ctx! {"reason" => reason})
    })
}

#[async_trait::async_trait]
impl JobExecutor for ExportExecutor {
    async fn execute(&self, ctx: JobContext) -> Result<Value, Failure> {
        let config = ExportConfig::from_json(&ctx.job.config.0)?;
        let run = source_run(&ctx, &config)?;
        let format = config.format.name().to_string();
        let base_model = with_model_dir(&run.effective_config.0)?;
        let base_model = base_model
            .get("base_model")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let job_dir = ctx.job_dir();
        let out_dir = ctx.layout.export_dir(ctx.job.id, &format);
        let spec = ExportWorkerSpec {
            job_id: ctx.job.id.to_string(),
            adapter_dir: ctx
                .layout
                .adapter_dir(run.id)
                .to_string_lossy()
                .into_owned(),
            base_model_dir: base_model.to_string(),
            format: format.clone(),
            out_dir: out_dir.to_string_lossy().into_owned(),
            quantization: config.format.quantization().map(|q| q.name().to_string()),
        };
        std::fs::create_dir_all(&job_dir)
            .map_err(|e| write_failed(format!("{}: {e}", job_dir.display())))?;
        let spec_path = ctx
            .layout
            .worker_spec(ctx.job.id, &format!("export-{}", ctx.attempt));
        let bytes = serde_json::to_vec_pretty(&spec).map_err(|e| write_failed(e.to_string()))?;
        std::fs::write(&spec_path, bytes)
            .map_err(|e| write_failed(format!("{}: {e}", spec_path.display())))?;
        match self
            .launcher
            .run(
                "export",
                &spec_path,
                startup_load(Path::new(base_model)),
                ctx.stop.clone(),
                &mut Ignore,
            )
            .await?
        {
            WorkerEnd::Result(v) => {
                record_artifacts(&ctx, ctx.job.id, &out_dir, &v).await?;
                Ok(
                    serde_json::json!({"train_job_id": run.id.to_string(), "format": format, "manifest": v}),
                )
            }
            WorkerEnd::Failed(f) => Err(f),
            WorkerEnd::Stopped { step, .. } => {
                Err(write_failed(format!("stopped on request at {step}")))
            }
            WorkerEnd::Died { status, log_tail } => {
                let mut f = write_failed(format!("the export worker {status}"));
                f.log_tail = log_tail;
                Err(f)
            }
            WorkerEnd::Stalled { stall, log_tail } => Err(stall.failure(log_tail)),
            WorkerEnd::SpawnFailed(r) => Err(write_failed(format!(
                "the export worker could not be started: {r}"
            ))),
        }
    }
}

/// One `ArtifactRecorded` per file of the manifest (`files: [{name|path, sha256, size_bytes}]`).
async fn record_artifacts(
    ctx: &JobContext,
    job_id: JobId,
    out_dir: &Path,
    manifest: &Value,
) -> Result<(), Failure> {
    let rel = ctx.layout.relative(out_dir);
    let mut events = Vec::new();
    for f in manifest
        .get("files")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let name = f
            .get("name")
            .or_else(|| f.get("path"))
            .and_then(Value::as_str)
            .unwrap_or_default();
        let sha = f.get("sha256").and_then(Value::as_str).unwrap_or_default();
        let size = f
            .get("bytes")
            .or_else(|| f.get("size_bytes"))
            .and_then(Value::as_u64)
            .unwrap_or(0);
        events.push(Event::ArtifactRecorded(ArtifactRecorded {
            job_id,
            name: name.to_string(),
            path: format!("{rel}/{name}"),
            sha256: sha.to_string(),
            size_bytes: size,
        }));
    }
    if !events.is_empty() {
        ctx.events.record(events).await?;
    }
    Ok(())
}

/// An export reads the base weights before anything else (it sends no pre-flight note), and its
/// whole run is bounded by that allowance: it reports no steps.
fn startup_load(base_model: &Path) -> crate::trainer::watchdog::StartupLoad {
    let bytes = crate::trainer::watchdog::model_bytes(base_model);
    crate::trainer::watchdog::StartupLoad {
        data_bytes: bytes,
        model_bytes: bytes,
    }
}
