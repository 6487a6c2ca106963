//! Descriptions and concrete suggestions, computed from the job's config.
//!
//! Suggestions name Hugging Face config keys and carry the exact new values in
//! `config_changes` (e.g. batch 8 -> 4 with gradient accumulation 2 -> 4: same effective
//! batch). Without a config they stay specific but invent no numbers.

use serde_json::{json, Map, Value};
use tunewright_schemas::{ErrorPhase, ErrorType, Json, Suggestion};

use super::rules::Facts;
use ErrorType::*;

type Config = Map<String, Value>;

fn num(c: Option<&Config>, key: &str) -> Option<f64> {
    c?.get(key)?.as_f64()
}

fn int(c: Option<&Config>, key: &str) -> Option<u64> {
    c?.get(key)?.as_u64()
}

fn s(action: &str, detail: String, changes: Value) -> Suggestion {
    Suggestion {
        action: action.into(),
        detail,
        config_changes: Json(changes),
    }
}

fn gib(bytes: f64) -> String {
    format!("{:.2} GiB", bytes / 1024f64.powi(3))
}

pub fn describe(t: ErrorType, phase: ErrorPhase, f: &Facts) -> String {
    let alloc = f
        .tried_bytes
        .map(|b| format!(" (it tried to allocate {} more)", gib(b)))
        .unwrap_or_default();
    match t {
        OomTraining => format!("CUDA ran out of memory during training{alloc}: activations, gradients and optimizer state of one micro-batch do not fit on the GPU."),
        OomEval => format!("CUDA ran out of memory during evaluation{alloc}: the evaluation batch does not fit on the GPU."),
        OomModelLoad => format!("Out of memory while loading the model{alloc}: the base weights alone do not fit in the memory available."),
        OomCpu => "The host ran out of RAM: a CPU allocation failed.".into(),
        Diverged => match f.step {
            Some(step) => format!("The loss became NaN or infinite at step {step}: training diverged, usually from a learning rate that is too high."),
            None => "The loss became NaN or infinite: training diverged, usually from a learning rate that is too high.".into(),
        },
        CudaError => "A CUDA kernel failed (illegal access, device-side assert or library error). The CUDA context is unusable until the process restarts.".into(),
        CudaDriver => "The NVIDIA driver is missing or too old for the CUDA runtime that libtorch uses.".into(),
        NoGpu => "No usable CUDA GPU was found, but the job asked for one.".into(),
        Distributed => "A collective operation between processes (NCCL) failed or timed out.".into(),
        DiskFull => "The disk is full: checkpoints, exports or uploads could not be written.".into(),
        PermissionDenied => "A file or directory could not be accessed: permission denied.".into(),
        CheckpointCorrupted => "A checkpoint or weights file is damaged (bad header, truncated, or its hash does not match).".into(),
        CheckpointMissing => "No usable checkpoint was found to resume from.".into(),
        ModelNotFound => "The base model could not be found at the given path or name.".into(),
        ModelAccessDenied => "Access to the model was refused (gated or private repository).".into(),
        ModelUnsupportedArch => "The model's architecture is not supported for fine-tuning here.".into(),
        ModelMismatch => "Weights do not match the model's configuration (shape or key mismatch): the adapter or checkpoint belongs to a different base model.".into(),
        TokenizerConfig => "The tokenizer is misconfigured (missing pad/eos token or chat template).".into(),
        DatasetFormat => "The dataset is not in an accepted format (alpaca, messages or prompt/completion JSONL).".into(),
        DatasetTooSmall => "The dataset has too few usable examples to train on.".into(),
        SequenceTooLong => match f.seq_len {
            Some((seen, max)) => format!("An example has {seen} tokens, more than the maximum of {max}."),
            None => "Examples are longer than the maximum sequence length.".into(),
        },
        LoraConfig => "The LoRA configuration does not fit the model (target modules, rank).".into(),
        PrecisionUnsupported => "The requested precision (bf16/fp16) is not supported on this device.".into(),
        NetworkTimeout => "A network call timed out.".into(),
        NetworkUnreachable => "The remote service could not be reached.".into(),
        RateLimit => "The remote service is rate limiting requests.".into(),
        AuthFailed => "The remote service rejected the credentials.".into(),
        LlmResponseInvalid => "The LLM's answer was not valid JSON, even after repair.".into(),
        ProcessKilled => "The process was killed (SIGKILL), most often by the kernel's out-of-memory killer.".into(),
        Interrupted => "The run was interrupted (signal, crash or restart) before it finished.".into(),
        Unknown => format!("The failure was not recognised (phase: {}).", phase.as_str()),
    }
}

