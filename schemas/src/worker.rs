//! The worker protocol: what the trainer actor (in the service) and the worker process
//! (`tunewright-worker train|export|evaluate --spec FILE`) exchange.
//!
//! The actor writes a spec (`WorkerSpec`) as JSON to a file and passes its path in argv (never a
//! shell). The worker answers on stdout with JSON lines (`WorkerLine`), one per line, and reads
//! commands (`WorkerCommand`) from stdin, one per line. Stdout carries nothing else; human logs
//! go to stderr and are also mirrored as `log` lines so the actor keeps a tail for failures.

use serde::{Deserialize, Serialize};

use crate::Failure;

/// A training run as the worker needs it: all paths absolute.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainWorkerSpec {
    pub job_id: String,
    /// The job's `config` as submitted (model, lora, hyper-parameters, device, ...).
    pub config: serde_json::Value,
    /// The SFT dataset (JSONL) to train on: the project's dataset, or its split's `train` part.
    pub dataset_path: String,
    /// The examples evaluated during and after training (the split's `val` part), if any.
    #[serde(default)]
    pub val_path: Option<String>,
    /// Where checkpoints go: `<job dir>/checkpoints/step-<n>/`.
    pub checkpoint_root: String,
    /// Where the final adapter goes.
    pub output_dir: String,
    /// The checkpoint directory to resume from (already hash-verified by the actor).
    pub resume_from: Option<String>,
    /// Write a checkpoint every this many steps (0: never).
    pub checkpoint_every_steps: u64,
    /// Keep this many newest checkpoints.
    pub keep_checkpoints: usize,
}

/// An export as the worker needs it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExportWorkerSpec {
    pub job_id: String,
    pub adapter_dir: String,
    pub base_model_dir: String,
    /// `peft`, `merged`, `gguf` or `ollama`.
    pub format: String,
    pub out_dir: String,
    /// The GGUF encoding of `gguf`/`ollama` (`f16`, `bf16`, `q8_0`); absent for the others.
    #[serde(default)]
    pub quantization: Option<String>,
}

/// An evaluation as the worker needs it: the base model with either a finished adapter or a
/// training checkpoint's LoRA tensors (checked against their recorded sha256 on load).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EvaluateWorkerSpec {
    pub job_id: String,
    /// The training's effective config, `base_model` a directory (the LoRA shape of a
    /// checkpoint, `max_seq_length`).
    pub train_config: serde_json::Value,
    /// A PEFT adapter directory (the finished training's), or
    #[serde(default)]
    pub adapter_dir: Option<String>,
    /// a checkpoint directory with its recorded files.
    #[serde(default)]
    pub checkpoint_dir: Option<String>,
    #[serde(default)]
    pub checkpoint_files: Vec<WorkerFile>,
    /// The examples to score (JSONL).
    pub examples_path: String,
    /// Where the generations go (JSONL).
    pub generations_path: String,
    pub max_examples: u64,
    pub prompts: u64,
    pub max_new_tokens: u64,
}

/// A command the actor sends on the worker's stdin (or appends to its control file).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WorkerCommand {
    /// The user cancelled: stop at the next step, keep nothing.
    Cancel,
    /// The service is stopping: write a checkpoint at the next step, then stop.
    CheckpointAndStop,
    /// The service recorded the checkpoint of `step`. A worker that reads a control file (one
    /// that is not the service's child) prunes no checkpoint from this step on, so the newest
    /// recorded one survives a service that dies while the worker keeps going.
    Recorded { step: u64 },
}

/// A file of a checkpoint with its content hash.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WorkerFile {
    pub name: String,
    pub sha256: String,
    pub size_bytes: u64,
}

/// A line the worker writes on stdout.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum WorkerLine {
    /// Alive (sent at least every few seconds, also while loading).
    Heartbeat { step: u64 },
    Progress {
        phase: String,
        step: u64,
        total_steps: u64,
        loss: Option<f64>,
        learning_rate: Option<f64>,
        grad_norm: Option<f64>,
        tokens_per_sec: Option<f64>,
        memory_bytes: Option<u64>,
    },
    /// A fact worth keeping (preflight, memory estimate, device, ...).
    Note {
        topic: String,
        data: serde_json::Value,
    },
    /// A checkpoint was written atomically: `dir` is absolute.
    Checkpoint {
        step: u64,
        dir: String,
        files: Vec<WorkerFile>,
    },
    /// A human log line (kept as the tail for failure records).
    Log { line: String },
    /// The run finished: the job's result.
    Result { value: serde_json::Value },
    /// The run failed with a catalog code; the worker exits non-zero right after.
    Failure { failure: Failure },
    /// Stopped on request (checkpoint-and-stop or cancel) at `step`.
    Stopped { step: u64, checkpointed: bool },
}

impl WorkerLine {
    /// One JSON line (without the newline).
    pub fn to_line(&self) -> String {
        serde_json::to_string(self).unwrap_or_else(|e| {
            format!("{{\"type\":\"log\",\"line\":\"unserializable worker line: {e}\"}}")
        })
    }

    pub fn parse(line: &str) -> Result<WorkerLine, serde_json::Error> {
        serde_json::from_str(line)
    }
}

impl WorkerCommand {
    pub fn to_line(&self) -> String {
        match self {
            WorkerCommand::Cancel => "\"cancel\"".into(),
            WorkerCommand::CheckpointAndStop => "\"checkpoint_and_stop\"".into(),
            WorkerCommand::Recorded { step } => format!("{{\"recorded\":{{\"step\":{step}}}}}"),
        }
    }

    pub fn parse(line: &str) -> Option<WorkerCommand> {
        serde_json::from_str(line.trim()).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{ctx, ErrorCode};

    #[test]
    fn commands_round_trip() {
        for c in [
            WorkerCommand::Cancel,
            WorkerCommand::CheckpointAndStop,
            WorkerCommand::Recorded { step: 12 },
        ] {
            assert_eq!(
                WorkerCommand::parse(&c.to_line()),
                Some(c),
                "{}",
                c.to_line()
            );
        }
    }

    #[test]
    fn lines_round_trip() {
        let lines = vec![
            WorkerLine::Heartbeat { step: 3 },
            WorkerLine::Checkpoint {
                step: 4,
                dir: "/d/step-4".into(),
                files: vec![WorkerFile {
                    name: "a".into(),
                    sha256: "00".into(),
                    size_bytes: 1,
                }],
            },
            WorkerLine::Failure {
                failure: Failure::new(
                    ErrorCode::TrainingDiverged,
                    ctx! {"value" => "NaN", "step" => 7},
                ),
            },
        ];
        for l in lines {
            let s = l.to_line();
            assert!(!s.contains('\n'));
            assert_eq!(WorkerLine::parse(&s).ok(), Some(l));
        }
    }

    #[test]
    fn commands_round_trip_and_garbage_is_none() {
        for c in [WorkerCommand::Cancel, WorkerCommand::CheckpointAndStop] {
            assert_eq!(WorkerCommand::parse(&c.to_line()), Some(c));
        }
        assert_eq!(WorkerCommand::parse("kill everyone"), None);
    }
}
