//! The self-check of an export (docs/exports.md): the written model, loaded back through its
//! own file, and the merged model each answer a fixed chat prompt greedily within a token
//! budget; while their tokens agree, every step's logits must agree within the format's
//! precision, and the export must stop where the merged model stops. A miss is
//! `EXPORT_VERIFY_FAILED` with the numbers; the record goes into `manifest.json`.

use std::path::Path;

use serde::Serialize;
use tch::{Device, Kind};
use tunewright_schemas::config::Quantization;
use tunewright_schemas::dataset::Turn;
use tunewright_schemas::{ctx, ErrorCode, Failure};

use crate::error::TrainerError;
use crate::generate::{generate, stop_ids, GenerateOptions, StopReason};
use crate::model::CausalLm;
use crate::train::tokenize::ChatTokenizer;

/// The prompt every export answers.
pub const PROMPT: &str = "What is the capital of France?";
/// New tokens the check generates at most.
pub const BUDGET: usize = 16;

/// Largest logit difference allowed, as a fraction of the merged model's largest |logit|:
/// f32 round trip, f16 (11-bit mantissa), bf16 (8-bit) and q8_0 (a 1/254 step per block).
pub fn tolerance(q: Option<Quantization>) -> f64 {
    match q {
        None => 1e-4,
        Some(Quantization::F16) => 2e-2,
        Some(Quantization::Bf16) => 1e-1,
        Some(Quantization::Q8_0) => 1e-1,
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SelfCheck {
    pub prompt: String,
    pub budget: usize,
    pub merged_tokens: Vec<i64>,
    pub export_tokens: Vec<i64>,
    pub merged_stopped: bool,
    pub export_stopped: bool,
    /// Steps whose logits were compared (those while the tokens agree).
    pub steps_compared: usize,
    pub max_logit_diff: f64,
    pub max_abs_logit: f64,
    pub tolerance: f64,
    pub passed: bool,
}

/// Compare the model in `export_dir` against the merged model in `merged_dir`.
pub fn self_check(
    merged_dir: &Path,
    export_dir: &Path,
    q: Option<Quantization>,
) -> Result<SelfCheck, TrainerError> {
    let tok = ChatTokenizer::load(merged_dir)?;
    let turns = [Turn {
        role: "user".into(),
        content: PROMPT.into(),
    }];
    let prompt = tok.encode(&tok.render(&turns, true)?)?;
    let mut opts = GenerateOptions::greedy(BUDGET, stop_ids(merged_dir)?);
    opts.keep_logits = true;
    let run = |dir: &Path| -> Result<_, TrainerError> {
        let model = CausalLm::load(dir, Device::Cpu, Kind::Float, None, 0)?;
        generate(&model, &prompt, &opts)
    };
    let merged = run(merged_dir)?;
    let export = run(export_dir)?;
    let agree = merged
        .tokens
        .iter()
        .zip(&export.tokens)
        .take_while(|(a, b)| a == b)
        .count();
    // Step k's logits follow the same input while the tokens before k agree.
    let steps = (agree + 1)
        .min(merged.logits.len())
        .min(export.logits.len());
    let mut max_diff = 0f64;
    let mut max_abs = 0f64;
    for k in 0..steps {
        let a = &merged.logits[k];
        let b = &export.logits[k];
        max_diff = max_diff.max((a - b).abs().max().double_value(&[]));
        max_abs = max_abs.max(a.abs().max().double_value(&[]));
    }
    let tol = tolerance(q);
    let merged_stopped = merged.stop == StopReason::Stop;
    let export_stopped = export.stop == StopReason::Stop;
    let passed = max_diff <= tol * max_abs.max(1.0) && (export_stopped || !merged_stopped);
    Ok(SelfCheck {
        prompt: PROMPT.into(),
        budget: BUDGET,
        merged_tokens: merged.tokens,
        export_tokens: export.tokens,
        merged_stopped,
        export_stopped,
        steps_compared: steps,
        max_logit_diff: max_diff,
        max_abs_logit: max_abs,
        tolerance: tol,
        passed,
    })
}

/// `EXPORT_VERIFY_FAILED` with the numbers of a failed check.
pub fn failure(check: &SelfCheck, format: &str) -> TrainerError {
    let reason = if check.export_stopped || !check.merged_stopped {
        format!(
            "{format}: logits differ from the merged model's by {:.3e} (allowed {:.1e} x {:.3}) over {} steps",
            check.max_logit_diff,
            check.tolerance,
            check.max_abs_logit.max(1.0),
            check.steps_compared
        )
    } else {
        format!(
            "{format}: the merged model stops after {} tokens, the export does not stop within {}",
            check.merged_tokens.len(),
            check.budget
        )
    };
    TrainerError::Rejected(Failure::new(
        ErrorCode::ExportVerifyFailed,
        ctx! {"reason" => reason},
    ))
}
