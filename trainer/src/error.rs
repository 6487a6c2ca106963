//! `TrainerError`: every way the trainer crate fails, each mapped to its catalog code.
//!
//! Torch errors are classified at the boundary (`TrainerError::torch`): an out-of-memory
//! message (CUDA or CPU allocator) becomes `Oom` -> `TRAINING_OOM`; anything else keeps the
//! phase it happened in and libtorch's text as the cause.

use std::path::{Path, PathBuf};

use tunewright_schemas::{ctx, ErrorCode, ErrorPhase, Failure};

#[derive(Debug, thiserror::Error)]
pub enum TrainerError {
    /// The model directory or its config.json is missing.
    #[error("model '{path}' not found: {reason}")]
    ModelNotFound { path: PathBuf, reason: String },
    /// config.json names an architecture we do not implement.
    #[error("unsupported architecture '{architecture}'")]
    UnsupportedArch { architecture: String },
    /// A checkpoint file is unreadable, short, corrupt, lacks a tensor or has a wrong shape.
    #[error("loading '{path}' failed: {reason}")]
    ModelLoad { path: PathBuf, reason: String },
    /// Out of memory on the device (or the CPU allocator) during `phase`; with the model's
    /// memory facts once they are known (for the analyzer's suggestions).
    #[error("out of memory during {phase}: {message}")]
    Oom {
        phase: String,
        message: String,
        facts: Option<Box<MemoryFacts>>,
    },
    /// Any other libtorch failure during `phase`.
    #[error("torch failed during {phase}: {message}")]
    Torch { phase: String, message: String },
    /// LoRA settings that cannot apply to this model (rank, unknown target module, ...).
    #[error("invalid LoRA settings: {reason}")]
    InvalidLora { reason: String },
    /// Inputs of an export are missing or do not match their recorded hashes.
    #[error("export artifacts missing or damaged: {path}: {reason}")]
    ExportArtifactsMissing { path: PathBuf, reason: String },
    /// Writing (or re-reading to check) an export failed.
    #[error("writing the export failed: {reason}")]
    ExportWrite { reason: String },
    #[error("the loss diverged ({value}) at step {step}")]
    Diverged { step: u64, value: String },
    #[error("{0}")]
    Rejected(Failure),
    #[error("device=cuda was requested but no CUDA GPU is available")]
    NoGpu,
    #[error("checkpoint {path}: {reason}")]
    Checkpoint { path: PathBuf, reason: String },
    #[error("I/O on {path}: {reason}")]
    Io { path: PathBuf, reason: String },
    /// The disk filled while writing `path` during `phase` (`checkpoint` or `export`);
    /// retryable: a retry resumes from the last good checkpoint once space is back.
    #[error("the disk is full writing {path} during {phase}: {reason}")]
    StorageFull {
        path: PathBuf,
        phase: String,
        free_bytes: Option<u64>,
        reason: String,
    },
}

/// The base model's size and the memory levers in use, carried by a `TRAINING_OOM` failure's
/// context so that the analyzer can say what a lever would save.
#[derive(Debug, Clone, PartialEq)]
pub struct MemoryFacts {
    pub base_model_parameters: i64,
    /// Bytes the frozen base weights take as the run holds them.
    pub base_weights_bytes: u64,
    /// Bytes they would take with `load_in_4bit` (NF4, double quantization).
    pub base_weights_bytes_4bit: u64,
    pub load_in_4bit: bool,
    pub gradient_checkpointing: bool,
}

impl TrainerError {
    /// Classify a libtorch error: OOM messages become `Oom`, the rest `Torch`.
    pub fn torch(phase: &str, err: tch::TchError) -> TrainerError {
        let message = without_cpp_backtrace(&err.to_string());
        if is_oom_message(&message) {
            TrainerError::Oom {
                phase: phase.to_string(),
                message,
                facts: None,
            }
        } else {
            TrainerError::Torch {
                phase: phase.to_string(),
                message,
            }
        }
    }

    /// Attach the model's memory facts to an OOM (other errors pass unchanged).
    pub fn with_memory_facts(self, f: &MemoryFacts) -> TrainerError {
        match self {
            TrainerError::Oom { phase, message, .. } => TrainerError::Oom {
                phase,
                message,
                facts: Some(Box::new(f.clone())),
            },
            other => other,
        }
    }

    /// The same error, known to have happened during `phase` (an evaluation's forward pass is
    /// not a training step's).
    pub fn during(self, phase: &str) -> TrainerError {
        match self {
            TrainerError::Oom { message, facts, .. } => TrainerError::Oom {
                phase: phase.to_string(),
                message,
                facts,
            },
            TrainerError::Torch { message, .. } => TrainerError::Torch {
                phase: phase.to_string(),
                message,
            },
            TrainerError::StorageFull {
                path,
                free_bytes,
                reason,
                ..
            } => TrainerError::StorageFull {
                path,
                phase: phase.to_string(),
                free_bytes,
                reason,
            },
            other => other,
        }
    }

