//! One readable sentence per failure type, with the numbers the message stated.

use tunewright_schemas::{ErrorPhase, ErrorType};

use super::facts::Facts;
use super::suggestion::gib;
use ErrorType::*;

pub fn describe(t: ErrorType, phase: ErrorPhase, f: &Facts) -> String {
    let alloc = f
        .tried_bytes
        .map(|b| format!(" (it tried to allocate {} more)", gib(b)))
        .unwrap_or_default();
    match t {
        OomTraining => format!("CUDA ran out of memory during training{alloc}: activations, gradients and optimizer state of one micro-batch do not fit on the GPU."),
        OomEval => format!("CUDA ran out of memory during evaluation{alloc}: the evaluation batch does not fit on the GPU."),
        OomModelLoad => format!("Out of memory while loading the model{alloc}: the base weights (or an inference engine's cache) do not fit in the memory available."),
        OomCpu => "The host ran out of RAM: a CPU allocation failed.".into(),
        Diverged => match f.step {
            Some(step) => format!("The loss (or its gradient norm) became NaN or infinite at step {step}: training diverged, usually from a learning rate that is too high."),
            None => "The loss (or its gradient norm) became NaN or infinite: training diverged, usually from a learning rate that is too high.".into(),
        },
        CudaError => "A CUDA kernel failed (illegal access, device-side assert or library error). The CUDA context is unusable until the process restarts.".into(),
        CudaDriver => "The NVIDIA driver is missing or too old for the CUDA runtime in use.".into(),
        NoGpu => "No usable CUDA GPU was found, but the job asked for one.".into(),
        Distributed => "A collective operation between processes (NCCL) failed or timed out.".into(),
        DiskFull => "The disk (or the user's disk quota) is full: checkpoints, exports or downloads could not be written.".into(),
        PermissionDenied => "A file or directory could not be accessed: permission denied.".into(),
        CheckpointCorrupted => "A checkpoint or weights file is damaged (bad header, truncated, or its hash does not match).".into(),
        CheckpointMissing => "No usable checkpoint was found to resume from.".into(),
        CheckpointIncomplete => "The checkpoint to resume from lacks a state file (trainer state, optimizer or scheduler state): it was cut off while being written or saved without it.".into(),
        ModelNotFound => "The model could not be found at the given path or name (no config.json or weights there).".into(),
        ModelAccessDenied => "Access to the model was refused (gated or private repository).".into(),
        ModelUnsupportedArch => "The model's architecture is not supported by the software loading it.".into(),
        ModelMismatch => "Weights do not match the model's configuration (shape or key mismatch): the adapter or checkpoint belongs to a different base model or vocabulary size.".into(),
        TokenizerConfig => "The tokenizer does not fit the job: a missing pad/eos token or chat template, or token ids beyond the model's vocabulary.".into(),
        ChatRoles => "The conversation's roles do not fit the model's chat template (roles must alternate user/assistant, and some templates refuse a system message).".into(),
        DatasetFormat => "The dataset could not be read as an accepted format (alpaca, messages or prompt/completion JSONL): a line is not valid JSON or lacks a field.".into(),
        DatasetTooSmall => "The dataset has too few usable examples to train on (possibly none).".into(),
        SequenceTooLong => match f.seq_len {
            Some((seen, max)) => format!("An input has {seen} tokens, more than the maximum of {max}."),
            None => "Inputs are longer than the maximum sequence (or context) length.".into(),
        },
        LoraConfig => "The LoRA configuration does not fit the model (target modules, rank).".into(),
        PrecisionUnsupported => "The requested precision (bf16/fp16) is not supported on this device.".into(),
        DeviceMismatch => "Tensors of one operation are on different devices (e.g. cuda:0 and cpu): part of the model or its inputs was not moved.".into(),
        DtypeMismatch => "Tensors of one operation have different dtypes (e.g. Half and Float): the adapter, the base model and the inputs are not in one precision.".into(),
        NoGradient => "The loss has no gradient: no trainable parameter reaches it (adapters missing or frozen, or gradient checkpointing with inputs that do not require grad).".into(),
        DependencyMissing => "A Python package is missing or its version does not fit the code that imports it.".into(),
        NetworkTimeout => "A network call timed out.".into(),
        NetworkUnreachable => "The remote service could not be reached.".into(),
        RateLimit => "The remote service is rate limiting requests (or the account's quota is used up).".into(),
        AuthFailed => "The remote service rejected the credentials.".into(),
        LlmResponseInvalid => "The LLM's answer was not valid JSON of the expected shape, even after repair.".into(),
        LlmModelNotFound => "The LLM service has no model of that name (not pulled, or misspelt).".into(),
        LlmServerError => "The LLM service failed with a server error (its model runner crashed or it answered HTTP 5xx).".into(),
        ProcessKilled => "The process was killed (SIGKILL), most often by the kernel's out-of-memory killer.".into(),
        Interrupted => "The run was interrupted (signal, shutdown, cancellation or a scheduler's time limit) before it finished.".into(),
        Stalled => "The worker stopped making progress and was killed as hung: most often storage that stopped answering (a hung network mount, a model file that never finishes reading), a deadlocked data loader, or a GPU driver hang.".into(),
        Unknown => format!("The failure was not recognised (phase: {}).", phase.as_str()),
    }
}
