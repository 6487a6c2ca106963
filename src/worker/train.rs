//! `tunewright worker train --spec FILE`: the worker side of a training run. Pre-flight (the
//! device: `device=cuda` without a GPU is `TRAINING_NO_GPU`; the dataset file; the resume
//! directory), then the training loop with the stop flag checked every step, streaming
//! progress, checkpoints and notes as protocol lines.

use std::path::Path;

use serde_json::{json, Value};
use tunewright_schemas::worker::{TrainWorkerSpec, WorkerLine};
use tunewright_schemas::{ctx, ErrorCode, Failure};

use super::control::{Requested, StopFlag};
use super::{out, read_spec};

/// Checks that need no model: the device, the dataset, the resume directory.
pub fn preflight(spec: &TrainWorkerSpec) -> Result<(), Failure> {
    let device = spec
        .config
        .get("device")
        .and_then(Value::as_str)
        .unwrap_or("auto");
    let chosen = tunewright_trainer::device::select(device).map_err(|e| e.to_failure())?;
    out::emit(&WorkerLine::Note {
        topic: "preflight".into(),
        data: json!({"device": format!("{chosen:?}"), "dataset": spec.dataset_path, "resume_from": spec.resume_from}),
    });
    if !Path::new(&spec.dataset_path).is_file() {
        return Err(Failure::new(
            ErrorCode::TrainingNoDataset,
            ctx! {"project_id" => spec.job_id.clone(), "reason" => format!("{} is missing", spec.dataset_path)},
        ));
    }
    if let Some(dir) = &spec.resume_from {
        if !Path::new(dir).is_dir() {
            return Err(Failure::new(
                ErrorCode::CheckpointNotFound,
                ctx! {"job_id" => spec.job_id.clone(), "reason" => format!("{dir} is gone")},
            ));
        }
    }
    Ok(())
}

/// Outcome of a run: a result, or a stop on request (already reported as a `stopped` line).
pub fn run(spec_path: &Path, stop: StopFlag) -> Result<Value, Failure> {
    let spec: TrainWorkerSpec = read_spec(spec_path, ErrorCode::InternalError)?;
    preflight(&spec)?;
    if stop.requested() != Requested::Continue {
        let step = 0;
        out::emit(&WorkerLine::Stopped {
            step,
            checkpointed: false,
        });
        return Err(Failure::new(
            ErrorCode::TrainingInterrupted,
            ctx! {"reason" => format!("stopped on request before step {step}")},
        ));
    }
    // The LoRA training loop (`tunewright_trainer::train`) is another helper's work and is not
    // in this build yet; say so with a catalog code rather than pretend.
    Err(Failure::new(
        ErrorCode::InternalError,
        ctx! {"reason" => "this build has no training loop (tunewright_trainer::train is missing)"},
    ))
}