fn oom(c: Option<&Config>, eval: bool) -> Vec<Suggestion> {
    let mut out = Vec::new();
    let batch_key = if eval {
        "per_device_eval_batch_size"
    } else {
        "per_device_train_batch_size"
    };
    let batch = int(c, batch_key).or_else(|| {
        if eval {
            int(c, "per_device_train_batch_size")
        } else {
            None
        }
    });
    let accum = int(c, "gradient_accumulation_steps").unwrap_or(1);
    match batch {
        Some(b) if b > 1 => {
            let nb = b / 2;
            if eval {
                out.push(s("Halve the evaluation batch", format!("{batch_key} {b} -> {nb}; evaluation keeps no gradients, so this halves its activation memory."), json!({batch_key: nb})));
            } else {
                let na = accum * 2;
                out.push(s(
                    "Halve the micro-batch and double gradient accumulation",
                    format!("per_device_train_batch_size {b} -> {nb} with gradient_accumulation_steps {accum} -> {na}: the effective batch stays {} while activation memory halves.", b * accum),
                    json!({"per_device_train_batch_size": nb, "gradient_accumulation_steps": na}),
                ));
            }
        }
        Some(_) => {}
        None => out.push(s("Reduce the micro-batch", format!("Lower {batch_key} and raise gradient_accumulation_steps by the same factor to keep the effective batch."), json!({}))),
    }
    match int(c, "max_seq_length") {
        Some(l) if l >= 256 => out.push(s("Shorten the maximum sequence length", format!("max_seq_length {l} -> {}: attention and activation memory grow with sequence length.", l / 2), json!({"max_seq_length": l / 2}))),
        Some(_) => {}
        None => out.push(s("Shorten the maximum sequence length", "Set max_seq_length to the length most examples need (e.g. the 95th percentile).".into(), json!({}))),
    }
    // QLoRA: a TRAINING_OOM failure's context carries the base weights' bytes as held and as
    // 4-bit (`base_weights_bytes`, `base_weights_bytes_4bit`); read from the same map.
    if c.and_then(|c| c.get("load_in_4bit"))
        .and_then(Value::as_bool)
        != Some(true)
    {
        let saved = match (
            int(c, "base_weights_bytes"),
            int(c, "base_weights_bytes_4bit"),
        ) {
            (Some(now), Some(q)) if now > q => format!(
                " This model's frozen weights take {}; in 4 bits they would take {}, saving {}.",
                gib(now as f64),
                gib(q as f64),
                gib((now - q) as f64)
            ),
            _ => String::new(),
        };
        out.push(s("Load the base model in 4 bits (QLoRA)", format!("load_in_4bit: true stores the frozen linear weights as NF4 blocks and dequantizes them per use; LoRA weights and optimizer state stay in full precision.{saved}"), json!({"load_in_4bit": true})));
    }
    if !eval
        && c.and_then(|c| c.get("gradient_checkpointing"))
            .and_then(Value::as_bool)
            != Some(true)
    {
        out.push(s("Enable gradient checkpointing", "Recompute activations in the backward pass instead of storing them (about 30% slower, far less memory).".into(), json!({"gradient_checkpointing": true})));
    }
    if let Some(r) = int(c, "lora_r").filter(|r| *r > 8) {
        out.push(s("Lower the LoRA rank", format!("lora_r {r} -> {} (and lora_alpha in proportion) shrinks adapter weights and optimizer state.", r / 2), json!({"lora_r": r / 2})));
    }
    out
}