    pub fn load(path: &Path, reason: impl Into<String>) -> TrainerError {
        TrainerError::ModelLoad {
            path: path.to_path_buf(),
            reason: reason.into(),
        }
    }

    pub fn code(&self) -> ErrorCode {
        match self {
            TrainerError::ModelNotFound { .. } => ErrorCode::ModelNotFound,
            TrainerError::UnsupportedArch { .. } => ErrorCode::ModelUnsupportedArch,
            TrainerError::ModelLoad { .. } => ErrorCode::TrainingModelLoadFailed,
            TrainerError::Oom { .. } => ErrorCode::TrainingOom,
            TrainerError::Torch { .. } => ErrorCode::InternalError,
            TrainerError::InvalidLora { .. } => ErrorCode::ValidationError,
            TrainerError::ExportArtifactsMissing { .. } => ErrorCode::ExportArtifactsMissing,
            TrainerError::ExportWrite { .. } => ErrorCode::ExportWriteFailed,
            TrainerError::Diverged { .. } => ErrorCode::TrainingDiverged,
            TrainerError::Rejected(f) => f.error_code,
            TrainerError::NoGpu => ErrorCode::TrainingNoGpu,
            TrainerError::Checkpoint { .. } => ErrorCode::CheckpointNotFound,
            TrainerError::Io { .. } => ErrorCode::InternalError,
            TrainerError::StorageFull { .. } => ErrorCode::StorageFull,
        }
    }

    /// A write of `path` that failed with `e`: a full disk is `StorageFull`, anything else
    /// `ExportWrite` (the phase is set by `during`).
    pub fn write(path: &Path, e: std::io::Error) -> TrainerError {
        if crate::space::is_full(&e) {
            TrainerError::StorageFull {
                path: path.to_path_buf(),
                phase: "export".into(),
                free_bytes: crate::space::free_bytes(path),
                reason: e.to_string(),
            }
        } else {
            TrainerError::ExportWrite {
                reason: format!("{}: {e}", path.display()),
            }
        }
    }

    /// Where in the run this error happened, when it says.
    pub fn phase(&self) -> Option<ErrorPhase> {
        let word = |w: &str| match w {
            "model load" | "model_load" => Some(ErrorPhase::ModelLoad),
            "forward" | "backward" | "optimizer" | "training" => Some(ErrorPhase::Training),
            "evaluation" | "eval" => Some(ErrorPhase::Evaluation),
            "export" | "merge" => Some(ErrorPhase::Export),
            "checkpoint" => Some(ErrorPhase::Checkpoint),
            _ => None,
        };
        match self {
            TrainerError::Oom { phase, .. }
            | TrainerError::Torch { phase, .. }
            | TrainerError::StorageFull { phase, .. } => word(phase),
            TrainerError::ModelNotFound { .. }
            | TrainerError::UnsupportedArch { .. }
            | TrainerError::ModelLoad { .. } => Some(ErrorPhase::ModelLoad),
            TrainerError::Diverged { .. } => Some(ErrorPhase::Training),
            TrainerError::Checkpoint { .. } => Some(ErrorPhase::Checkpoint),
            TrainerError::ExportArtifactsMissing { .. } | TrainerError::ExportWrite { .. } => {
                Some(ErrorPhase::Export)
            }
            TrainerError::InvalidLora { .. } => Some(ErrorPhase::Preflight),
            TrainerError::NoGpu => Some(ErrorPhase::Preflight),
            TrainerError::Rejected(f) => f.phase,
            TrainerError::Io { .. } => None,
        }
    }

