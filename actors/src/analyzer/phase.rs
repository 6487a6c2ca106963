//! Where a failure happened, when the caller did not say: first from the text (a frame in
//! `evaluation_loop`, "Loading checkpoint shards", a chat-completions URL), then from what the
//! failure is (a missing CUDA driver is found before anything runs).

use std::sync::OnceLock;

use regex::RegexSet;
use tunewright_schemas::{ErrorPhase, ErrorType};

use ErrorPhase::*;

/// Evidence per phase, checked in this order (an evaluation inside a training run is an
/// evaluation; loading checkpoint *shards* is loading the model, not resuming).
const EVIDENCE: &[(ErrorPhase, &[&str])] = &[
    (
        Preflight,
        &[r"preflight", r"pre-flight", r"invalid request"],
    ),
    (
        Evaluation,
        &[
            r"evaluation_loop",
            r"\bevaluate\b",
            r"_evaluate\b",
            r"evaluate_\w+",
            r"evaluating",
            r"\beval(uate)?\.py\b",
            r"during eval",
            r"eval_loss",
            r"eval loss",
            r"evaluation (step|phase|loop|stage)",
            r"validation (loss|step|loop|phase)",
            r"prediction_step",
            r"评估",
        ],
    ),
    (
        ModelLoad,
        &[
            r"from_pretrained",
            r"loading checkpoint shards",
            r"load_state_dict",
            r"while loading",
            r"loading (the )?model",
            r"model load",
            r"load(ing)? (the )?weights",
            r"\bload_model\b",
            r"_load_pretrained_model",
            r"llama_model_load",
            r"failed to load model",
            r"\bload(ing)? model\b",
            r"加载模型|模型加载",
            r"\b(can ?not|cannot|can'?t|could not|couldn'?t|unable to) load\b[^\n]{0,40}\bmodel\b",
            r"model weights",
            r"alloc_buffer",
            r"load_tensors",
            // Placing the model on its devices.
            r"accelerator\.prepare",
            r"prepare_model\b",
        ],
    ),
    (
        Checkpoint,
        &[
            r"\bresum(e|ing)\b",
            r"trainer_state",
            r"save_checkpoint",
            r"saving (model )?checkpoint",
            r"load_from_checkpoint",
            r"checkpoint-\d+",
            r"checkpoints?/step-\d+",
            r"no usable checkpoint",
        ],
    ),
    (
        Export,
        &[
            r"\bexport",
            r"merge_and_unload",
            r"merg(e|ing) (the )?(lora|adapter|weights)",
            r"save_pretrained",
            r"convert[-_ ]?hf[-_ ]to[-_ ]gguf",
            r"\bgguf\b",
            r"ollama create",
            r"合并",
            r"push_to_hub",
        ],
    ),
    (
        Generation,
        &[
            r"chat/completions",
            r"/api/(chat|generate)",
            r"\bollama\b",
            // "llm" as a word, not a directory of that name.
            r"(^|[^/\w])llm([^/\w]|$)",
            r"\bopenai\b",
            r"\bcompletions?\b",
            r"\bapi[_ ]key\b",
            r":11434\b",
            r"llama runner",
            r"\bvllm\b",
            r"litellm",
            r"dataset generation",
        ],
    ),
    (
        DataLoad,
        &[
            r"\bdatasets?\b",
            r"\.jsonl?\b",
            r"tokeniz",
            r"load_dataset",
            r"generating train split",
            r"data_files",
            r"collat",
            r"preprocess",
            r"\barrow",
        ],
    ),
    (
        Training,
        &[
            r"\bbackward\b",
            r"optimizer",
            r"training_step",
            r"\bstep\b",
            r"\bloss\b",
            r"\btrain(ing|er)?\b",
            r"\bepoch\b",
            r"\bforward\b",
            r"it/s\]",
            r"grad_norm",
        ],
    ),
];

fn compiled() -> Option<&'static (RegexSet, Vec<ErrorPhase>)> {
    static CELL: OnceLock<Option<(RegexSet, Vec<ErrorPhase>)>> = OnceLock::new();
    CELL.get_or_init(|| {
        let mut patterns = Vec::new();
        let mut phase_of = Vec::new();
        for (phase, ps) in EVIDENCE {
            for p in *ps {
                patterns.push(*p);
                phase_of.push(*phase);
            }
        }
        Some((RegexSet::new(&patterns).ok()?, phase_of))
    })
    .as_ref()
}

/// The phase the (lower-cased, whole) text gives evidence of, or `Unknown`.
pub fn from_text(lower: &str) -> ErrorPhase {
    let Some((set, phase_of)) = compiled() else {
        return Unknown;
    };
    // Patterns are numbered in EVIDENCE order, so the smallest index is the first phase.
    set.matches(lower)
        .iter()
        .next()
        .map(|i| phase_of[i])
        .unwrap_or(Unknown)
}

/// The phase a failure of this type happens in, when the text does not say.
pub fn of_type(t: ErrorType) -> ErrorPhase {
    use ErrorType::*;
    match t {
        NoGpu | CudaDriver | PrecisionUnsupported | DependencyMissing => Preflight,
        OomModelLoad | ModelNotFound | ModelAccessDenied | ModelUnsupportedArch | ModelMismatch
        | TokenizerConfig | LoraConfig => ErrorPhase::ModelLoad,
        OomEval => Evaluation,
        OomTraining | Diverged | NoGradient | DeviceMismatch | DtypeMismatch | CudaError
        | Distributed => Training,
        CheckpointCorrupted | CheckpointMissing | CheckpointIncomplete => Checkpoint,
        DatasetFormat | DatasetTooSmall | SequenceTooLong | ChatRoles => DataLoad,
        NetworkTimeout | NetworkUnreachable | RateLimit | AuthFailed | LlmResponseInvalid
        | LlmModelNotFound | LlmServerError => Generation,
        OomCpu | DiskFull | PermissionDenied | ProcessKilled | Interrupted | Stalled | Unknown => {
            ErrorPhase::Unknown
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_and_logs_name_the_phase() {
        let t = "  file \"trainer.py\", line 4327, in evaluation_loop\ntorch.cuda.outofmemoryerror";
        assert_eq!(from_text(t), Evaluation);
        assert_eq!(from_text("loading checkpoint shards:  62%"), ModelLoad);
        assert_eq!(
            from_text("post http://127.0.0.1:11434/v1/chat/completions"),
            Generation
        );
        assert_eq!(from_text("nothing here"), Unknown);
    }

    #[test]
    fn every_type_has_a_default_phase() {
        assert_eq!(of_type(ErrorType::NoGpu), Preflight);
        assert_eq!(of_type(ErrorType::RateLimit), Generation);
        assert_eq!(of_type(ErrorType::DiskFull), ErrorPhase::Unknown);
    }
}
