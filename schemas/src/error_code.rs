//! The error-code catalog: the one source of truth for every code, its HTTP status, whether
//! a job failing with it is worth retrying, and its English message template.
//!
//! docs/errors.md documents every code (a test below holds the two together); a few codes exist
//! for this service's own edges (marked "tunewright").
//! Templates name context fields in braces: `{filename}` is replaced by `context["filename"]`.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// One row of the catalog.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CatalogEntry {
    pub code: ErrorCode,
    /// The code as clients see it, e.g. `FILE_TOO_LARGE`.
    pub name: &'static str,
    /// HTTP status of an API answer carrying this code.
    pub http_status: u16,
    /// Whether a job that failed with this code may be retried by its policy.
    pub retryable: bool,
    /// English message; `{field}` is filled from the error's context.
    pub template: &'static str,
}

macro_rules! catalog {
    ($($variant:ident => ($name:literal, $status:literal, $retry:literal, $tmpl:literal)),+ $(,)?) => {
        /// Every error code tunewright can answer or record.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum ErrorCode {
            $($variant),+
        }

        impl ErrorCode {
            pub const ALL: &'static [ErrorCode] = &[$(ErrorCode::$variant),+];

            pub fn entry(&self) -> CatalogEntry {
                match self {
                    $(ErrorCode::$variant => CatalogEntry {
                        code: ErrorCode::$variant,
                        name: $name,
                        http_status: $status,
                        retryable: $retry,
                        template: $tmpl,
                    }),+
                }
            }

            pub fn from_name(name: &str) -> Option<ErrorCode> {
                match name {
                    $($name => Some(ErrorCode::$variant),)+
                    _ => None,
                }
            }
        }
    };
}