pub fn suggestions(t: ErrorType, c: Option<&Config>, f: &Facts) -> Vec<Suggestion> {
    match t {
        OomTraining => oom(c, false),
        OomEval => oom(c, true),
        OomModelLoad => vec![
            s("Load the base model in bf16 on the GPU", "bf16 halves the memory of the frozen base weights compared with f32.".into(), json!({"device": "cuda"})),
            s("Use a smaller base model", "The base weights must fit in device memory with room for activations.".into(), json!({})),
        ],
        OomCpu | ProcessKilled => {
            let mut v = oom(c, false);
            v.insert(0, s("Check the host's memory", "Look at `dmesg` for the OOM killer and free RAM, or run on a machine with more memory.".into(), json!({})));
            v
        }
        Diverged => {
            let mut v = Vec::new();
            match num(c, "learning_rate") {
                Some(lr) => v.push(s("Lower the learning rate tenfold", format!("learning_rate {lr:e} -> {:e}.", lr / 10.0), json!({"learning_rate": lr / 10.0}))),
                None => v.push(s("Lower the learning rate", "Divide learning_rate by 10 (LoRA commonly trains at 1e-4 to 3e-4).".into(), json!({}))),
            }
            let warm = int(c, "warmup_steps").unwrap_or(0);
            let target = int(c, "max_steps").map(|m| (m / 10).max(warm * 2)).unwrap_or((warm * 2).max(100));
            if target > warm {
                v.push(s("Warm up longer", format!("warmup_steps {warm} -> {target}."), json!({"warmup_steps": target})));
            }
            let clip = num(c, "max_grad_norm");
            if clip.is_none_or(|g| g > 1.0 || g <= 0.0) {
                v.push(s("Clip gradients", format!("max_grad_norm {} -> 1.0.", clip.map(|g| g.to_string()).unwrap_or_else(|| "unset".into())), json!({"max_grad_norm": 1.0})));
            }
            v.push(s("Resume from the last good checkpoint", "Continue from the checkpoint before the divergence with the lower learning rate.".into(), json!({})));
            v
        }
        SequenceTooLong => {
            let mut v = Vec::new();
            if let Some((seen, _)) = f.seq_len {
                let next = seen.next_power_of_two();
                v.push(s("Raise max_seq_length to fit the examples", format!("max_seq_length -> {next} fits an example of {seen} tokens (memory grows with it)."), json!({"max_seq_length": next})));
            }
            v.push(s("Drop or split over-long examples", "Pre-flight drops examples longer than max_seq_length and counts them; shorten them in the dataset to keep them.".into(), json!({})));
            v
        }
        NoGpu | CudaDriver | PrecisionUnsupported => vec![
            s("Train on the CPU", "device=cpu trains in f32 without a GPU (much slower; fine for small models).".into(), json!({"device": "cpu"})),
            s("Check the GPU stack", "`nvidia-smi` must list the GPU; the driver must support the CUDA version of libtorch (see GET /api/v1/hardware).".into(), json!({})),
        ],
        CudaError => vec![
            s("Restart the job (it resumes from its last checkpoint)", "A failed CUDA context cannot be reused; a new worker process starts clean.".into(), json!({})),
            s("Debug with synchronous kernels", "Set CUDA_LAUNCH_BLOCKING=1 to make the failing kernel show in the trace.".into(), json!({})),
        ],
        Distributed => vec![s("Check the interconnect and NCCL settings", "Set NCCL_DEBUG=INFO; make sure all ranks can reach each other; raise the collective timeout.".into(), json!({}))],
        DiskFull => {
            let keep = int(c, "keep_checkpoints").unwrap_or(3);
            vec![
                s("Free disk space", "Remove old exports and checkpoints or move the data dir to a larger disk.".into(), json!({})),
                s("Keep fewer checkpoints", format!("keep_checkpoints {keep} -> 1."), json!({"keep_checkpoints": 1})),
            ]
        }
        PermissionDenied => vec![s("Fix file ownership", "The service user must own its data dir (see the systemd unit's User= and StateDirectory=).".into(), json!({}))],
        CheckpointCorrupted | CheckpointMissing => vec![s("Resume from an earlier checkpoint or restart", "Damaged checkpoints are skipped for the one before; with none left, start the training again.".into(), json!({}))],
        ModelNotFound => vec![s("Point base_model at a local Hugging Face checkpoint", "The directory must hold config.json, model*.safetensors and tokenizer.json.".into(), json!({}))],
        ModelAccessDenied => vec![s("Download the model with an account that has access", "Accept the model's licence on the hub, download it, and point base_model at the local directory.".into(), json!({}))],
        ModelUnsupportedArch => vec![s("Use a Llama-family model", "LlamaForCausalLM checkpoints (Llama 2/3, TinyLlama, SmolLM, ...) are supported.".into(), json!({}))],
        ModelMismatch => vec![s("Use the adapter with its own base model", "Check base_model_name_or_path in adapter_config.json against base_model.".into(), json!({}))],
        TokenizerConfig => vec![s("Fix the tokenizer files", "tokenizer_config.json needs eos_token (and pad_token, or it defaults to eos) and a chat_template for chat data.".into(), json!({}))],
        DatasetFormat => vec![s("Fix the dataset lines", "Each JSONL line needs instruction/output (alpaca), messages (chat) or prompt/completion.".into(), json!({}))],
        DatasetTooSmall => vec![s("Add examples", "At least 10 valid examples are needed; a few hundred give useful adapters.".into(), json!({}))],
        LoraConfig => vec![s("Target the model's projection modules", "For Llama: q_proj, k_proj, v_proj, o_proj (and gate_proj, up_proj, down_proj).".into(), json!({"target_modules": ["q_proj", "k_proj", "v_proj", "o_proj"]}))],
        NetworkTimeout => vec![s("Retry later or raise the timeout", "Transient timeouts are retried automatically with backoff; a slow local model may need a longer timeout_secs.".into(), json!({}))],
        NetworkUnreachable => vec![s("Check the service URL", "TUNEWRIGHT_LLM_BASE_URL must reach an OpenAI-compatible server (e.g. http://127.0.0.1:11434/v1 for Ollama).".into(), json!({}))],
        RateLimit => vec![s("Wait and retry", "Rate-limited calls are retried honouring Retry-After; lower the request rate or raise your quota.".into(), json!({}))],
        AuthFailed => vec![s("Set a valid API key", "Set TUNEWRIGHT_LLM_API_KEY (or the job's api_key) to a key the service accepts.".into(), json!({}))],
        LlmResponseInvalid => vec![s("Use a stronger model or smaller chunks", "Invalid JSON after repair usually means the model cannot follow the format: try a larger model or a smaller chunk_tokens.".into(), json!({}))],
        Interrupted => vec![s("Resume the job", "Interrupted trainings resume from their last checkpoint automatically within the restart budget.".into(), json!({}))],
        Unknown => vec![s("Read the job's events", "`tunewright replay list --stream JOB` shows its attempts, failures and last log lines.".into(), json!({}))],
    }
}
