//! The record of a failure: what every failed job, attempt and actor carries.
//!
//! A `Failure` has a catalog code, a readable detail, context fields, the cause chain, the
//! last log lines of the process that failed and, once the analyzer has seen
//! it, an `Analysis` in the shape of docs/errors.md with concrete suggestions.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::error_code::ErrorCode;
use crate::json::Json;
use crate::status::named_enum;

named_enum!(
    /// What kind of failure the analyzer recognised (docs/errors.md).
    ErrorType, "error type" {
        OomTraining => "oom_training",
        OomEval => "oom_eval",
        OomModelLoad => "oom_model_load",
        OomCpu => "oom_cpu",
        Diverged => "diverged",
        CudaError => "cuda_error",
        CudaDriver => "cuda_driver",
        NoGpu => "no_gpu",
        Distributed => "distributed",
        DiskFull => "disk_full",
        PermissionDenied => "permission_denied",
        CheckpointCorrupted => "checkpoint_corrupted",
        CheckpointMissing => "checkpoint_missing",
        ModelNotFound => "model_not_found",
        ModelAccessDenied => "model_access_denied",
        ModelUnsupportedArch => "model_unsupported_arch",
        ModelMismatch => "model_mismatch",
        TokenizerConfig => "tokenizer_config",
        DatasetFormat => "dataset_format",
        DatasetTooSmall => "dataset_too_small",
        SequenceTooLong => "sequence_too_long",
        LoraConfig => "lora_config",
        PrecisionUnsupported => "precision_unsupported",
        NetworkTimeout => "network_timeout",
        NetworkUnreachable => "network_unreachable",
        RateLimit => "rate_limit",
        AuthFailed => "auth_failed",
        LlmResponseInvalid => "llm_response_invalid",
        ProcessKilled => "process_killed",
        Interrupted => "interrupted",
        /// The worker stopped making progress (hung storage, a deadlock, a driver hang).
        Stalled => "stalled",
        /// The conversation's roles do not fit the chat template (alternation, system role).
        ChatRoles => "chat_roles",
        /// Tensors of one operation live on different devices (cpu and cuda:0).
        DeviceMismatch => "device_mismatch",
        /// Tensors of one operation have different dtypes (Half and Float).
        DtypeMismatch => "dtype_mismatch",
        /// A checkpoint directory lacks a file needed to resume (trainer state, optimizer state).
        CheckpointIncomplete => "checkpoint_incomplete",
        /// The LLM service has no model of the name asked for.
        LlmModelNotFound => "llm_model_not_found",
        /// The LLM service answered with a server error (HTTP 5xx, its runner crashed).
        LlmServerError => "llm_server_error",
        /// A Python package is missing or of an incompatible version.
        DependencyMissing => "dependency_missing",
        /// The loss has no gradient: nothing trainable reaches it.
        NoGradient => "no_gradient",
        Unknown => "unknown",
    }
);

named_enum!(
    /// Where in a job's life a failure happened.
    ErrorPhase, "error phase" {
        Preflight => "preflight",
        ModelLoad => "model_load",
        DataLoad => "data_load",
        Training => "training",
        Evaluation => "evaluation",
        Checkpoint => "checkpoint",
        Export => "export",
        Generation => "generation",
        Unknown => "unknown",
    }
);

named_enum!(
    /// How sure the analyzer is.
    Confidence, "confidence" {
        High => "high",
        Medium => "medium",
        Low => "low",
    }
);

/// One concrete fix: what to do, why, and the config changes that do it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, bincode::Encode, bincode::Decode)]
pub struct Suggestion {
    /// Short imperative, e.g. "Halve the micro-batch and double gradient accumulation".
    pub action: String,
    /// Why it helps, with the numbers of the config it was given.
    pub detail: String,
    /// The exact config keys to change and their new values (`{}` when not a config change).
    pub config_changes: Json,
}

/// The analyzer's reading of a failure (docs/errors.md).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, bincode::Encode, bincode::Decode)]
pub struct Analysis {
    pub error_type: ErrorType,
    pub error_phase: ErrorPhase,
    pub error_code: ErrorCode,
    pub description: String,
    pub confidence: Confidence,
    pub suggestions: Vec<Suggestion>,
}

/// A failure as recorded in the log and shown by the API.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, bincode::Encode, bincode::Decode)]
pub struct Failure {
    pub error_code: ErrorCode,
    /// The readable message (the catalog template, filled in).
    pub detail: String,
    /// The template's fields and any other facts worth keeping.
    pub context: Json,
    /// Where in the job's life it happened, when the code that failed knew.
    pub phase: Option<ErrorPhase>,
    /// The error's cause chain, outermost first (raw texts, e.g. libtorch's message).
    pub cause_chain: Vec<String>,
    /// The last lines the failing process logged, when there was one.
    pub log_tail: Vec<String>,
    pub analysis: Option<Analysis>,
}

