//! Recognising failure texts: ordered rules of lower-cased fragments, the first match wins.
//! The order puts specific texts before general ones ("out of memory" inside a CUDA error).

use std::sync::OnceLock;

use regex::Regex;
use tunewright_schemas::{Confidence, ErrorCode, ErrorPhase, ErrorType};

use ErrorType::*;

/// (fragments, any of which matches; type; confidence).
const RULES: &[(&[&str], ErrorType, Confidence)] = &[
    (
        &[
            "process_killed",
            "signal: 9",
            "sigkill",
            "killed by signal 9",
            "exit code 137",
            "exitcode: -9",
            "oom-kill",
            "oom_kill",
            "out of memory: killed process",
        ],
        ProcessKilled,
        Confidence::High,
    ),
    (
        &[
            "keyboardinterrupt",
            "sigterm",
            "signal: 15",
            "interrupted by signal",
            "training was interrupted",
            "worker exited",
            "worker died",
            "received signal 2",
        ],
        Interrupted,
        Confidence::High,
    ),
    (
        &[
            "loss is nan",
            "loss is inf",
            "nan loss",
            "loss diverged",
            "loss became nan",
            "non-finite loss",
            "gradient overflow",
            "nan or inf",
            "detected inf",
            "loss: nan",
            "loss = nan",
            "'loss': nan",
            "\" is nan",
            "'loss': inf",
            "diverged",
        ],
        Diverged,
        Confidence::High,
    ),
    (
        &[
            "cuda out of memory",
            "torch.outofmemoryerror",
            "outofmemoryerror",
            "cublas_status_alloc_failed",
            "hip out of memory",
            "mps backend out of memory",
            "cudnn_status_alloc_failed",
            "resource exhausted: oom",
            "cuda error: out of memory",
            "training_oom",
        ],
        OomTraining,
        Confidence::High,
    ),
    (
        &[
            "cannot allocate memory",
            "std::bad_alloc",
            "memoryerror",
            "defaultcpuallocator: can't allocate memory",
            "failed to allocate",
            "not enough memory: you tried to allocate",
            "can't allocate memory",
        ],
        OomCpu,
        Confidence::High,
    ),
    (
        &[
            "cuda driver version is insufficient",
            "nvidia driver on your system is too old",
            "found no nvidia driver",
            "driver/library version mismatch",
            "cuda_error_no_device",
            "nvml",
            "failed to initialize nvml",
            "cuda driver initialization failed",
        ],
        CudaDriver,
        Confidence::High,
    ),
    (
        &[
            "torch not compiled with cuda",
            "no cuda gpus are available",
            "cuda is not available",
            "no cuda gpu",
            "cuda available: false",
            "no gpu available",
            "training_no_gpu",
            "gpu_not_available",
            "expected all tensors to be on the same device but found at least two devices, cpu",
        ],
        NoGpu,
        Confidence::High,
    ),
    (
        &[
            "nccl error",
            "ncclsystemerror",
            "ncclinternalerror",
            "nccl timeout",
            "watchdog caught collective operation timeout",
            "process group",
            "torch.distributed",
            "processgroupnccl",
            "rendezvous",
        ],
        Distributed,
        Confidence::High,
    ),
    (
        &[
            "bf16",
            "bfloat16",
            "fp16 mixed precision",
            "half precision",
            "\"addmm_impl_cpu_\" not implemented for 'half'",
            "not implemented for 'half'",
            "cublas_status_not_supported",
            "precision",
        ],
        PrecisionUnsupported,
        Confidence::Medium,
    ),
    (
        &[
            "device-side assert",
            "illegal memory access",
            "cuda error",
            "cudnn_status",
            "cublas_status",
            "cuda kernel errors",
            "misaligned address",
            "unspecified launch failure",
        ],
        CudaError,
        Confidence::High,
    ),
    (
        &[
            "no space left on device",
            "disk quota exceeded",
            "errno 28",
            "enospc",
            "disk full",
        ],
        DiskFull,
        Confidence::High,
    ),
    (
        &[
            "permission denied",
            "errno 13",
            "eacces",
            "operation not permitted",
            "read-only file system",
        ],
        PermissionDenied,
        Confidence::High,
    ),
    (
        &[
            "safetensorerror",
            "headertoolarge",
            "invalidheader",
            "error while deserializing header",
            "pytorchstreamreader failed",
            "failed finding central directory",
            "unexpected eof",
            "checkpoint is corrupt",
            "corrupted",
            "hash mismatch",
            "sha256 mismatch",
            "invalid load key",
            "unpicklingerror",
        ],
        CheckpointCorrupted,
        Confidence::High,
    ),
    (
        &[
            "no checkpoint",
            "checkpoint not found",
            "can't find a checkpoint",
            "no valid checkpoint",
            "checkpoint_not_found",
            "resume_from_checkpoint",
            "no usable checkpoint",
        ],
        CheckpointMissing,
        Confidence::High,
    ),
    (
        &[
            "gated repo",
            "access to model",
            "is restricted",
            "you must be authenticated",
            "403 client error",
            "awaiting a review",
            "access denied to model",
        ],
        ModelAccessDenied,
        Confidence::High,
    ),
    (
        &[
            "size mismatch for",
            "shape mismatch",
            "copying a param with shape",
            "is not compatible with the base model",
            "does not match the base model",
            "unexpected key(s) in state_dict",
            "missing key(s) in state_dict",
        ],
        ModelMismatch,
        Confidence::High,
    ),
    (
        &[
            "model_unsupported_arch",
            "unrecognized configuration class",
            "model type",
            "architecture",
            "does not support",
            "is not supported for sft",
            "unsupported model",
        ],
        ModelUnsupportedArch,
        Confidence::Medium,
    ),
    (
        &[
            "does not appear to have a file named",
            "is not a local folder and is not a valid model identifier",
            "repository not found",
            "404 client error",
            "model_not_found",
            "no such file or directory: '",
            "can't load the configuration",
            "config.json not found",
            "model directory",
            "we couldn't connect to",
        ],
        ModelNotFound,
        Confidence::High,
    ),
    (
        &[
            "asking to pad but the tokenizer does not have a padding token",
            "tokenizer",
            "chat_template",
            "chat template",
            "pad_token",
            "eos_token",
            "sentencepiece",
        ],
        TokenizerConfig,
        Confidence::High,
    ),
    (
        &[
            "token indices sequence length is longer",
            "sequence length is longer than the specified maximum",
            "exceeds the maximum sequence length",
            "max_position_embeddings",
            "input length of input_ids",
            "longer than max_seq_length",
            "sequence too long",
        ],
        SequenceTooLong,
        Confidence::High,
    ),
    (
        &[
            "target modules",
            "target_modules",
            "lora_r",
            "lora rank",
            "peft config",
            "loraconfig",
            "lora config",
        ],
        LoraConfig,
        Confidence::High,
    ),
    (
        &[
            "dataset_too_few_examples",
            "too few examples",
            "at least 10",
            "dataset is empty",
            "num_samples=0",
            "num_samples should be a positive integer",
            "0 examples",
        ],
        DatasetTooSmall,
        Confidence::High,
    ),
    (
        &[
            "ollama_response_invalid",
            "could not be parsed",
            "invalid response",
            "malformed json from",
            "llm response",
        ],
        LlmResponseInvalid,
        Confidence::High,
    ),
    (
        &[
            "dataset_upload_invalid",
            "jsondecodeerror",
            "expecting value",
            "expecting ',' delimiter",
            "keyerror: 'instruction'",
            "keyerror: 'messages'",
            "keyerror: 'text'",
            "invalid json",
            "missing field",
            "datasetgenerationerror",
            "arrowinvalid",
            "dataset line",
        ],
        DatasetFormat,
        Confidence::Medium,
    ),
    (
        &[
            "429",
            "too many requests",
            "rate limit",
            "ratelimit",
            "rate_limit",
            "quota exceeded",
        ],
        RateLimit,
        Confidence::High,
    ),
    (
        &[
            "401",
            "unauthorized",
            "invalid api key",
            "incorrect api key",
            "authentication failed",
            "invalid token",
            "api_key_invalid",
            "api_key_missing",
            "no api key",
        ],
        AuthFailed,
        Confidence::High,
    ),
    (
        &[
            "timed out",
            "timeout",
            "readtimeout",
            "connecttimeout",
            "deadline exceeded",
            "504 gateway",
        ],
        NetworkTimeout,
        Confidence::High,
    ),
    (
        &[
            "connection refused",
            "connection reset",
            "name or service not known",
            "temporary failure in name resolution",
            "network is unreachable",
            "no route to host",
            "failed to establish a new connection",
            "connecterror",
            "dns error",
            "502 bad gateway",
            "503 service unavailable",
        ],
        NetworkUnreachable,
        Confidence::High,
    ),
];

