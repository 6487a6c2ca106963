//! Recognising failure texts: an ordered table of regular expressions over the text's signal
//! (see `signal`); the first rule with a matching pattern wins, then the phase refines it
//! (an out-of-memory during evaluation is `oom_eval`).
//!
//! Order is the knowledge: causes before the symptoms that carry them ("Killed" before any
//! "out of memory": the kernel's OOM killer prints both; a CUDA out-of-memory before "CUDA
//! error"; a device mismatch before "no GPU"), and specific phrases before the generic words
//! at the end of the table ("timeout", "killed", "KeyError: '...'") that other failures'
//! logs also contain.

use std::sync::OnceLock;

use regex::RegexSet;
use tunewright_schemas::{Confidence, ErrorPhase, ErrorType};

use super::table::RULES;
use ErrorType::*;

/// Every pattern of the table in one set, with the row each came from.
struct Compiled {
    set: RegexSet,
    row_of: Vec<usize>,
}

fn compiled() -> Option<&'static Compiled> {
    static CELL: OnceLock<Option<Compiled>> = OnceLock::new();
    CELL.get_or_init(|| {
        let mut patterns = Vec::new();
        let mut row_of = Vec::new();
        for (row, rule) in RULES.iter().enumerate() {
            for p in rule.patterns {
                patterns.push(*p);
                row_of.push(row);
            }
        }
        let set = regex::RegexSetBuilder::new(&patterns)
            .size_limit(64 << 20)
            .build()
            .ok()?;
        Some(Compiled { set, row_of })
    })
    .as_ref()
}

/// The first row whose pattern matches the signal, refined by the phase.
pub fn classify(signal: &str, phase: ErrorPhase) -> Option<(ErrorType, Confidence)> {
    let c = compiled()?;
    let row = c.set.matches(signal).iter().map(|i| c.row_of[i]).min()?;
    let rule = &RULES[row];
    Some((refine(rule.error_type, phase), rule.confidence))
}