catalog! {
    // Generic.
    ValidationError => ("VALIDATION_ERROR", 400, false, "Invalid request: {reason}"),
    InternalError => ("INTERNAL_ERROR", 500, false, "An unexpected error occurred"),
    NotFound => ("NOT_FOUND", 404, false, "{resource} not found"),
    Conflict => ("CONFLICT", 409, false, "Conflict: {reason}"),
    // tunewright: the edges of the HTTP service.
    RouteNotFound => ("ROUTE_NOT_FOUND", 404, false, "No route for {method} {path}"),
    MethodNotAllowed => ("METHOD_NOT_ALLOWED", 405, false, "Method {method} is not allowed on {path}"),
    RequestTooLarge => ("REQUEST_TOO_LARGE", 413, false, "Request body exceeds the limit of {limit_bytes} bytes"),
    RequestTimeout => ("REQUEST_TIMEOUT", 408, false, "Request did not complete within {timeout_secs} s"),
    Unauthorized => ("UNAUTHORIZED", 401, false, "A valid bearer token is required for {path}"),
    CrossOriginRefused => ("CROSS_ORIGIN_REFUSED", 403, false, "A state-changing request from {origin} was refused: only this service's own pages may change state"),
    ServiceUnavailable => ("SERVICE_UNAVAILABLE", 503, true, "The service is not ready: {reason}"),
    EventLogError => ("EVENT_LOG_ERROR", 500, false, "The event log failed: {reason}"),
    StorageFull => ("STORAGE_FULL", 507, true, "The disk holding {path} is full ({free_bytes} bytes free): {reason}"),
    // Project.
    ProjectNotFound => ("PROJECT_NOT_FOUND", 404, false, "Project {project_id} does not exist"),
    ProjectInvalidStatus => ("PROJECT_INVALID_STATUS", 409, false, "Project {project_id} is '{status}': cannot {operation}"),
    ProjectDeleteRunning => ("PROJECT_DELETE_RUNNING", 409, false, "Project {project_id} has {active_jobs} job(s) queued or running: cancel them before deleting"),
    // Files.
    FileTooLarge => ("FILE_TOO_LARGE", 413, false, "File '{filename}' exceeds maximum size of {max_size_mb} MB"),
    FileTotalLimit => ("FILE_TOTAL_LIMIT", 413, false, "Project files would total {total_mb} MB, over the limit of {max_total_mb} MB"),
    FileUnsupportedType => ("FILE_UNSUPPORTED_TYPE", 400, false, "File '{filename}' has unsupported type {detected}: accepted are text, markdown, PDF, JSON, JSONL and CSV"),
    FileInvalidName => ("FILE_INVALID_NAME", 400, false, "File name '{filename}' is not allowed: {reason}"),
    FileNotFound => ("FILE_NOT_FOUND", 404, false, "File {file_id} does not exist in project {project_id}"),
    FileUploadFailed => ("FILE_UPLOAD_FAILED", 500, true, "Writing '{filename}' to disk failed: {reason}"),
    FileEmpty => ("FILE_EMPTY", 400, false, "File '{filename}' is empty (0 bytes)"),
    // Model.
    ModelNotFound => ("MODEL_NOT_FOUND", 404, false, "Model '{model}' was not found: {reason}"),
    ModelAccessDenied => ("MODEL_ACCESS_DENIED", 403, false, "Access to model '{model}' was denied"),
    ModelResolveFailed => ("MODEL_RESOLVE_FAILED", 502, true, "Resolving model '{model}' failed: {reason}"),
    ModelUnsupportedArch => ("MODEL_UNSUPPORTED_ARCH", 400, false, "Model architecture '{architecture}' is not supported for SFT (supported: {supported})"),
    // Dataset.
    DatasetNoChunks => ("DATASET_NO_CHUNKS", 400, false, "No usable text chunks were found in the project's {num_documents} document(s)"),
    DatasetNoDocs => ("DATASET_NO_DOCS", 400, false, "Project {project_id} has no documents to generate a dataset from"),
    DatasetGenerationFailed => ("DATASET_GENERATION_FAILED", 500, false, "Dataset generation failed after retries: {reason}"),
    DatasetTooFewExamples => ("DATASET_TOO_FEW_EXAMPLES", 400, false, "The dataset has {num_examples} valid example(s); at least {min_examples} are needed for training"),
    DatasetUploadInvalid => ("DATASET_UPLOAD_INVALID", 400, false, "Dataset line {line}: {reason}"),
    // LLM service (Ollama Cloud or any OpenAI-compatible server).
    OllamaApiKeyMissing => ("OLLAMA_API_KEY_MISSING", 400, false, "No API key is configured for the LLM service at {base_url} (set TUNEWRIGHT_LLM_API_KEY, or name the variable holding the key in the job's llm_api_key_env)"),
    OllamaApiKeyInvalid => ("OLLAMA_API_KEY_INVALID", 401, false, "The LLM service rejected the API key (HTTP {status})"),
    OllamaApiTimeout => ("OLLAMA_API_TIMEOUT", 504, true, "The LLM service did not answer within {timeout_secs} s"),
    OllamaApiRateLimit => ("OLLAMA_API_RATE_LIMIT", 429, true, "The LLM service is rate limiting requests (retry after {retry_after_secs} s)"),
    OllamaApiError => ("OLLAMA_API_ERROR", 502, true, "The LLM service failed: {reason}"),
    OllamaModelNotFound => ("OLLAMA_MODEL_NOT_FOUND", 404, false, "The LLM service has no model '{model}'"),
    OllamaResponseInvalid => ("OLLAMA_RESPONSE_INVALID", 500, false, "The LLM's answer could not be parsed, even after repair: {reason}"),
    // Hardware: GPU_NOT_AVAILABLE and GPU_VRAM_INSUFFICIENT are facts, answered 200.
    GpuNotAvailable => ("GPU_NOT_AVAILABLE", 200, false, "No CUDA GPU was detected"),
    GpuVramInsufficient => ("GPU_VRAM_INSUFFICIENT", 200, false, "The configuration needs about {required_gb} GB of device memory; the device has {available_gb} GB. {hint}"),
    GpuProbeFailed => ("GPU_PROBE_FAILED", 500, false, "Probing the hardware failed: {reason}"),
    // Training.
    TrainingAlreadyRunning => ("TRAINING_ALREADY_RUNNING", 409, false, "A training job ({running_job_id}) is already running on this device"),
    TrainingNoDataset => ("TRAINING_NO_DATASET", 400, false, "Project {project_id} has no dataset ready for training"),
    TrainingNoGpu => ("TRAINING_NO_GPU", 400, false, "device=cuda was requested but no CUDA GPU is available"),
    TrainingOom => ("TRAINING_OOM", 500, false, "Out of memory during {phase}: {reason}"),
    TrainingModelLoadFailed => ("TRAINING_MODEL_LOAD_FAILED", 500, false, "Loading the model from '{path}' failed: {reason}"),
    TrainingInterrupted => ("TRAINING_INTERRUPTED", 500, false, "Training was interrupted: {reason}"),
    TrainingDiverged => ("TRAINING_DIVERGED", 500, false, "The loss diverged ({value}) at step {step}"),
    TrainingStalled => ("TRAINING_STALLED", 500, true, "The worker made no progress for {silent_secs} s during {stage} (its bound was {bound_secs} s, last step {last_step}); it was killed as hung"),
    // Export.
    ExportNoRun => ("EXPORT_NO_RUN", 400, false, "There is no successful training run to export: {reason}"),
    ExportArtifactsMissing => ("EXPORT_ARTIFACTS_MISSING", 500, false, "Training artifacts are missing or damaged on disk: {path}"),
    ExportWriteFailed => ("EXPORT_WRITE_FAILED", 500, true, "Writing the export failed: {reason}"),
    ExportVerifyFailed => ("EXPORT_VERIFY_FAILED", 500, false, "The export failed its self-check: {reason}"),
    // Evaluation.
    EvaluationNoRun => ("EVALUATION_NO_RUN", 400, false, "There is no finished training run to evaluate: {reason}"),
    EvaluationFailed => ("EVALUATION_FAILED", 500, true, "The evaluation failed: {reason}"),
    // Jobs.
    JobNotFound => ("JOB_NOT_FOUND", 404, false, "Job {job_id} does not exist"),
    JobAlreadyFinished => ("JOB_ALREADY_FINISHED", 409, false, "Job {job_id} already finished with status '{status}'"),
    JobCancelFailed => ("JOB_CANCEL_FAILED", 500, false, "Cancelling job {job_id} failed: {reason}"),
    JobTimeout => ("JOB_TIMEOUT", 500, false, "Job {job_id} was not picked up within {timeout_secs} s"),
    // Codes of the older experiment API, kept so its clients get what they expect.
    TrainingInProgress => ("TRAINING_IN_PROGRESS", 409, false, "An experiment is already training"),
    DatasetNotImported => ("DATASET_NOT_IMPORTED", 422, false, "Project {project_id} has no imported dataset"),
    SplitNotFound => ("SPLIT_NOT_FOUND", 404, false, "Split '{split}' does not exist in project {project_id}"),
    ExperimentNotFound => ("EXPERIMENT_NOT_FOUND", 404, false, "Experiment {experiment_id} does not exist"),
    RunNotFound => ("RUN_NOT_FOUND", 404, false, "Run {run_id} does not exist"),
    CheckpointNotFound => ("CHECKPOINT_NOT_FOUND", 404, false, "No usable checkpoint was found for job {job_id}: {reason}"),
    ExportFormatUnavailable => ("EXPORT_FORMAT_UNAVAILABLE", 422, false, "Export format '{format}' is not yet available (available: {available})"),
}

