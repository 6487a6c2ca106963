//! The trainer actor's executor for `train` jobs. The scheduler gives it the device (one
//! training at a time); it runs the worker process, spawned from the service's own binary, so
//! a segfault, an OOM or a poisoned CUDA context takes only the worker down. Per attempt it picks the resume point
//! (hash-verified checkpoints, falling back to older ones), runs the worker, records its lines
//! as events, restarts a dead worker from its last good checkpoint within a restart budget,
//! applies opt-in remediation (OOM, divergence), and maps the end to a result or a failure.

pub mod checkpoints;
pub mod events;
pub mod process;
pub mod remediation;
pub mod slurm;
pub mod watchdog;

use std::path::{Path, PathBuf};

use serde_json::Value;
use tunewright_events::event::{Event, JobNote, TrainingRemediated, TrainingResumed};
use tunewright_schemas::config::with_changes;
use tunewright_schemas::worker::TrainWorkerSpec;
use tunewright_schemas::{ctx, ErrorCode, ErrorPhase, Failure, Json};

use crate::admission::hub_cache::HubCache;
use crate::executor::{JobContext, JobExecutor, StopRequest};
use crate::project::parts::write_part;
use checkpoints::ResumePoint;
use events::JobEventWriter;
pub use process::{Placement, WorkerEnd, WorkerLauncher};

/// Default worker restarts per attempt after a worker death.
pub const DEFAULT_MAX_RESTARTS: u64 = 3;
/// Default remediation tries per attempt.
pub const MAX_REMEDIATIONS: usize = 8;

/// Runs `train` jobs in worker processes.
#[derive(Clone)]
pub struct TrainerExecutor {
    launcher: WorkerLauncher,
    /// Worker restarts per attempt after a worker death.
    max_restarts: u64,
}

impl TrainerExecutor {
    pub fn new(launcher: WorkerLauncher) -> Self {
        TrainerExecutor {
            launcher,
            max_restarts: DEFAULT_MAX_RESTARTS,
        }
    }

    /// Change the restart budget (worker deaths survived per attempt).
    pub fn with_max_restarts(mut self, n: u64) -> Self {
        self.max_restarts = n;
        self
    }
}

fn cfg_u64(config: &Value, key: &str, default: u64) -> u64 {
    config.get(key).and_then(Value::as_u64).unwrap_or(default)
}

/// The dataset file a job trains on: the project's dataset.
fn dataset_path(ctx: &JobContext) -> Result<PathBuf, Failure> {
    match &ctx.project.dataset {
        Some(d) => Ok(ctx.layout.resolve(&d.stored_path)),
        None => Err(Failure::new(
            ErrorCode::TrainingNoDataset,
            ctx! {"project_id" => ctx.project.id.to_string()},
        )),
    }
}

/// What the worker trains and evaluates on: the whole dataset, or, for a training with a
/// `split`, that split's `train` part and its `val` part written beside the job (the same
/// examples at every attempt: the split is seeded).
fn training_data(
    ctx: &JobContext,
    config: &Value,
    dataset: &Path,
) -> Result<(PathBuf, Option<PathBuf>), Failure> {
    let Some(name) = config.get("split").and_then(Value::as_str) else {
        return Ok((dataset.to_path_buf(), None));
    };
    let Some(split) = ctx.project.splits.get(name) else {
        return Err(Failure::new(
            ErrorCode::SplitNotFound,
            ctx! {"split" => name, "project_id" => ctx.project.id.to_string()},
        ));
    };
    let write = |part: &str| -> Result<(PathBuf, usize), Failure> {
        let out = ctx.layout.split_part(ctx.job.id, part);
        let n = write_part(dataset, Some(split), part, &out).map_err(internal)?;
        Ok((out, n))
    };
    let (train, _) = write("train")?;
    let (val, n_val) = write("val")?;
    Ok((train, (n_val > 0).then_some(val)))
}