/// The first rule matching `text` (lower-cased), refined by the phase.
pub fn classify(text: &str, phase: ErrorPhase) -> Option<(ErrorType, Confidence)> {
    let (t, c) = RULES
        .iter()
        .find(|(frags, _, _)| frags.iter().any(|f| text.contains(f)))
        .map(|(_, t, c)| (*t, *c))?;
    let t = match (t, phase) {
        (OomTraining, ErrorPhase::Evaluation) => OomEval,
        (OomTraining, ErrorPhase::ModelLoad) => OomModelLoad,
        (OomCpu, ErrorPhase::ModelLoad) => OomModelLoad,
        (other, _) => other,
    };
    Some((t, c))
}

/// Where it happened, when the caller did not say.
pub fn infer_phase(text: &str) -> ErrorPhase {
    let has = |fs: &[&str]| fs.iter().any(|f| text.contains(f));
    if has(&[
        "evaluat",
        "eval_loss",
        "eval loss",
        "validation loss",
        "during eval",
    ]) {
        ErrorPhase::Evaluation
    } else if has(&[
        "from_pretrained",
        "loading checkpoint shards",
        "load_state_dict",
        "while loading",
        "loading the model",
        "model load",
        "config.json",
        "safetensors",
    ]) {
        ErrorPhase::ModelLoad
    } else if has(&["checkpoint"]) {
        ErrorPhase::Checkpoint
    } else if has(&["export", "merge_and_unload", "adapter_model"]) {
        ErrorPhase::Export
    } else if has(&["chat/completions", "ollama", "llm", "generation"]) {
        ErrorPhase::Generation
    } else if has(&["dataset", "jsonl", "tokeniz"]) {
        ErrorPhase::DataLoad
    } else if has(&[
        "backward",
        "optimizer",
        "step ",
        "loss",
        "training",
        "forward",
    ]) {
        ErrorPhase::Training
    } else {
        ErrorPhase::Unknown
    }
}