impl ErrorCode {
    pub fn as_str(&self) -> &'static str {
        self.entry().name
    }

    pub fn http_status(&self) -> u16 {
        self.entry().http_status
    }

    pub fn is_retryable(&self) -> bool {
        self.entry().retryable
    }

    /// The English message for this code with `{field}`s filled from `context`.
    /// A field missing from the context is left as `{field}` rather than failing.
    pub fn render(&self, context: &BTreeMap<String, serde_json::Value>) -> String {
        render_template(self.entry().template, context)
    }
}

fn render_template(template: &str, context: &BTreeMap<String, serde_json::Value>) -> String {
    let mut out = String::with_capacity(template.len() + 32);
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        out.push_str(&rest[..open]);
        let after = &rest[open + 1..];
        match after.find('}') {
            Some(close) => {
                let key = &after[..close];
                match context.get(key) {
                    Some(serde_json::Value::String(s)) => out.push_str(s),
                    Some(v) => out.push_str(&v.to_string()),
                    None => {
                        out.push('{');
                        out.push_str(key);
                        out.push('}');
                    }
                }
                rest = &after[close + 1..];
            }
            None => {
                out.push_str(&rest[open..]);
                rest = "";
            }
        }
    }
    out.push_str(rest);
    out
}

impl std::fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for ErrorCode {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        ErrorCode::from_name(s).ok_or_else(|| {
            format!(
                "unknown error code '{}'",
                s.chars().take(80).collect::<String>()
            )
        })
    }
}

