//! The LoRA training loop: pre-flight, micro-batches with gradient accumulation weighted by
//! answer tokens, clipping, AdamW, the learning-rate schedule, evaluation, checkpoints for
//! exact resume, and the final PEFT adapter.
//!
//! Determinism: the data order of each epoch is a permutation seeded by (seed, epoch), and
//! torch's RNG (LoRA dropout) is reseeded from (seed, step) at every optimizer step, so a run
//! resumed from a checkpoint takes exactly the steps an uninterrupted run takes.

pub mod checkpoint;
pub mod data;
pub mod fault;
pub mod memory;
pub mod optim;
pub mod schedule;
pub mod setup;
pub mod tokenize;

use std::path::{Path, PathBuf};
use std::time::Instant;

use serde::Serialize;
use tch::{Device, Reduction, Tensor};
use tunewright_schemas::config::TrainConfig;
use tunewright_schemas::dataset::MIN_EXAMPLES;
use tunewright_schemas::worker::WorkerFile;
use tunewright_schemas::{ctx, ErrorCode, Failure};

use crate::model::{CausalLm, LoadOptions, ModelConfig};
use crate::TrainerError;
use checkpoint::TrainState;
use data::{collate, epoch_order, prepare, Prepared, Tokenized};
use memory::MemoryEstimate;
pub use setup::{compute_dtype, estimate_memory, quant_settings, recomputes_layers};
use setup::{device_for, lora_settings, memory_facts};
use tokenize::ChatTokenizer;

