//! `tunewright-worker train --spec FILE`: the worker side of a training run. It parses the
//! job's config (`VALIDATION_ERROR` on a bad one), runs `tunewright_trainer::train` with hooks
//! that stream progress, checkpoints and notes as protocol lines and answer the stop flag at
//! every step, and turns the loop's errors into catalog failures (OOM, divergence, no GPU,
//! model load). Its result carries the final adapter's file digests (`adapter_files`), which
//! an evaluation of the adapter checks.

use std::path::{Path, PathBuf};

use serde_json::{json, Value};
use tunewright_schemas::config::TrainConfig;
use tunewright_schemas::worker::{TrainWorkerSpec, WorkerFile, WorkerLine};
use tunewright_schemas::{ctx, ErrorCode, Failure};
use tunewright_trainer::export::files::sha256_file;
use tunewright_trainer::train::{
    train, CheckpointRecord, Control, ProgressReport, TrainHooks, TrainSpec,
};

use super::control::{Requested, StopFlag};
use super::{out, read_spec};

/// Hooks that write protocol lines and read the stop flag.
struct LineHooks {
    stop: StopFlag,
    last_checkpoint: Option<u64>,
    last_step: u64,
    /// When the last heartbeat went out (they are sent at most once a second).
    last_heartbeat: Option<std::time::Instant>,
}

/// The most heartbeats a worker sends per second.
const HEARTBEAT_EVERY: std::time::Duration = std::time::Duration::from_secs(1);

impl TrainHooks for LineHooks {
    fn on_progress(&mut self, p: &ProgressReport) {
        self.last_step = p.step;
        out::emit(&WorkerLine::Progress {
            phase: p.phase.to_string(),
            step: p.step,
            total_steps: p.total_steps,
            loss: Some(p.loss),
            learning_rate: Some(p.learning_rate),
            grad_norm: Some(p.grad_norm),
            tokens_per_sec: Some(p.tokens_per_sec),
            memory_bytes: None,
        });
        out::log(format!(
            "step {}/{} loss {:.6}",
            p.step, p.total_steps, p.loss
        ));
    }

    fn on_checkpoint(&mut self, c: &CheckpointRecord) {
        self.last_checkpoint = Some(c.step);
        out::emit(&WorkerLine::Checkpoint {
            step: c.step,
            dir: c.dir.to_string_lossy().into_owned(),
            files: c.files.clone(),
        });
    }

    fn on_note(&mut self, topic: &str, data: Value) {
        out::emit(&WorkerLine::Note {
            topic: topic.to_string(),
            data,
        });
    }

    fn alive(&mut self, step: u64) {
        let now = std::time::Instant::now();
        if self
            .last_heartbeat
            .is_some_and(|t| now.duration_since(t) < HEARTBEAT_EVERY)
        {
            return;
        }
        self.last_heartbeat = Some(now);
        out::emit(&WorkerLine::Heartbeat { step });
    }

    fn control(&mut self) -> Control {
        match self.stop.requested() {
            Requested::Continue => Control::Continue,
            Requested::Cancel => Control::Cancel,
            Requested::CheckpointAndStop => Control::CheckpointAndStop,
        }
    }

    fn prune_floor(&self) -> Option<u64> {
        self.stop.prune_floor()
    }
}

fn spec_for(spec: &TrainWorkerSpec) -> Result<TrainSpec, Failure> {
    let config = TrainConfig::from_json(&spec.config)?;
    Ok(TrainSpec {
        model_dir: PathBuf::from(&config.base_model),
        config,
        train_data: PathBuf::from(&spec.dataset_path),
        val_data: spec.val_path.as_ref().map(PathBuf::from),
        output_dir: PathBuf::from(&spec.output_dir),
        checkpoint_root: PathBuf::from(&spec.checkpoint_root),
        resume_from: spec.resume_from.as_ref().map(PathBuf::from),
    })
}

/// Run the training; `Err` is a failure line's content.
pub fn run(spec_path: &Path, stop: StopFlag) -> Result<Value, Failure> {
    let spec: TrainWorkerSpec = read_spec(spec_path, ErrorCode::InternalError)?;
    let train_spec = spec_for(&spec)?;
    if let Some(dir) = &train_spec.resume_from {
        if !dir.is_dir() {
            return Err(Failure::new(
                ErrorCode::CheckpointNotFound,
                ctx! {"job_id" => spec.job_id.clone(), "reason" => format!("{} is gone", dir.display())},
            ));
        }
    }
    out::log(format!(
        "training {} on {} (resume from {:?})",
        spec.job_id, spec.dataset_path, spec.resume_from
    ));
    let mut hooks = LineHooks {
        stop,
        last_checkpoint: None,
        last_step: 0,
        last_heartbeat: None,
    };
    let outcome = train(&train_spec, &mut hooks).map_err(|e| {
        out::log(format!("training failed: {e}"));
        e.to_failure()
            .with_field("job_id", json!(spec.job_id.clone()))
    })?;
    if let Some(why) = &outcome.stopped {
        out::log(format!("stopped at step {}: {why}", outcome.steps));
        let checkpointed = hooks.last_checkpoint == Some(outcome.steps);
        out::emit(&WorkerLine::Stopped {
            step: outcome.steps,
            checkpointed,
        });
        return Err(Failure::new(
            ErrorCode::TrainingInterrupted,
            ctx! {"reason" => format!("stopped on request at step {} ({why})", outcome.steps)},
        ));
    }
    let adapter_files = adapter_digests(Path::new(&spec.output_dir))?;
    serde_json::to_value(&outcome)
        .map(|v| json!({"training": v, "adapter_dir": spec.output_dir, "adapter_files": adapter_files}))
        .map_err(|e| Failure::new(ErrorCode::InternalError, ctx! {"reason" => e.to_string()}))
}

/// The size and sha256 of each file of the finished adapter, recorded in the job's result so
/// that what reads the adapter later (an evaluation) can tell it is unchanged.
fn adapter_digests(dir: &Path) -> Result<Vec<WorkerFile>, Failure> {
    let failed = |reason: String| {
        Failure::new(ErrorCode::InternalError, ctx! {"reason" => reason.clone()}).caused_by(reason)
    };
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .map_err(|e| failed(format!("{}: {e}", dir.display())))?
        .filter_map(|e| e.ok())
        .filter(|e| e.file_type().is_ok_and(|t| t.is_file()))
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
        .into_iter()
        .map(|name| {
            let path = dir.join(&name);
            let sha256 =
                sha256_file(&path).map_err(|e| failed(format!("{}: {e}", path.display())))?;
            let size_bytes = std::fs::metadata(&path)
                .map_err(|e| failed(format!("{}: {e}", path.display())))?
                .len();
            Ok(WorkerFile {
                name,
                sha256,
                size_bytes,
            })
        })
        .collect()
}