pub fn code_of_type(t: ErrorType) -> ErrorCode {
    match t {
        OomTraining | OomEval | OomModelLoad | OomCpu | ProcessKilled => ErrorCode::TrainingOom,
        Diverged => ErrorCode::TrainingDiverged,
        CudaError | Distributed | Interrupted => ErrorCode::TrainingInterrupted,
        CudaDriver | NoGpu | PrecisionUnsupported => ErrorCode::TrainingNoGpu,
        DiskFull | PermissionDenied => ErrorCode::FileUploadFailed,
        CheckpointCorrupted | CheckpointMissing => ErrorCode::CheckpointNotFound,
        ModelNotFound => ErrorCode::ModelNotFound,
        ModelAccessDenied => ErrorCode::ModelAccessDenied,
        ModelUnsupportedArch => ErrorCode::ModelUnsupportedArch,
        ModelMismatch | TokenizerConfig => ErrorCode::TrainingModelLoadFailed,
        DatasetFormat | SequenceTooLong | LoraConfig => ErrorCode::ValidationError,
        DatasetTooSmall => ErrorCode::DatasetTooFewExamples,
        NetworkTimeout => ErrorCode::OllamaApiTimeout,
        NetworkUnreachable => ErrorCode::OllamaApiError,
        RateLimit => ErrorCode::OllamaApiRateLimit,
        AuthFailed => ErrorCode::OllamaApiKeyInvalid,
        LlmResponseInvalid => ErrorCode::OllamaResponseInvalid,
        Unknown => ErrorCode::InternalError,
    }
}

