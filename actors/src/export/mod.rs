//! The executor of `export` jobs: finds the training run to export (the config's `train_job_id`,
//! else the project's newest successful `train` job), runs `tunewright worker export` in a
//! worker process (the export touches tensors, so it runs where torch lives), records the
//! exported files as artifacts. I/O failures are the retryable `EXPORT_WRITE_FAILED`.

use std::path::Path;

use serde_json::Value;
use tunewright_events::event::{ArtifactRecorded, Event};
use tunewright_events::projection::JobView;
use tunewright_schemas::worker::{ExportWorkerSpec, WorkerLine};
use tunewright_schemas::{ctx, ErrorCode, Failure, JobId, JobKind, JobStatus};

use crate::executor::{JobContext, JobExecutor};
use crate::trainer::process::{LineHandler, WorkerEnd, WorkerLauncher};

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

/// The training run to export.
fn source_run(ctx: &JobContext) -> Result<JobView, Failure> {
    let wanted = ctx
        .job
        .config
        .0
        .get("train_job_id")
        .and_then(Value::as_str)
        .map(str::to_string);
    let project_id = ctx.project.id;
    let found = ctx.events.ledger().read(|s| {
        let mut runs: Vec<JobView> = s
            .jobs
            .values()
            .filter(|j| {
                j.kind == JobKind::Train
                    && j.project_id == project_id
                    && j.status == JobStatus::Success
            })
            .filter(|j| wanted.as_ref().is_none_or(|w| j.id.to_string() == *w))
            .cloned()
            .collect();
        runs.sort_by_key(|j| j.updated_at_ms);
        runs.pop()
    });
    found.ok_or_else(|| {
        let reason = match wanted {
            Some(w) => format!("training job {w} of this project did not succeed"),
            None => "the project has no successful training job".into(),
        };
        Failure::new(ErrorCode::ExportNoRun, ctx! {"reason" => reason})
    })
}

#[async_trait::async_trait]
impl JobExecutor for ExportExecutor {
    async fn execute(&self, ctx: JobContext) -> Result<Value, Failure> {
        let run = source_run(&ctx)?;
        let config = &ctx.job.config.0;
        let format = config
            .get("format")
            .and_then(Value::as_str)
            .unwrap_or("peft")
            .to_string();

        let base_model = run
            .config
            .0
            .get("base_model")
            .or_else(|| run.config.0.get("model_path"))
            .and_then(Value::as_str)
            .unwrap_or("");
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
            .run("export", &spec_path, ctx.stop.clone(), &mut Ignore)
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