impl Failure {
    /// A failure whose detail is the catalog message filled from `context`.
    pub fn new(code: ErrorCode, context: BTreeMap<String, serde_json::Value>) -> Self {
        let detail = code.render(&context);
        Failure {
            error_code: code,
            detail,
            context: Json(serde_json::Value::Object(context.into_iter().collect())),
            phase: None,
            cause_chain: Vec::new(),
            log_tail: Vec::new(),
            analysis: None,
        }
    }

    /// A failure with a hand-written detail (context kept as given).
    pub fn with_detail(
        code: ErrorCode,
        detail: impl Into<String>,
        context: serde_json::Value,
    ) -> Self {
        Failure {
            error_code: code,
            detail: detail.into(),
            context: Json(context),
            phase: None,
            cause_chain: Vec::new(),
            log_tail: Vec::new(),
            analysis: None,
        }
    }

    pub fn caused_by(mut self, cause: impl Into<String>) -> Self {
        self.cause_chain.push(cause.into());
        self
    }

    /// The same failure, known to have happened in `phase`.
    pub fn in_phase(mut self, phase: ErrorPhase) -> Self {
        self.phase = Some(phase);
        self
    }

    /// Set a context field (for a fact only a caller knows, such as the job id of a failure
    /// raised deeper down); a detail that is the catalog message is rendered again with it.
    pub fn with_field(mut self, key: &str, value: serde_json::Value) -> Self {
        if let serde_json::Value::Object(m) = &mut self.context.0 {
            let fields = |m: &serde_json::Map<String, serde_json::Value>| {
                m.iter()
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect::<BTreeMap<_, _>>()
            };
            let templated = self.detail == self.error_code.render(&fields(m));
            m.insert(key.to_string(), value);
            if templated {
                self.detail = self.error_code.render(&fields(m));
            }
        }
        self
    }
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.error_code, self.detail)
    }
}

impl std::error::Error for Failure {}

/// Build a context map inline: `ctx! { "filename" => name, "max_size_mb" => 50 }`.
#[macro_export]
macro_rules! ctx {
    ($($k:expr => $v:expr),* $(,)?) => {{
        #[allow(unused_mut)]
        let mut m = ::std::collections::BTreeMap::<String, ::serde_json::Value>::new();
        $( m.insert(($k).to_string(), ::serde_json::json!($v)); )*
        m
    }};
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn new_renders_the_catalog_message() {
        let f = Failure::new(
            ErrorCode::TrainingDiverged,
            ctx! {"value" => "NaN", "step" => 17},
        );
        assert_eq!(f.detail, "The loss diverged (NaN) at step 17");
        assert_eq!(f.context.get("step"), Some(&serde_json::json!(17)));
    }

    #[test]
    fn a_field_added_later_fills_the_catalog_message() {
        let f = Failure::new(ErrorCode::CheckpointNotFound, ctx! {"reason" => "gone"});
        assert!(f.detail.contains("{job_id}"));
        let f = f.with_field("job_id", serde_json::json!("job_1"));
        assert_eq!(
            f.detail,
            "No usable checkpoint was found for job job_1: gone"
        );
        let hand = Failure::with_detail(ErrorCode::InternalError, "mine", serde_json::json!({}))
            .with_field("x", serde_json::json!(1));
        assert_eq!(hand.detail, "mine");
    }

    #[test]
    fn failure_round_trips_through_bincode() {
        let cfg = bincode::config::standard();
        let mut f = Failure::new(
            ErrorCode::TrainingOom,
            ctx! {"phase" => "training", "reason" => "CUDA out of memory"},
        )
        .caused_by("CUDA out of memory. Tried to allocate 2.00 GiB");
        f.analysis = Some(Analysis {
            error_type: ErrorType::OomTraining,
            error_phase: ErrorPhase::Training,
            error_code: ErrorCode::TrainingOom,
            description: "d".into(),
            confidence: Confidence::High,
            suggestions: vec![Suggestion {
                action: "a".into(),
                detail: "b".into(),
                config_changes: Json(serde_json::json!({"per_device_train_batch_size": 4})),
            }],
        });
        let bytes = bincode::encode_to_vec(&f, cfg).unwrap();
        let (back, _): (Failure, usize) = bincode::decode_from_slice(&bytes, cfg).unwrap();
        assert_eq!(back, f);
    }
}
