//! Evaluation of a trained model (base + adapter, or merged weights) on a dataset split
//! (docs/generation.md, "Evaluation"): the mean cross-entropy over the answer tokens (the
//! tokens training learns: the last assistant turn and its end-of-turn token), its
//! perplexity `exp(loss)`, the token accuracy (argmax = the answer token), and greedy answers
//! to the first prompts of the split beside their references. The model is base + adapter,
//! merged weights, or base + a training checkpoint's LoRA tensors.

use std::path::{Path, PathBuf};

use serde::Serialize;
use tch::{Kind, Reduction, Tensor};

/// The device a model is loaded on (re-exported: the worker picks it without linking tch).
pub use tch::Device;
use tunewright_schemas::dataset::parse_jsonl;
use tunewright_schemas::worker::WorkerFile;

use crate::export::read_adapter;
use crate::generate::{generate, stop_ids, GenerateOptions, StopReason};
use crate::model::{CausalLm, LoraSettings};
use crate::train::data::Tokenized;
use crate::train::tokenize::{ChatTokenizer, IGNORE};
use crate::TrainerError;

/// What to evaluate.
#[derive(Debug, Clone, PartialEq)]
pub struct EvalSpec {
    pub model_dir: PathBuf,
    /// A PEFT adapter over `model_dir`, or None for the model itself (merged weights).
    pub adapter_dir: Option<PathBuf>,
    /// The split's JSONL.
    pub data: PathBuf,
    /// Examples scored at most (in file order; longer ones than `max_seq_length` are skipped).
    pub max_examples: usize,
    pub max_seq_length: usize,
    /// Prompts answered (the first ones scored).
    pub prompts: usize,
    pub max_new_tokens: usize,
}

/// One generation: the prompt's turns rendered, the reference answer, the model's.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Generated {
    pub prompt: String,
    pub reference: String,
    pub output: String,
    pub stopped: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct EvalReport {
    pub examples: usize,
    pub skipped_too_long: usize,
    pub answer_tokens: i64,
    pub loss: f64,
    pub perplexity: f64,
    pub token_accuracy: f64,
    #[serde(skip)]
    pub generations: Vec<Generated>,
    /// The scored examples (ids and labels), for references that recompute the figures.
    #[serde(skip)]
    pub scored: Vec<Tokenized>,
}

/// Load the model of `spec` (f32 on the CPU: evaluation figures are compared exactly).
pub fn load_model(spec: &EvalSpec, device: Device) -> Result<CausalLm, TrainerError> {
    match &spec.adapter_dir {
        None => CausalLm::load(&spec.model_dir, device, Kind::Float, None, 0),
        Some(dir) => {
            let adapter = read_adapter(dir)?;
            let mut m = CausalLm::load(
                &spec.model_dir,
                device,
                Kind::Float,
                Some(&adapter.settings),
                0,
            )?;
            m.load_lora_parameters(&adapter.tensors)?;
            Ok(m)
        }
    }
}

/// The model of a training checkpoint (f32 on `device`): the base model in `spec.model_dir`
/// with the LoRA tensors of `checkpoint` (shaped by `settings`, the training's), each file
/// checked against `expected` sha256 sums when given.
pub fn load_checkpoint_model(
    spec: &EvalSpec,
    checkpoint: &Path,
    settings: &LoraSettings,
    expected: Option<&[WorkerFile]>,
    device: Device,
) -> Result<CausalLm, TrainerError> {
    let loaded = crate::train::checkpoint::load(checkpoint, expected)?;
    let mut m = CausalLm::load(&spec.model_dir, device, Kind::Float, Some(settings), 0)?;
    m.load_lora_parameters(&loaded.lora)?;
    Ok(m)
}