fn write_spec(path: &Path, spec: &TrainWorkerSpec) -> Result<(), Failure> {
    let bytes = serde_json::to_vec_pretty(spec).map_err(|e| internal(format!("spec: {e}")))?;
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)
            .map_err(|e| internal(format!("{}: {e}", parent.display())))?;
    }
    std::fs::write(path, bytes).map_err(|e| internal(format!("{}: {e}", path.display())))
}

/// `config` with `base_model` as the directory it names (a model id pinned at admission is
/// found again in the local cache), so the worker only ever reads a directory.
pub fn with_model_dir(config: &Value) -> Result<Value, Failure> {
    let reference = config
        .get("base_model")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let revision = config.get("revision").and_then(Value::as_str);
    let resolved = crate::admission::model::resolve(reference, revision, &HubCache::of_process())
        .map_err(|f| f.in_phase(ErrorPhase::ModelLoad))?;
    Ok(with_changes(
        config,
        &serde_json::json!({"base_model": resolved.dir.to_string_lossy()}),
    ))
}

/// The earlier run's checkpoint a linked training starts from, if it has one.
fn inherited_checkpoint(ctx: &JobContext) -> Option<tunewright_events::projection::CheckpointView> {
    let (from, step) = (ctx.job.resumed_from_job?, ctx.job.resume_from_step?);
    ctx.events.ledger().read(|s| {
        s.jobs
            .get(&from)?
            .checkpoints
            .iter()
            .find(|c| c.step == step && c.rejected.is_none())
            .cloned()
    })
}

fn internal(reason: String) -> Failure {
    Failure::new(ErrorCode::InternalError, ctx! {"reason" => reason.clone()}).caused_by(reason)
}