/// What a type means in the phase it happened in.
pub fn refine(t: ErrorType, phase: ErrorPhase) -> ErrorType {
    match (t, phase) {
        (OomTraining, ErrorPhase::Evaluation) => OomEval,
        (OomTraining | OomCpu, ErrorPhase::ModelLoad) => OomModelLoad,
        // A process killed while loading weights: the kernel's OOM killer at model load.
        (ProcessKilled, ErrorPhase::ModelLoad) => OomModelLoad,
        // During dataset generation the JSON that failed to parse is the LLM's answer.
        (DatasetFormat, ErrorPhase::Generation) => LlmResponseInvalid,
        (other, _) => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_compiles() {
        // A bad pattern would make the analyzer answer "unknown" to everything.
        assert!(compiled().is_some());
    }

    #[test]
    fn the_phase_refines_memory_failures() {
        let s = "cuda out of memory. tried to allocate 2.00 gib";
        assert_eq!(classify(s, ErrorPhase::Evaluation).unwrap().0, OomEval);
        assert_eq!(classify(s, ErrorPhase::ModelLoad).unwrap().0, OomModelLoad);
        assert_eq!(classify(s, ErrorPhase::Training).unwrap().0, OomTraining);
        assert_eq!(
            classify("killed", ErrorPhase::ModelLoad).unwrap().0,
            OomModelLoad
        );
    }

    #[test]
    fn causes_win_over_the_symptoms_that_carry_them() {
        let s = "out of memory: killed process 4242 (python)";
        assert_eq!(classify(s, ErrorPhase::Unknown).unwrap().0, ProcessKilled);
        let s = "runtimeerror: cuda error: out of memory\ncuda kernel errors might be asynchronously reported";
        assert_eq!(classify(s, ErrorPhase::Unknown).unwrap().0, OomTraining);
        let s = "found at least two devices, cuda:0 and cpu!";
        assert_eq!(classify(s, ErrorPhase::Unknown).unwrap().0, DeviceMismatch);
    }

    #[test]
    fn common_failures_in_other_words_are_read() {
        for (text, want) in [
            ("runtimeerror: loss is inf", Diverged),
            ("training loss became infinite at step 40", Diverged),
            ("valueerror: example 3 has no 'messages' field", DatasetFormat),
            ("missing field 'text' in line 4 of train.jsonl", DatasetFormat),
            ("job interrupted: service shutdown", Interrupted),
            (
                "filenotfounderror: [errno 2] no such file or directory: 'out/checkpoint-500/trainer_state.json'",
                CheckpointIncomplete,
            ),
            ("llm response invalid: json repair failed", LlmResponseInvalid),
            ("failed to repair json from the model output", LlmResponseInvalid),
            ("json_repair could not fix the llm output", LlmResponseInvalid),
            ("killed", ProcessKilled),
            (
                "expected all tensors to be on the same device, but found at least two devices",
                DeviceMismatch,
            ),
            (
                "conversation roles must alternate user/assistant/user/assistant/...",
                ChatRoles,
            ),
        ] {
            let got = classify(text, ErrorPhase::Unknown).map(|(t, _)| t);
            assert_eq!(got, Some(want), "{text}");
        }
    }

    #[test]
    fn failure_modes_in_the_words_of_servers_and_libraries_are_read() {
        for (text, want) in [
            ("error: failed to start the model runner", LlmServerError),
            (
                "msg=\"runner process crashed\" exit status 2",
                LlmServerError,
            ),
            (
                "apierror: the server had an error processing your request",
                LlmServerError,
            ),
            ("error 404: no model is currently loaded", LlmModelNotFound),
            (
                "the prompt exceeds the available context size",
                SequenceTooLong,
            ),
            ("context window has been exceeded (4096)", SequenceTooLong),
            (
                "error: failed to parse model json output: eof while parsing a value",
                LlmResponseInvalid,
            ),
            ("could not find any accelerator on this machine", NoGpu),
            (
                "runtimeerror: error patching trainer for this version",
                DependencyMissing,
            ),
            (
                "could not resolve host. please check your network connection",
                NetworkUnreachable,
            ),
            (
                "gguf: unexpected end of file while reading tensor data",
                CheckpointCorrupted,
            ),
            (
                "cudnn error: could not find an engine for this convolution",
                CudaError,
            ),
            (
                "access denied: log in to hugging face with a token",
                ModelAccessDenied,
            ),
            (
                "valueerror: attempting to unscale fp16 gradients.",
                PrecisionUnsupported,
            ),
            (
                "expected input batch_size (16) to match target batch_size (12)",
                DatasetFormat,
            ),
            ("error: shard 1 failed to start", LlmServerError),
            ("backend could not start: exit code 1", LlmServerError),
            (
                "the zero optimizer states are missing for rank 3",
                CheckpointIncomplete,
            ),
            ("keyerror('param_groups')", CheckpointIncomplete),
            (
                "unable to find any valid examples in train.jsonl",
                DatasetTooSmall,
            ),
            (
                "model foo is not supported yet by vllm 0.4",
                ModelUnsupportedArch,
            ),
            ("tensor 'output_norm.weight' is missing", ModelMismatch),
            ("pad_token_id is none, cannot pad", TokenizerConfig),
            ("tf32 requires an ampere gpu", PrecisionUnsupported),
            ("'str' object has no attribute 'get'", DatasetFormat),
            (
                "nameerror: name 'automodel' is not defined",
                DependencyMissing,
            ),
            ("failed to download the weights", NetworkUnreachable),
            (
                "status 404 from http://127.0.0.1:11434/api/generate",
                LlmModelNotFound,
            ),
            ("the training loss stays at nan", Diverged),
            (
                "weights on cuda vs cpu mismatch in the projector",
                DeviceMismatch,
            ),
            (
                "unable to allocate the kv cache for n_ctx 32768",
                OomModelLoad,
            ),
            (
                "could not find tokenizer.model or pytorch_model.bin in ./out",
                ModelNotFound,
            ),
            (
                "llama_model_load: error loading vocabulary",
                TokenizerConfig,
            ),
            ("router: model warmup failed after 3 tries", LlmServerError),
            ("the api is overloaded, try again", LlmServerError),
            ("upstream returned error 503", LlmServerError),
            (
                "no columns in the dataset match the signature",
                DatasetFormat,
            ),
            ("key error 'messages'", DatasetFormat),
            ("bf16 mixed precision requires a gpu.", NoGpu),
            ("no cuda toolkit was found on this machine", NoGpu),
            ("backend startup failed, see the log", LlmServerError),
            (
                "failed to restore the lr_scheduler state",
                CheckpointIncomplete,
            ),
            (
                "401 unauthorized for url https://huggingface.co/api/whoami-v2",
                AuthFailed,
            ),
            (
                "cannot find the decoder layers of this model",
                ModelUnsupportedArch,
            ),
            (
                "prompt template rendering failed: undefined 'x'",
                TokenizerConfig,
            ),
            ("the input (9000 tokens) is too long", SequenceTooLong),
            ("quota has been exhausted for today", RateLimit),
            ("please build llama.cpp first", DependencyMissing),
            (
                "format_fn() missing 1 required positional argument",
                DatasetFormat,
            ),
            ("dataloader_len: 0", DatasetTooSmall),
            (
                "spot instance interruption notice: terminating",
                Interrupted,
            ),
            ("the operation was cancelled by the runner", Interrupted),
            (
                "proxyerror: cannot connect to proxy, 403 forbidden",
                NetworkUnreachable,
            ),
            ("no module named 'mylib._c'", DependencyMissing),
            ("error: template not found for this model", TokenizerConfig),
            ("please choose a template to use", TokenizerConfig),
            (
                "'fooforcausallm' is not a registered model",
                ModelUnsupportedArch,
            ),
            ("lora_r = 0 gives nothing to train", LoraConfig),
            ("the model generated invalid json", LlmResponseInvalid),
            (
                "valueerror: template chatml2 does not exist",
                DependencyMissing,
            ),
            ("keyerror: none", DatasetFormat),
        ] {
            let got = classify(text, ErrorPhase::Unknown).map(|(t, _)| t);
            assert_eq!(got, Some(want), "{text}");
        }
    }

    #[test]
    fn generic_words_come_last() {
        // A dataset error pasted with its command line (which names a timeout) is a dataset
        // error.
        let s = "--ddp_timeout 180000000\nkeyerror: 'instruction'";
        assert_eq!(classify(s, ErrorPhase::Unknown).unwrap().0, DatasetFormat);
        assert_eq!(classify("nothing to see", ErrorPhase::Unknown), None);
    }
}