/// What to train, from where, to where.
#[derive(Debug, Clone)]
pub struct TrainSpec {
    pub config: TrainConfig,
    /// Directory of the base model (config.json, safetensors, tokenizer).
    pub model_dir: PathBuf,
    pub train_data: PathBuf,
    pub val_data: Option<PathBuf>,
    /// Where the final PEFT adapter is written.
    pub output_dir: PathBuf,
    /// Where checkpoints `step-N/` are written.
    pub checkpoint_root: PathBuf,
    /// A (verified) checkpoint directory to resume from.
    pub resume_from: Option<PathBuf>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ProgressReport {
    pub phase: &'static str,
    pub step: u64,
    pub total_steps: u64,
    pub loss: f64,
    pub learning_rate: f64,
    pub grad_norm: f64,
    pub tokens_per_sec: f64,
    pub epoch: f64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct CheckpointRecord {
    pub step: u64,
    pub dir: PathBuf,
    pub files: Vec<WorkerFile>,
}

/// What the caller wants, checked at every step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Control {
    Continue,
    Cancel,
    CheckpointAndStop,
}

pub trait TrainHooks {
    fn on_progress(&mut self, p: &ProgressReport);
    fn on_checkpoint(&mut self, c: &CheckpointRecord);
    fn on_note(&mut self, topic: &str, data: serde_json::Value);
    fn control(&mut self) -> Control;
    /// Called after every optimizer step and every evaluation batch: the worker's sign of
    /// life for the service's progress watchdog (docs/jobs.md).
    fn alive(&mut self, _step: u64) {}
    /// No checkpoint from this step on may be pruned (`checkpoint::prune`); `None`: no floor.
    fn prune_floor(&self) -> Option<u64> {
        None
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TrainOutcome {
    pub steps: u64,
    pub total_steps: u64,
    pub final_loss: Option<f64>,
    pub first_loss: Option<f64>,
    pub eval_loss: Option<f64>,
    /// The PEFT adapter (absent when stopped early).
    pub adapter_dir: Option<PathBuf>,
    /// Why it ended early, if it did.
    pub stopped: Option<String>,
    pub resumed_from_step: Option<u64>,
}

#[derive(Debug, Clone, Serialize)]
pub struct PreflightReport {
    pub device: String,
    pub examples: Prepared,
    pub total_steps: u64,
    pub estimated_memory_bytes: u64,
    pub memory: MemoryEstimate,
    pub model_parameters: i64,
    pub architecture: String,
}

fn total_steps(cfg: &TrainConfig, examples: usize) -> u64 {
    if let Some(m) = cfg.max_steps {
        return m;
    }
    let micro = examples.div_ceil(cfg.per_device_train_batch_size as usize) as f64;
    let per_epoch = (micro / cfg.gradient_accumulation_steps as f64).ceil();
    ((per_epoch * cfg.num_train_epochs).ceil() as u64).max(1)
}

/// Everything checkable before device time is spent: config, data, tokenizer, model shape,
/// target modules, memory. A job that cannot succeed fails here.
pub fn preflight(spec: &TrainSpec) -> Result<PreflightReport, TrainerError> {
    let cfg = &spec.config;
    cfg.validate().map_err(TrainerError::Rejected)?;
    let device = device_for(cfg)?;
    let mc = ModelConfig::from_dir(&spec.model_dir)?;
    let tok = ChatTokenizer::load(&spec.model_dir)?;
    let examples = prepare(&spec.train_data, &tok, cfg.max_seq_length)?;
    if examples.kept < MIN_EXAMPLES {
        return Err(TrainerError::Rejected(Failure::new(
            ErrorCode::DatasetTooFewExamples,
            ctx! {"num_examples" => examples.kept, "min_examples" => MIN_EXAMPLES},
        )));
    }
    let memory = estimate_memory(&mc, cfg, device)?;
    let estimated = memory.total;
    if device.is_cuda() {
        let probe = crate::device::probe();
        if let Some(total_mb) = probe.gpus.first().and_then(|g| g.memory_total_mb) {
            let total = total_mb * 1024 * 1024;
            if estimated > total {
                let gb = |b: u64| format!("{:.1}", b as f64 / 1e9);
                let hint = format!(
                    "Try per_device_train_batch_size {} with gradient_accumulation_steps {}, or max_seq_length {}.",
                    (cfg.per_device_train_batch_size / 2).max(1),
                    cfg.gradient_accumulation_steps * 2,
                    cfg.max_seq_length / 2
                );
                return Err(TrainerError::Rejected(Failure::new(
                    ErrorCode::GpuVramInsufficient,
                    ctx! {"required_gb" => gb(estimated), "available_gb" => gb(total), "hint" => hint},
                )));
            }
        }
    }
    Ok(PreflightReport {
        device: format!("{device:?}"),
        total_steps: total_steps(cfg, examples.kept),
        estimated_memory_bytes: estimated,
        memory,
        model_parameters: mc.num_parameters(),
        architecture: mc.architecture,
        examples,
    })
}

fn torch_err(phase: &'static str) -> impl Fn(tch::TchError) -> TrainerError {
    move |e| TrainerError::torch(phase, e)
}

/// Sum of token losses over the answer positions of one micro-batch (`[b, t, vocab]` logits).
fn loss_sum(
    model: &CausalLm,
    examples: &[&Tokenized],
    pad_id: i64,
    device: Device,
    train: bool,
) -> Result<(Tensor, i64), TrainerError> {
    let batch = collate(examples, pad_id, device);
    let logits = model.try_forward(&batch.input_ids, Some(&batch.attention_mask), train)?;
    Ok((
        token_loss_sum(&logits, &batch.targets)?,
        batch.answer_tokens,
    ))
}

/// Sum of the cross-entropy of `logits` `[b, t, vocab]` against next-token `targets` `[b, t-1]`.
fn token_loss_sum(logits: &Tensor, targets: &Tensor) -> Result<Tensor, TrainerError> {
    let (b, t, v) = logits.size3().map_err(torch_err("forward"))?;
    let logits = logits.narrow(1, 0, t - 1).reshape([b * (t - 1), v]);
    let targets = targets.reshape([b * (t - 1)]);
    logits
        .f_cross_entropy_loss::<Tensor>(&targets, None, Reduction::Sum, data_ignore(), 0.0)
        .map_err(torch_err("loss"))
}

/// Forward and backward of one training micro-batch, the loss scaled by `1 / denom`; with
/// gradient checkpointing the layers are recomputed in the backward pass. The unscaled loss
/// sum comes back.
fn micro_step(
    model: &CausalLm,
    examples: &[&Tokenized],
    pad_id: i64,
    denom: f64,
    checkpointing: bool,
) -> Result<f64, TrainerError> {
    let device = model.device;
    if !checkpointing {
        let (sum, _) = loss_sum(model, examples, pad_id, device, true)?;
        let value = sum.double_value(&[]);
        if value.is_finite() {
            (sum / denom).f_backward().map_err(torch_err("backward"))?;
        }
        return Ok(value);
    }
    let batch = collate(examples, pad_id, device);
    let (logits, recompute) =
        model.forward_checkpointed(&batch.input_ids, Some(&batch.attention_mask))?;
    let sum = token_loss_sum(&logits, &batch.targets)?;
    let value = sum.double_value(&[]);
    if value.is_finite() {
        (sum / denom).f_backward().map_err(torch_err("backward"))?;
        recompute.backward()?;
    }
    Ok(value)
}

fn data_ignore() -> i64 {
    tokenize::IGNORE
}

fn evaluate(
    model: &CausalLm,
    val: &Prepared,
    pad_id: i64,
    device: Device,
    batch: usize,
    (hooks, step): (&mut dyn TrainHooks, u64),
) -> Result<Option<f64>, TrainerError> {
    if val.examples.is_empty() {
        return Ok(None);
    }
    let _guard = tch::no_grad_guard();
    let (mut sum, mut n) = (0.0, 0i64);
    for chunk in val.examples.chunks(batch.max(1)) {
        let refs: Vec<&Tokenized> = chunk.iter().collect();
        let (l, k) =
            loss_sum(model, &refs, pad_id, device, false).map_err(|e| e.during("evaluation"))?;
        sum += l.double_value(&[]);
        n += k;
        hooks.alive(step);
    }
    Ok((n > 0).then(|| sum / n as f64))
}

/// Train; see the module comment. Resumes from `spec.resume_from` when set.
pub fn train(spec: &TrainSpec, hooks: &mut dyn TrainHooks) -> Result<TrainOutcome, TrainerError> {
    let cfg = &spec.config;
    let pre = preflight(spec)?;
    hooks.on_note(
        "preflight",
        serde_json::json!({
            "examples_kept": pre.examples.kept,
            "dropped": pre.examples.dropped,
            "tokens": pre.examples.tokens,
            "answer_tokens": pre.examples.answer_tokens,
            "total_steps": pre.total_steps,
            "device": pre.device,
            "estimated_memory_bytes": pre.estimated_memory_bytes,
            "memory": pre.memory,
            "model_parameters": pre.model_parameters,
            "architecture": pre.architecture,
            "load_in_4bit": cfg.load_in_4bit,
            "gradient_checkpointing": cfg.gradient_checkpointing,
        }),
    );
    let device = device_for(cfg)?;
    let facts = memory_facts(&ModelConfig::from_dir(&spec.model_dir)?, cfg, device);
    run(spec, hooks, pre, device).map_err(|e| e.with_memory_facts(&facts))
}

/// The training proper, after pre-flight.
fn run(
    spec: &TrainSpec,
    hooks: &mut dyn TrainHooks,
    pre: PreflightReport,
    device: Device,
) -> Result<TrainOutcome, TrainerError> {
    let cfg = &spec.config;
    let dtype = compute_dtype(cfg, device);
    let tok = ChatTokenizer::load(&spec.model_dir)?;
    let train_set = pre.examples;
    let val_set = match &spec.val_data {
        Some(p) => prepare(p, &tok, cfg.max_seq_length)?,
        None => Prepared::default(),
    };
    let seed = cfg.seed;
    let options = LoadOptions {
        quant: quant_settings(cfg),
    };
    let mut model = CausalLm::load_with(
        &spec.model_dir,
        device,
        dtype,
        Some(&lora_settings(cfg)),
        seed as i64,
        options,
    )?;
    let named = model.lora_parameters();
    let names: Vec<String> = named.iter().map(|(n, _)| n.clone()).collect();
    let params: Vec<Tensor> = named.iter().map(|(_, t)| t.shallow_clone()).collect();
    let mut opt = optim::AdamW::new(&params, cfg.weight_decay);
    let mut state = TrainState {
        step: 0,
        epoch: 0,
        batch_index: 0,
        adam_step: 0,
        seed,
    };
    let mut resumed_from = None;
    if let Some(dir) = &spec.resume_from {
        let loaded = checkpoint::load(dir, None)?;
        model.load_lora_parameters(&loaded.lora)?;
        for (name, (m, v)) in names.iter().zip(opt.moments.iter_mut()) {
            let (lm, lv) = loaded
                .moments
                .get(name)
                .ok_or_else(|| TrainerError::Checkpoint {
                    path: dir.clone(),
                    reason: format!("no optimizer state for {name}"),
                })?;
            let _g = tch::no_grad_guard();
            m.copy_(&lm.to_device(device));
            v.copy_(&lv.to_device(device));
        }
        opt.step = loaded.state.adam_step;
        resumed_from = Some(loaded.state.step);
        state = loaded.state;
    }
    // Injected allocator fault (tests only; see `fault`): fresh runs only.
    let fault_step = match resumed_from {
        None => fault::oom_at_step(),
        Some(_) => None,
    };
    let total = pre.total_steps;
    let n = train_set.examples.len();
    let micro = cfg.per_device_train_batch_size as usize;
    let mut order = epoch_order(n, seed, state.epoch);
    let (mut first_loss, mut last_loss, mut eval_loss) = (None, None, None);
    let started = Instant::now();
    let mut tokens_seen = 0i64;
    while state.step < total {
        match hooks.control() {
            Control::Continue => {}
            Control::Cancel => {
                return Ok(TrainOutcome {
                    steps: state.step,
                    total_steps: total,
                    final_loss: last_loss,
                    first_loss,
                    eval_loss,
                    adapter_dir: None,
                    stopped: Some("cancelled".into()),
                    resumed_from_step: resumed_from,
                })
            }
            Control::CheckpointAndStop => {
                save_checkpoint(spec, &state, &opt, &model, &names, hooks)?;
                return Ok(TrainOutcome {
                    steps: state.step,
                    total_steps: total,
                    final_loss: last_loss,
                    first_loss,
                    eval_loss,
                    adapter_dir: None,
                    stopped: Some("checkpointed and stopped".into()),
                    resumed_from_step: resumed_from,
                });
            }
        }
        tch::manual_seed(
            (seed as i64)
                .wrapping_mul(1_000_003)
                .wrapping_add(state.step as i64),
        );
        // The micro-batches of this optimizer step.
        let mut micro_batches: Vec<Vec<&Tokenized>> = Vec::new();
        for _ in 0..cfg.gradient_accumulation_steps {
            if state.batch_index * micro >= n {
                state.epoch += 1;
                state.batch_index = 0;
                order = epoch_order(n, seed, state.epoch);
            }
            let start = state.batch_index * micro;
            let idx = &order[start..(start + micro).min(n)];
            micro_batches.push(idx.iter().map(|i| &train_set.examples[*i]).collect());
            state.batch_index += 1;
        }
        let answer_tokens: usize = micro_batches
            .iter()
            .flatten()
            .map(|e| e.answer_tokens())
            .sum();
        let denom = answer_tokens.max(1) as f64;
        let mut step_loss = 0.0;
        for mb in &micro_batches {
            if fault_step == Some(state.step + 1) {
                fault::allocate_impossible(device).map_err(torch_err("forward"))?;
            }
            let value = micro_step(&model, mb, tok.pad_id, denom, recomputes_layers(cfg))?;
            if !value.is_finite() {
                return Err(TrainerError::Diverged {
                    step: state.step + 1,
                    value: if value.is_nan() {
                        "NaN".into()
                    } else {
                        "Inf".into()
                    },
                });
            }
            step_loss += value;
            tokens_seen += mb.iter().map(|e| e.ids.len() as i64).sum::<i64>();
        }
        let loss = step_loss / denom;
        let grad_norm = optim::clip_grad_norm(&params, cfg.max_grad_norm);
        if !grad_norm.is_finite() {
            return Err(TrainerError::Diverged {
                step: state.step + 1,
                value: "NaN gradient".into(),
            });
        }
        let lr = schedule::lr_at(
            state.step,
            total,
            cfg.warmup_steps,
            cfg.learning_rate,
            cfg.lr_scheduler_type,
        );
        opt.step(&params, lr);
        for p in &params {
            let mut g = p.grad();
            if g.defined() {
                let _ = g.zero_();
            }
        }
        state.step += 1;
        state.adam_step = opt.step;
        hooks.alive(state.step);
        first_loss.get_or_insert(loss);
        last_loss = Some(loss);
        if state.step.is_multiple_of(cfg.logging_steps.max(1)) || state.step == total {
            let secs = started.elapsed().as_secs_f64().max(1e-9);
            hooks.on_progress(&ProgressReport {
                phase: "training",
                step: state.step,
                total_steps: total,
                loss,
                learning_rate: lr,
                grad_norm,
                tokens_per_sec: tokens_seen as f64 / secs,
                epoch: state.epoch as f64 + (state.batch_index * micro) as f64 / n.max(1) as f64,
            });
        }
        if cfg.eval_steps > 0 && state.step.is_multiple_of(cfg.eval_steps) {
            eval_loss = evaluate(
                &model,
                &val_set,
                tok.pad_id,
                device,
                micro,
                (&mut *hooks, state.step),
            )?;
            if let Some(l) = eval_loss {
                hooks.on_note(
                    "evaluation",
                    serde_json::json!({"step": state.step, "eval_loss": l}),
                );
            }
        }
        if state.step.is_multiple_of(cfg.checkpoint_every_steps) && state.step < total {
            save_checkpoint(spec, &state, &opt, &model, &names, hooks)?;
        }
    }
    eval_loss = evaluate(
        &model,
        &val_set,
        tok.pad_id,
        device,
        micro,
        (&mut *hooks, state.step),
    )?
    .or(eval_loss);
    crate::export::write_adapter(&model, &spec.config.base_model, &spec.output_dir)?;
    Ok(TrainOutcome {
        steps: state.step,
        total_steps: total,
        final_loss: last_loss,
        first_loss,
        eval_loss,
        adapter_dir: Some(spec.output_dir.clone()),
        stopped: None,
        resumed_from_step: resumed_from,
    })
}

fn save_checkpoint(
    spec: &TrainSpec,
    state: &TrainState,
    opt: &optim::AdamW,
    model: &CausalLm,
    names: &[String],
    hooks: &mut dyn TrainHooks,
) -> Result<(), TrainerError> {
    let moments: Vec<(String, Tensor, Tensor)> = names
        .iter()
        .zip(&opt.moments)
        .map(|(n, (m, v))| (n.clone(), m.shallow_clone(), v.shallow_clone()))
        .collect();
    let saved = checkpoint::save(
        &spec.checkpoint_root,
        state,
        &model.lora_parameters(),
        &moments,
    )?;
    hooks.on_checkpoint(&CheckpointRecord {
        step: state.step,
        dir: saved.dir,
        files: saved.files,
    });
    checkpoint::prune(
        &spec.checkpoint_root,
        spec.config.keep_checkpoints,
        hooks.prune_floor(),
    );
    Ok(())
}

/// The adapter tensors of a finished run, for comparisons in tests.
pub fn adapter_path(dir: &Path) -> PathBuf {
    dir.join(crate::export::ADAPTER_WEIGHTS)
}