#[async_trait::async_trait]
impl JobExecutor for TrainerExecutor {
    async fn execute(&self, ctx: JobContext) -> Result<Value, Failure> {
        let job_id = ctx.job.id;
        let (dataset, val) =
            training_data(&ctx, &ctx.job.effective_config.0, &dataset_path(&ctx)?)?;
        // Remedies applied earlier (in an earlier attempt, or before the service restarted)
        // stay applied: the checkpoints written since were made with them.
        let mut config = ctx.job.effective_config.0.clone();
        let earlier_remedies = ctx.job.remedies as usize;
        let max_restarts = self.max_restarts;
        let mut writer = JobEventWriter::new(
            job_id,
            ctx.events.clone(),
            ctx.layout.clone(),
            ctx.job.checkpoints.clone(),
        );
        // A training that continues an earlier run starts from that run's checkpoint until it
        // has written its own.
        let inherited = inherited_checkpoint(&ctx);
        let mut restarts = 0u64;
        let mut remedies = earlier_remedies;
        let mut run = 0u32;
        loop {
            run += 1;
            // Where this run starts: the newest checkpoint that passes its hash check.
            let mut rejections = Vec::new();
            let choice = match (&inherited, writer.checkpoints.is_empty()) {
                (Some(c), true) => checkpoints::inherited(&ctx.job, &ctx.layout, c),
                _ => checkpoints::choose(job_id, &ctx.layout, &writer.checkpoints, &mut rejections),
            };
            for e in &rejections {
                if let Event::CheckpointRejected(r) = e {
                    if let Some(c) = writer.checkpoints.iter_mut().find(|c| c.step == r.step) {
                        c.rejected = Some(r.reason.clone());
                    }
                }
            }
            if !rejections.is_empty() {
                ctx.events.record(rejections).await?;
            }
            let resume = choice?;
            let resume_from = match &resume {
                ResumePoint::Fresh => None,
                ResumePoint::Checkpoint { step, dir } => {
                    ctx.events
                        .record(vec![Event::TrainingResumed(TrainingResumed {
                            job_id,
                            attempt: ctx.attempt,
                            resumed_from_step: *step,
                        })])
                        .await?;
                    Some(dir.to_string_lossy().into_owned())
                }
            };
            let worker_config = with_model_dir(&config)?;
            let load = watchdog::StartupLoad {
                data_bytes: watchdog::file_bytes(&dataset),
                model_bytes: worker_config
                    .get("base_model")
                    .and_then(Value::as_str)
                    .map(|d| watchdog::model_bytes(Path::new(d)))
                    .unwrap_or(0),
            };
            let spec = TrainWorkerSpec {
                job_id: job_id.to_string(),
                config: worker_config,
                dataset_path: dataset.to_string_lossy().into_owned(),
                val_path: val.as_ref().map(|v| v.to_string_lossy().into_owned()),
                checkpoint_root: ctx
                    .layout
                    .checkpoints_dir(job_id)
                    .to_string_lossy()
                    .into_owned(),
                output_dir: ctx
                    .layout
                    .adapter_dir(job_id)
                    .to_string_lossy()
                    .into_owned(),
                resume_from,
                checkpoint_every_steps: cfg_u64(&config, "checkpoint_every_steps", 50),
                keep_checkpoints: cfg_u64(&config, "keep_checkpoints", 3) as usize,
            };
            let spec_path = ctx
                .layout
                .worker_spec(job_id, &format!("worker-{}-{run}", ctx.attempt));
            write_spec(&spec_path, &spec)?;
            let end = self
                .launcher
                .run("train", &spec_path, load, ctx.stop.clone(), &mut writer)
                .await?;
            match end {
                WorkerEnd::Result(v) => return Ok(v),
                WorkerEnd::Stopped {
                    step,
                    checkpointed,
                    request,
                } => {
                    let why = match request {
                        StopRequest::Cancel => "cancelled",
                        StopRequest::Shutdown => "the service is stopping",
                    };
                    if request == StopRequest::Shutdown {
                        // The attempt stays `running` in the log (it resumes at the next
                        // start); this says where it stopped and whether nothing was lost.
                        ctx.events
                            .record(vec![Event::JobNote(JobNote {
                                job_id,
                                topic: "stopped_for_shutdown".into(),
                                data: Json(serde_json::json!({
                                    "step": step, "checkpointed": checkpointed,
                                    "last_step": writer.last_step,
                                })),
                            })])
                            .await?;
                    }
                    return Err(Failure::new(
                        ErrorCode::TrainingInterrupted,
                        ctx! {"reason" => format!("{why}; stopped at step {step} (checkpointed: {checkpointed})")},
                    ));
                }
                // A hung worker was killed: this attempt fails as stalled, and the retry policy
                // resumes the job from its last checkpoint (docs/jobs.md).
                WorkerEnd::Stalled { stall, log_tail } => return Err(stall.failure(log_tail)),
                WorkerEnd::SpawnFailed(reason) => {
                    return Err(Failure::new(
                        ErrorCode::TrainingInterrupted,
                        ctx! {"reason" => format!("the worker could not be started: {reason}")},
                    ))
                }
                WorkerEnd::Died { status, log_tail } => {
                    if ctx.stop.requested().is_some() || restarts >= max_restarts {
                        let mut f = Failure::new(
                            ErrorCode::TrainingInterrupted,
                            ctx! {"reason" => format!("the worker {status}"), "restarts" => restarts},
                        );
                        f.log_tail = log_tail;
                        return Err(f);
                    }
                    restarts += 1;
                    ctx.events
                        .record(vec![Event::JobNote(JobNote {
                            job_id,
                            topic: "worker_restarted".into(),
                            data: Json(serde_json::json!({
                                "status": status, "restart": restarts, "max_restarts": max_restarts,
                                "last_step": writer.last_step, "log_tail": log_tail,
                            })),
                        })])
                        .await?;
                }
                WorkerEnd::Failed(f) => {
                    let code = f.error_code;
                    let remedy =
                        if remediation::enabled(&config, code) && remedies < MAX_REMEDIATIONS {
                            remediation::next(&config, code)
                        } else {
                            None
                        };
                    let Some(remedy) = remedy else { return Err(f) };
                    remedies += 1;
                    config = with_changes(&config, &remedy.changes);
                    ctx.events
                        .record(vec![Event::TrainingRemediated(TrainingRemediated {
                            job_id,
                            cause: code,
                            action: remedy.action,
                            config_changes: Json(remedy.changes),
                        })])
                        .await?;
                }
            }
        }
    }
}
