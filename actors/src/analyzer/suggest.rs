//! Concrete suggestions, computed from the job's config.
//!
//! Suggestions name the job config's own keys and carry the exact new values in
//! `config_changes` (e.g. batch 8 -> 4 with gradient accumulation 2 -> 4: same effective
//! batch). Without a config they stay specific but invent no numbers. Failures of the LLM
//! service (dataset generation) are answered in `suggest_generation` with the generation
//! config's keys.

use serde_json::{json, Value};
use tunewright_schemas::{ErrorPhase, ErrorType, Json, Suggestion};

use super::config_keys::ConfigKind;
use super::facts::Facts;
use super::suggest_generation;
use super::suggestion::{gib, int, num, s, Config};
use ErrorType::*;

fn oom(c: Option<&Config>, eval: bool) -> Vec<Suggestion> {
    let mut out = Vec::new();
    // tunewright evaluates in micro-batches of the training's size: one key for both.
    let batch_key = "per_device_train_batch_size";
    let batch = int(c, batch_key);
    let accum = int(c, "gradient_accumulation_steps").unwrap_or(1);
    match batch {
        Some(b) if b > 1 => {
            let (nb, na) = (b / 2, accum * 2);
            let why = if eval {
                "evaluation runs in micro-batches of this size, so this halves its activation memory"
            } else {
                "activation memory halves"
            };
            out.push(s(
                "Halve the micro-batch and double gradient accumulation",
                format!("per_device_train_batch_size {b} -> {nb} with gradient_accumulation_steps {accum} -> {na}: the effective batch stays {} while {why}.", b * accum),
                json!({"per_device_train_batch_size": nb, "gradient_accumulation_steps": na}),
            ));
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

pub fn suggestions(
    t: ErrorType,
    phase: ErrorPhase,
    c: Option<&Config>,
    f: &Facts,
) -> Vec<Suggestion> {
    let v = suggest_generation::suggestions(t, phase, c, f).unwrap_or_else(|| by_type(t, c, f));
    if phase == ErrorPhase::Generation {
        in_generation_terms(v, c)
    } else {
        v
    }
}

/// A failure during dataset generation is the LLM service's or the dataset job's, and a
/// dataset job's config has no training keys (device, batch size): such a change stays advice
/// for whoever runs the service, never a change to the job.
fn in_generation_terms(mut v: Vec<Suggestion>, c: Option<&Config>) -> Vec<Suggestion> {
    let base = c.map(|c| Value::Object(c.clone()));
    for s in &mut v {
        let accepted = s
            .config_changes
            .0
            .as_object()
            .is_some_and(|ch| ConfigKind::Generation.accepts(base.as_ref(), ch));
        if !accepted {
            s.config_changes = Json(json!({}));
        }
    }
    v
}

fn by_type(t: ErrorType, c: Option<&Config>, f: &Facts) -> Vec<Suggestion> {
    match t {
        OomTraining => oom(c, false),
        OomEval => oom(c, true),
        OomModelLoad => vec![
            s("Load the base model in bf16 on the GPU", "bf16 halves the memory of the frozen base weights compared with f32.".into(), json!({"device": "cuda"})),
            s("Use a smaller base model", "The base weights must fit in device memory with room for activations (an inference server also needs room for its KV cache).".into(), json!({})),
        ],
        OomCpu | ProcessKilled => {
            let mut v = oom(c, false);
            v.insert(0, s("Check the host's memory", "Look at `dmesg` for the OOM killer and free RAM, or run on a machine with more memory.".into(), json!({})));
            v
        }
        Diverged => diverged(c),
        SequenceTooLong => sequence_too_long(f),
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
                s("Free disk space", "Remove old exports and checkpoints or move the data dir to a larger disk (or raise the disk quota).".into(), json!({})),
                s("Keep fewer checkpoints", format!("keep_checkpoints {keep} -> 1."), json!({"keep_checkpoints": 1})),
            ]
        }
        PermissionDenied => vec![s("Fix file ownership", "The service user must own its data dir and model cache (see the systemd unit's User= and StateDirectory=).".into(), json!({}))],
        CheckpointCorrupted | CheckpointMissing => vec![s("Resume from an earlier checkpoint or restart", "Damaged checkpoints are skipped for the one before; with none left, start the training again.".into(), json!({}))],
        CheckpointIncomplete => checkpoint_incomplete(c),
        ModelNotFound => vec![s("Point base_model at a local Hugging Face checkpoint", "The directory must hold config.json, model*.safetensors and tokenizer.json (an adapter checkpoint alone is not a base model).".into(), json!({}))],
        ModelAccessDenied => vec![s("Download the model with an account that has access", "Accept the model's licence on the hub, download it, and point base_model at the local directory.".into(), json!({}))],
        ModelUnsupportedArch => vec![s("Use a model of a supported family", "config.json's architectures must be one of LlamaForCausalLM, MistralForCausalLM, Qwen2ForCausalLM, Qwen3ForCausalLM, Phi3ForCausalLM, Gemma2ForCausalLM or Gemma3ForCausalLM (Llama 1-3, Mistral, Qwen2/2.5, Qwen3, Phi-3/4, Gemma 2/3).".into(), json!({}))],
        ModelMismatch => vec![s("Use the adapter with its own base model", "Check base_model_name_or_path in adapter_config.json against base_model, and the vocabulary size if tokens were added.".into(), json!({}))],
        TokenizerConfig => vec![s("Fix the tokenizer files", "tokenizer_config.json needs eos_token (and pad_token, or it defaults to eos) and a chat_template for chat data; token ids must stay below the model's vocab_size.".into(), json!({}))],
        ChatRoles => vec![s("Fix the conversations' role order", "Each messages list must alternate user/assistant (an optional system message first) and end with the assistant; for a model without a system role, merge the system text into the first user turn.".into(), json!({}))],
        DatasetFormat => vec![s("Fix the dataset lines", "Each JSONL line needs instruction/output (alpaca), messages (chat) or prompt/completion.".into(), json!({}))],
        DatasetTooSmall => vec![s("Add examples", "At least 10 valid examples are needed; a few hundred give useful adapters.".into(), json!({}))],
        LoraConfig => vec![s("Target the model's projection modules", "For Llama: q_proj, k_proj, v_proj, o_proj (and gate_proj, up_proj, down_proj).".into(), json!({"target_modules": ["q_proj", "k_proj", "v_proj", "o_proj"]}))],
        DeviceMismatch => vec![s("Keep the model and its inputs on one device", "Set device explicitly (cpu or cuda) rather than auto; with tunewright's own trainer a mixed-device tensor is a bug: report it with the job's events.".into(), json!({}))],
        DtypeMismatch => vec![s("Load the base model and the adapter in one precision", "The adapter must be applied in the dtype it was trained in; tunewright trains in bf16 on the GPU and f32 on the CPU.".into(), json!({}))],
        NoGradient => vec![s("Make the adapter trainable", "target_modules must name layers the model has, so that LoRA weights exist and require grad; with gradient checkpointing the inputs must require grad.".into(), json!({}))],
        DependencyMissing => vec![s("Install the package the message names", "Install (or upgrade to) the version the message asks for in the environment that runs the job.".into(), json!({}))],
        Stalled => vec![
            s("Check the storage the job reads", "A worker that stops in model load is usually waiting on a network mount or a file that never finishes reading: check that the base model's directory and the data directory answer (`ls`, `dd` of a weights file) and copy the model to local disk.".into(), json!({})),
            s("Let it resume", "A stalled training is killed and resumes from its last checkpoint automatically within its retry budget; `checkpoint_every_steps` bounds what a stall can cost.".into(), json!({})),
        ],
        Interrupted => vec![s("Resume the job", "Interrupted trainings resume from their last checkpoint automatically within the restart budget.".into(), json!({}))],
        // The LLM service's types are answered by `suggest_generation`.
        NetworkTimeout | NetworkUnreachable | RateLimit | AuthFailed | LlmResponseInvalid
        | LlmModelNotFound | LlmServerError => Vec::new(),
        Unknown => vec![s("Read the job's events", "`tunewright replay list --stream JOB` shows its attempts, failures and last log lines.".into(), json!({}))],
    }
}

fn diverged(c: Option<&Config>) -> Vec<Suggestion> {
    let mut v = Vec::new();
    match num(c, "learning_rate") {
        Some(lr) => v.push(s(
            "Lower the learning rate tenfold",
            format!("learning_rate {lr:e} -> {:e}.", lr / 10.0),
            json!({"learning_rate": lr / 10.0}),
        )),
        None => v.push(s(
            "Lower the learning rate",
            "Divide learning_rate by 10 (LoRA commonly trains at 1e-4 to 3e-4).".into(),
            json!({}),
        )),
    }
    let warm = int(c, "warmup_steps").unwrap_or(0);
    let target = int(c, "max_steps")
        .map(|m| (m / 10).max(warm * 2))
        .unwrap_or((warm * 2).max(100));
    if target > warm {
        v.push(s(
            "Warm up longer",
            format!("warmup_steps {warm} -> {target}."),
            json!({"warmup_steps": target}),
        ));
    }
    let clip = num(c, "max_grad_norm");
    if clip.is_none_or(|g| g > 1.0 || g <= 0.0) {
        v.push(s(
            "Clip gradients",
            format!(
                "max_grad_norm {} -> 1.0.",
                clip.map(|g| g.to_string())
                    .unwrap_or_else(|| "unset".into())
            ),
            json!({"max_grad_norm": 1.0}),
        ));
    }
    v.push(s(
        "Resume from the last good checkpoint",
        "Continue from the checkpoint before the divergence with the lower learning rate.".into(),
        json!({}),
    ));
    v
}

/// The largest max_seq_length a train config accepts.
const MAX_SEQ_LENGTH: u64 = 1_048_576;

fn sequence_too_long(f: &Facts) -> Vec<Suggestion> {
    let mut v = Vec::new();
    if let Some((seen, _)) = f.seq_len {
        let next = seen
            .checked_next_power_of_two()
            .filter(|n| *n <= MAX_SEQ_LENGTH);
        if let Some(next) = next {
            v.push(s("Raise max_seq_length to fit the examples", format!("max_seq_length -> {next} fits an example of {seen} tokens (memory grows with it)."), json!({"max_seq_length": next})));
        }
    }
    v.push(s("Drop or split over-long examples", "Pre-flight drops examples longer than max_seq_length and counts them; shorten them in the dataset to keep them.".into(), json!({})));
    v
}

fn checkpoint_incomplete(c: Option<&Config>) -> Vec<Suggestion> {
    let mut v = vec![s("Resume from the checkpoint before it", "A checkpoint cut off while being written lacks its state files; the one before it is complete (or restart the training).".into(), json!({}))];
    if let Some(keep) = int(c, "keep_checkpoints").filter(|k| *k < 2) {
        v.push(s("Keep more than one checkpoint", format!("keep_checkpoints {keep} -> 3: an earlier complete checkpoint survives a cut-off save."), json!({"keep_checkpoints": 3})));
    }
    v
}