/// The type a catalog code implies, when the text says nothing recognisable.
pub fn type_of_code(c: ErrorCode) -> Option<ErrorType> {
    Some(match c {
        ErrorCode::TrainingOom => OomTraining,
        ErrorCode::TrainingDiverged => Diverged,
        ErrorCode::TrainingNoGpu | ErrorCode::GpuNotAvailable => NoGpu,
        ErrorCode::TrainingInterrupted => Interrupted,
        ErrorCode::TrainingModelLoadFailed => ModelMismatch,
        ErrorCode::ModelNotFound => ModelNotFound,
        ErrorCode::ModelAccessDenied => ModelAccessDenied,
        ErrorCode::ModelUnsupportedArch => ModelUnsupportedArch,
        ErrorCode::CheckpointNotFound => CheckpointMissing,
        ErrorCode::DatasetTooFewExamples => DatasetTooSmall,
        ErrorCode::DatasetUploadInvalid | ErrorCode::DatasetNoChunks => DatasetFormat,
        ErrorCode::OllamaApiTimeout => NetworkTimeout,
        ErrorCode::OllamaApiRateLimit => RateLimit,
        ErrorCode::OllamaApiKeyInvalid | ErrorCode::OllamaApiKeyMissing => AuthFailed,
        ErrorCode::OllamaApiError => NetworkUnreachable,
        ErrorCode::OllamaResponseInvalid => LlmResponseInvalid,
        ErrorCode::GpuVramInsufficient => OomTraining,
        _ => return None,
    })
}

/// Numbers a message states that suggestions can use.
#[derive(Debug, Default, Clone)]
pub struct Facts {
    /// "Tried to allocate 2.00 GiB" in bytes.
    pub tried_bytes: Option<f64>,
    /// "(1234 > 512)": the sequence length seen and the maximum.
    pub seq_len: Option<(u64, u64)>,
    /// "at step 17".
    pub step: Option<u64>,
}

fn re(cell: &'static OnceLock<Option<Regex>>, pattern: &str) -> Option<&'static Regex> {
    cell.get_or_init(|| Regex::new(pattern).ok()).as_ref()
}

pub fn facts(text: &str) -> Facts {
    static ALLOC: OnceLock<Option<Regex>> = OnceLock::new();
    static SEQ: OnceLock<Option<Regex>> = OnceLock::new();
    static STEP: OnceLock<Option<Regex>> = OnceLock::new();
    let mut f = Facts::default();
    if let Some(c) = re(
        &ALLOC,
        r"(?i)tried to allocate ([0-9.]+) ?(gib|mib|kib|gb|mb|b)",
    )
    .and_then(|r| r.captures(text))
    {
        let n: f64 = c[1].parse().unwrap_or(0.0);
        let unit = match c[2].to_lowercase().as_str() {
            "gib" | "gb" => 1024f64.powi(3),
            "mib" | "mb" => 1024f64.powi(2),
            "kib" => 1024.0,
            _ => 1.0,
        };
        f.tried_bytes = Some(n * unit);
    }
    if let Some(c) = re(&SEQ, r"\((\d+) > (\d+)\)").and_then(|r| r.captures(text)) {
        if let (Ok(a), Ok(b)) = (c[1].parse(), c[2].parse()) {
            f.seq_len = Some((a, b));
        }
    }
    if let Some(c) = re(&STEP, r"(?i)\bstep[ =:]+(\d+)").and_then(|r| r.captures(text)) {
        f.step = c[1].parse().ok();
    }
    f
}