    /// The catalog failure for this error, with the raw text as its cause.
    pub fn to_failure(&self) -> Failure {
        if let TrainerError::Rejected(f) = self {
            return f.clone();
        }
        let context = match self {
            TrainerError::Rejected(_) => ctx! {},
            TrainerError::Diverged { step, value } => ctx! { "step" => step, "value" => value },
            TrainerError::NoGpu => ctx! {},
            // The job's id is the worker's to add (`Failure::with_field`): the trainer knows
            // only the checkpoint's path.
            TrainerError::Checkpoint { path, reason } => {
                ctx! { "path" => path.display().to_string(), "reason" => format!("{}: {reason}", path.display()) }
            }
            TrainerError::Io { path, reason } => {
                ctx! { "reason" => format!("{}: {reason}", path.display()) }
            }
            TrainerError::ModelNotFound { path, reason } => {
                ctx! { "model" => path.display().to_string(), "reason" => reason }
            }
            TrainerError::UnsupportedArch { architecture } => {
                ctx! {
                    "architecture" => architecture,
                    "supported" => tunewright_schemas::model_family::supported_architectures_list()
                }
            }
            TrainerError::ModelLoad { path, reason } => {
                ctx! { "path" => path.display().to_string(), "reason" => reason }
            }
            TrainerError::Oom {
                phase,
                message,
                facts,
            } => {
                let mut c = ctx! { "phase" => phase, "reason" => message };
                if let Some(f) = facts {
                    c.extend(ctx! {
                        "base_model_parameters" => f.base_model_parameters,
                        "base_weights_bytes" => f.base_weights_bytes,
                        "base_weights_bytes_4bit" => f.base_weights_bytes_4bit,
                        "load_in_4bit" => f.load_in_4bit,
                        "gradient_checkpointing" => f.gradient_checkpointing
                    });
                }
                c
            }
            TrainerError::Torch { phase, message } => {
                ctx! { "phase" => phase, "reason" => message }
            }
            TrainerError::InvalidLora { reason } => ctx! { "reason" => reason },
            TrainerError::ExportArtifactsMissing { path, reason } => {
                ctx! { "path" => path.display().to_string(), "reason" => reason }
            }
            TrainerError::ExportWrite { reason } => ctx! { "reason" => reason },
            TrainerError::StorageFull {
                path,
                phase,
                free_bytes,
                reason,
            } => {
                // The directory as the user knows it: not the write's hidden temp dir.
                let dir = path
                    .ancestors()
                    .skip(1)
                    .find(|d| {
                        !d.file_name()
                            .is_some_and(|n| n.to_string_lossy().starts_with('.'))
                    })
                    .unwrap_or(path);
                ctx! {
                    "path" => dir.display().to_string(),
                    "free_bytes" => free_bytes.map(|b| b.to_string()).unwrap_or_else(|| "unknown".into()),
                    "reason" => format!("writing the {phase} failed: {reason}")
                }
            }
        };
        let mut failure = Failure::new(self.code(), context);
        failure.phase = self.phase();
        if let TrainerError::ExportArtifactsMissing { reason, .. } = self {
            failure.detail = format!("{}: {reason}", failure.detail);
        }
        failure.caused_by(self.to_string())
    }
}

/// libtorch's message without the C++ stack trace it appends (`frame #0: ...` lines, and
/// the `Exception raised from ...` line before them): the message is what a user reads.
pub fn without_cpp_backtrace(message: &str) -> String {
    let mut end = message.len();
    for marker in ["\nframe #", "\nException raised from "] {
        if let Some(i) = message.find(marker) {
            end = end.min(i);
        }
    }
    message[..end].trim_end().to_string()
}

/// Whether a libtorch error text reports an allocation failure.
pub fn is_oom_message(message: &str) -> bool {
    let m = message.to_ascii_lowercase();
    m.contains("cuda out of memory")
        || m.contains("out of memory")
        || m.contains("defaultcpuallocator: not enough memory")
        || m.contains("can't allocate memory")
        || m.contains("failed to allocate")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn oom_messages_map_to_training_oom() {
        let cuda = "CUDA out of memory. Tried to allocate 4096.00 GiB. GPU 0 has a total capacity of 79.18 GiB";
        let cpu = "[enforce fail at alloc_cpu.cpp:121] data. DefaultCPUAllocator: not enough memory: you tried to allocate 1099511627776 bytes.";
        for m in [cuda, cpu] {
            let e = TrainerError::torch("forward", tch::TchError::Torch(m.to_string()));
            assert_eq!(e.to_failure().error_code, ErrorCode::TrainingOom, "{m}");
        }
        let other = TrainerError::torch("forward", tch::TchError::Torch("shape mismatch".into()));
        assert_eq!(other.code(), ErrorCode::InternalError);
    }

    #[test]
    fn the_cpp_backtrace_is_cut_from_torch_messages() {
        let m = "Internal torch error: [enforce fail at alloc_cpu.cpp:127] err == 0. DefaultCPUAllocator: can't allocate memory: you tried to allocate 288230376151711744 bytes. Error code 12 (Cannot allocate memory)\nframe #0: c10::ThrowEnforceNotMet(char const*, int) + 0x6a (0x7f in libc10.so)\nframe #1: c10::alloc_cpu(unsigned long) + 0x365\n";
        let e = TrainerError::torch("forward", tch::TchError::Torch(m.to_string()));
        assert_eq!(e.code(), ErrorCode::TrainingOom);
        let TrainerError::Oom { message, .. } = e else {
            panic!("not an OOM")
        };
        assert!(message.ends_with("(Cannot allocate memory)"), "{message}");
        let t = "shape mismatch\nException raised from check at foo.cpp:1 (most recent call first):\nframe #0: x";
        assert_eq!(without_cpp_backtrace(t), "shape mismatch");
        assert_eq!(without_cpp_backtrace("plain"), "plain");
    }

    #[test]
    fn every_variant_renders_its_template_fields() {
        let errs = [
            TrainerError::ModelNotFound {
                path: "/m".into(),
                reason: "no such directory".into(),
            },
            TrainerError::UnsupportedArch {
                architecture: "GPT2LMHeadModel".into(),
            },
            TrainerError::load(Path::new("/m/model.safetensors"), "tensor 'x' missing"),
            TrainerError::ExportWrite {
                reason: "disk full".into(),
            },
        ];
        for e in errs {
            let f = e.to_failure();
            assert!(!f.detail.contains('{'), "unfilled template: {}", f.detail);
            assert!(!f.cause_chain.is_empty());
        }
    }
}