impl Serialize for ErrorCode {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for ErrorCode {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// Stored by name, never by position: codes can be added without breaking old logs.
impl bincode::Encode for ErrorCode {
    fn encode<E: bincode::enc::Encoder>(
        &self,
        e: &mut E,
    ) -> Result<(), bincode::error::EncodeError> {
        bincode::Encode::encode(self.as_str(), e)
    }
}

impl<C> bincode::Decode<C> for ErrorCode {
    fn decode<D: bincode::de::Decoder<Context = C>>(
        d: &mut D,
    ) -> Result<Self, bincode::error::DecodeError> {
        let s: String = bincode::Decode::decode(d)?;
        s.parse().map_err(bincode::error::DecodeError::OtherString)
    }
}

impl<'de, C> bincode::BorrowDecode<'de, C> for ErrorCode {
    fn borrow_decode<D: bincode::de::BorrowDecoder<'de, Context = C>>(
        d: &mut D,
    ) -> Result<Self, bincode::error::DecodeError> {
        <Self as bincode::Decode<C>>::decode(d)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_and_round_trip() {
        let mut seen = std::collections::HashSet::new();
        for code in ErrorCode::ALL {
            let e = code.entry();
            assert!(seen.insert(e.name), "duplicate {}", e.name);
            assert_eq!(ErrorCode::from_name(e.name), Some(*code));
            assert!(e.name.chars().all(|c| c.is_ascii_uppercase() || c == '_'));
            assert!((200..600).contains(&e.http_status));
        }
    }

    #[test]
    fn documented_statuses_hold() {
        // A sample of docs/errors.md's statuses.
        let expect = [
            ("PROJECT_NOT_FOUND", 404),
            ("PROJECT_INVALID_STATUS", 409),
            ("FILE_TOO_LARGE", 413),
            ("FILE_TOTAL_LIMIT", 413),
            ("FILE_UNSUPPORTED_TYPE", 400),
            ("FILE_UPLOAD_FAILED", 500),
            ("MODEL_ACCESS_DENIED", 403),
            ("MODEL_RESOLVE_FAILED", 502),
            ("OLLAMA_API_KEY_INVALID", 401),
            ("OLLAMA_API_TIMEOUT", 504),
            ("OLLAMA_API_RATE_LIMIT", 429),
            ("OLLAMA_API_ERROR", 502),
            ("GPU_NOT_AVAILABLE", 200),
            ("GPU_VRAM_INSUFFICIENT", 200),
            ("TRAINING_ALREADY_RUNNING", 409),
            ("TRAINING_OOM", 500),
            ("EXPORT_NO_RUN", 400),
            ("JOB_ALREADY_FINISHED", 409),
            ("VALIDATION_ERROR", 400),
            ("DATASET_NOT_IMPORTED", 422),
            ("SPLIT_NOT_FOUND", 404),
            ("CHECKPOINT_NOT_FOUND", 404),
            ("EXPORT_FORMAT_UNAVAILABLE", 422),
        ];
        for (name, status) in expect {
            let code = ErrorCode::from_name(name).unwrap_or_else(|| panic!("{name} missing"));
            assert_eq!(code.http_status(), status, "{name}");
        }
    }

    #[test]
    fn only_transient_codes_are_retryable() {
        assert!(ErrorCode::OllamaApiTimeout.is_retryable());
        assert!(ErrorCode::OllamaApiRateLimit.is_retryable());
        assert!(ErrorCode::OllamaApiError.is_retryable());
        assert!(!ErrorCode::OllamaApiKeyInvalid.is_retryable());
        assert!(!ErrorCode::OllamaModelNotFound.is_retryable());
        assert!(!ErrorCode::TrainingOom.is_retryable());
        assert!(ErrorCode::ExportWriteFailed.is_retryable());
    }

    #[test]
    fn render_fills_context_and_keeps_unknown_fields() {
        let mut ctx = BTreeMap::new();
        ctx.insert("filename".to_string(), serde_json::json!("report.pdf"));
        ctx.insert("max_size_mb".to_string(), serde_json::json!(50));
        assert_eq!(
            ErrorCode::FileTooLarge.render(&ctx),
            "File 'report.pdf' exceeds maximum size of 50 MB"
        );
        assert_eq!(
            ErrorCode::FileEmpty.render(&BTreeMap::new()),
            "File '{filename}' is empty (0 bytes)"
        );
        assert_eq!(
            render_template("unclosed {brace", &BTreeMap::new()),
            "unclosed {brace"
        );
    }

    #[test]
    fn the_missing_key_message_names_a_field_jobs_accept() {
        // Jobs never carry a key (it would be recorded); they name a variable holding it.
        let m = ErrorCode::OllamaApiKeyMissing.render(&BTreeMap::new());
        assert!(
            m.contains("TUNEWRIGHT_LLM_API_KEY") && m.contains("llm_api_key_env"),
            "{m}"
        );
        assert!(!m.contains("api_key)"), "{m}");
    }

    #[test]
    fn stored_by_name() {
        let cfg = bincode::config::standard();
        let bytes = bincode::encode_to_vec(ErrorCode::TrainingOom, cfg).unwrap();
        let name: (String, usize) = bincode::decode_from_slice(&bytes, cfg).unwrap();
        assert_eq!(name.0, "TRAINING_OOM");
    }

    #[test]
    fn docs_errors_md_lists_every_code_with_its_status_and_retry_flag() {
        let doc = include_str!("../../docs/errors.md");
        for code in ErrorCode::ALL {
            let e = code.entry();
            let row = doc
                .lines()
                .find(|l| l.starts_with(&format!("| `{}` |", e.name)))
                .unwrap_or_else(|| panic!("docs/errors.md has no row for {}", e.name));
            let cells: Vec<&str> = row.split('|').map(str::trim).collect();
            assert_eq!(cells[2], e.http_status.to_string(), "{}: status", e.name);
            let retry = if e.retryable { "yes" } else { "no" };
            assert_eq!(cells[3], retry, "{}: retryable", e.name);
        }
    }
}