/// Sum of the answer tokens' cross-entropy, their count, and how many the argmax got right.
fn score(model: &CausalLm, ex: &Tokenized) -> Result<(f64, i64, i64), TrainerError> {
    let ids = Tensor::from_slice(&ex.ids)
        .unsqueeze(0)
        .to_device(model.device);
    let logits = model.try_forward(&ids, None, false)?;
    let t = ex.ids.len() as i64;
    let logits = logits.select(0, 0).narrow(0, 0, t - 1);
    let targets = Tensor::from_slice(&ex.labels[1..]).to_device(model.device);
    let sum = logits
        .f_cross_entropy_loss::<Tensor>(&targets, None, Reduction::Sum, IGNORE, 0.0)
        .map_err(|e| TrainerError::torch("evaluation", e))?
        .double_value(&[]);
    let keep = targets.ne(IGNORE);
    let n = keep.sum(Kind::Int64).int64_value(&[]);
    let right = logits
        .argmax(-1, false)
        .eq_tensor(&targets)
        .logical_and(&keep)
        .sum(Kind::Int64)
        .int64_value(&[]);
    Ok((sum, n, right))
}

/// Evaluate `model` on `spec`'s split.
pub fn evaluate(model: &CausalLm, spec: &EvalSpec) -> Result<EvalReport, TrainerError> {
    evaluate_with(model, spec, &mut |_| {})
}

/// `evaluate`, calling `on_example` with the number of examples scored after each one (a
/// worker's sign of life).
pub fn evaluate_with(
    model: &CausalLm,
    spec: &EvalSpec,
    on_example: &mut dyn FnMut(usize),
) -> Result<EvalReport, TrainerError> {
    let tok = ChatTokenizer::load(&spec.model_dir)?;
    let bytes = std::fs::read(&spec.data).map_err(|e| TrainerError::Io {
        path: spec.data.clone(),
        reason: e.to_string(),
    })?;
    let (examples, _) = parse_jsonl(&bytes).map_err(TrainerError::Rejected)?;
    let _guard = tch::no_grad_guard();
    let mut report = EvalReport {
        examples: 0,
        skipped_too_long: 0,
        answer_tokens: 0,
        loss: f64::NAN,
        perplexity: f64::NAN,
        token_accuracy: f64::NAN,
        generations: Vec::new(),
        scored: Vec::new(),
    };
    let (mut sum, mut right) = (0.0, 0i64);
    let mut opts = GenerateOptions::greedy(spec.max_new_tokens, stop_ids(&spec.model_dir)?);
    opts.use_cache = true;
    for ex in examples {
        if report.examples >= spec.max_examples {
            break;
        }
        let (ids, labels) = tok.encode_example(&ex.turns)?;
        if ids.len() > spec.max_seq_length {
            report.skipped_too_long += 1;
            continue;
        }
        let t = Tokenized { ids, labels };
        if t.answer_tokens() == 0 {
            continue;
        }
        let (s, n, r) = score(model, &t).map_err(|e| e.during("evaluation"))?;
        sum += s;
        report.answer_tokens += n;
        right += r;
        report.examples += 1;
        if report.generations.len() < spec.prompts {
            let prompt_turns = &ex.turns[..ex.turns.len().saturating_sub(1)];
            let prompt = tok.render(prompt_turns, true)?;
            let prompt_ids = tok.encode(&prompt)?;
            let g = generate(model, &prompt_ids, &opts)?;
            let answer: Vec<i64> = g
                .tokens
                .iter()
                .copied()
                .filter(|t| !opts.stop_ids.contains(t))
                .collect();
            report.generations.push(Generated {
                prompt,
                reference: ex
                    .turns
                    .last()
                    .map(|t| t.content.clone())
                    .unwrap_or_default(),
                output: tok.decode(&answer)?,
                stopped: g.stop == StopReason::Stop,
            });
        }
        report.scored.push(t);
        on_example(report.examples);
    }
    if report.answer_tokens > 0 {
        report.loss = sum / report.answer_tokens as f64;
        report.perplexity = report.loss.exp();
        report.token_accuracy = right as f64 / report.answer_tokens as f64;
    }
    Ok(report)
}

/// Write `generations` as JSONL (one `{prompt, reference, output, stopped}` per line).
pub fn write_generations(path: &Path, generations: &[Generated]) -> Result<(), TrainerError> {
    let mut text = String::new();
    for g in generations {
        let line = serde_json::to_string(g).map_err(|e| TrainerError::Io {
            path: path.to_path_buf(),
            reason: e.to_string(),
        })?;
        text.push_str(&line);
        text.push('\n');
    }
    crate::export::files::write_file(path, text.as_bytes())
}
