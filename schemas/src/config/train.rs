//! The `train` job's config. Names follow Hugging Face's `TrainingArguments` and PEFT's
//! `LoraConfig`; unknown fields are rejected so a typo never silently falls back to a default.

use serde::{Deserialize, Serialize};

use crate::{ctx, ErrorCode, Failure};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum LrSchedulerType {
    #[default]
    Linear,
    Cosine,
    Constant,
}

/// The 4-bit data type of QLoRA's frozen base weights (bitsandbytes' `bnb_4bit_quant_type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum QuantType4bit {
    /// NormalFloat 4: quantiles of a normal distribution (QLoRA's choice).
    #[default]
    Nf4,
    /// A 4-bit float (1 sign, 2 exponent, 1 mantissa bits).
    Fp4,
}

/// The dtype QLoRA computes in (bitsandbytes' `bnb_4bit_compute_dtype`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum ComputeDtype {
    #[default]
    Float32,
    Bfloat16,
    Float16,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum TrainDevice {
    /// CUDA when available, else CPU.
    #[default]
    Auto,
    Cpu,
    Cuda,
}

fn d_batch() -> i64 {
    4
}
fn d_accum() -> i64 {
    1
}
fn d_lr() -> f64 {
    2e-4
}
fn d_epochs() -> f64 {
    1.0
}
fn d_seq() -> i64 {
    512
}
fn d_r() -> i64 {
    8
}
fn d_alpha() -> f64 {
    16.0
}
fn d_dropout() -> f64 {
    0.05
}
fn d_targets() -> Vec<String> {
    ["q_proj", "k_proj", "v_proj", "o_proj"]
        .iter()
        .map(|s| s.to_string())
        .collect()
}
fn d_seed() -> u64 {
    42
}
fn d_ckpt() -> u64 {
    50
}
fn d_grad_norm() -> f64 {
    1.0
}
fn d_keep() -> usize {
    3
}
fn d_log() -> u64 {
    1
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrainConfig {
    /// A local Hugging Face checkpoint directory, or a model id in the local Hugging Face cache
    /// (`Qwen/Qwen2.5-0.5B-Instruct`).
    pub base_model: String,
    /// The commit, branch or tag of a `base_model` named by its id (default `main`; admission
    /// pins the commit it resolved to).
    #[serde(default)]
    pub revision: Option<String>,
    #[serde(default = "d_batch")]
    pub per_device_train_batch_size: i64,
    #[serde(default = "d_accum")]
    pub gradient_accumulation_steps: i64,
    #[serde(default = "d_lr")]
    pub learning_rate: f64,
    #[serde(default = "d_epochs")]
    pub num_train_epochs: f64,
    /// Optimizer steps; overrides `num_train_epochs` when set.
    #[serde(default)]
    pub max_steps: Option<u64>,
    #[serde(default = "d_seq")]
    pub max_seq_length: i64,
    #[serde(default)]
    pub warmup_steps: u64,
    #[serde(default)]
    pub lr_scheduler_type: LrSchedulerType,
    #[serde(default)]
    pub weight_decay: f64,
    #[serde(default = "d_grad_norm")]
    pub max_grad_norm: f64,
    #[serde(default = "d_r")]
    pub lora_r: i64,
    #[serde(default = "d_alpha")]
    pub lora_alpha: f64,
    #[serde(default = "d_dropout")]
    pub lora_dropout: f64,
    #[serde(default = "d_targets")]
    pub target_modules: Vec<String>,
    #[serde(default = "d_seed")]
    pub seed: u64,
    #[serde(default)]
    pub device: TrainDevice,
    #[serde(default = "d_ckpt")]
    pub checkpoint_every_steps: u64,
    #[serde(default = "d_keep")]
    pub keep_checkpoints: usize,
    /// Evaluate on the split's `val` part every this many steps (0: only at the end).
    #[serde(default)]
    pub eval_steps: u64,
    /// The project's split to train on (`train` part) and evaluate on (`val` part).
    #[serde(default)]
    pub split: Option<String>,
    /// Report progress every this many optimizer steps.
    #[serde(default = "d_log")]
    pub logging_steps: u64,
    /// Opt-in: on OOM, retry with half the micro-batch and double accumulation, then a
    /// shorter max_seq_length.
    #[serde(default)]
    pub remediate_oom: bool,
    /// Opt-in: on divergence, roll back to the last good checkpoint at a lower learning rate.
    #[serde(default)]
    pub remediate_divergence: bool,
    /// QLoRA: keep the frozen base linear weights 4-bit quantized (blocks of 64, as
    /// bitsandbytes does) and dequantize them per use; LoRA weights and optimizer state stay
    /// in full precision. Layers are recomputed in the backward pass (as with
    /// `gradient_checkpointing`), so that no dequantized weight outlives its layer.
    #[serde(default)]
    pub load_in_4bit: bool,
    #[serde(default)]
    pub bnb_4bit_quant_type: QuantType4bit,
    /// Quantize the per-block absmax values too (8-bit, blocks of 256), as bitsandbytes does.
    #[serde(default)]
    pub bnb_4bit_use_double_quant: bool,
    #[serde(default)]
    pub bnb_4bit_compute_dtype: ComputeDtype,
    /// Recompute each decoder layer's activations in the backward pass instead of keeping them.
    #[serde(default)]
    pub gradient_checkpointing: bool,
}

/// The fields whose value is a name from a fixed list, with that list (checked before serde so
/// that a wrong value is refused naming its field).
const NAMED_VALUES: &[(&str, &[&str])] = &[
    ("bnb_4bit_quant_type", &["nf4", "fp4"]),
    (
        "bnb_4bit_compute_dtype",
        &["float32", "bfloat16", "float16"],
    ),
    ("lr_scheduler_type", &["linear", "cosine", "constant"]),
    ("device", &["auto", "cpu", "cuda"]),
];

fn check_named_values(v: &serde_json::Value) -> Result<(), Failure> {
    for (field, allowed) in NAMED_VALUES {
        let Some(value) = v.get(*field) else { continue };
        if !value.as_str().is_some_and(|s| allowed.contains(&s)) {
            return Err(bad(
                field,
                &format!(
                    "unknown value {value} (expected one of: {})",
                    allowed.join(", ")
                ),
            ));
        }
    }
    Ok(())
}

/// Config keys whose change a checkpoint cannot carry: the base model under the adapter and
/// the adapter's shape and placement. A training resumed with one of them changed starts from
/// step 0.
pub const CHECKPOINT_BOUND_KEYS: &[&str] = &[
    "base_model",
    "revision",
    "lora_r",
    "lora_alpha",
    "target_modules",
];

fn bad(field: &str, reason: &str) -> Failure {
    Failure::new(
        ErrorCode::ValidationError,
        ctx! {"reason" => format!("{field}: {reason}"), "field" => field},
    )
}

impl TrainConfig {
    /// Parse and validate a job's config JSON.
    pub fn from_json(v: &serde_json::Value) -> Result<TrainConfig, Failure> {
        check_named_values(v)?;
        let c: TrainConfig = serde_json::from_value(v.clone()).map_err(|e| {
            Failure::new(
                ErrorCode::ValidationError,
                ctx! {"reason" => format!("train config: {e}")},
            )
        })?;
        c.validate()?;
        Ok(c)
    }

    pub fn validate(&self) -> Result<(), Failure> {
        if self.base_model.trim().is_empty() {
            return Err(bad(
                "base_model",
                "must name a model directory or a model id in the local Hugging Face cache",
            ));
        }
        if !(1..=4096).contains(&self.per_device_train_batch_size) {
            return Err(bad(
                "per_device_train_batch_size",
                "must be between 1 and 4096",
            ));
        }
        if !(1..=65536).contains(&self.gradient_accumulation_steps) {
            return Err(bad(
                "gradient_accumulation_steps",
                "must be between 1 and 65536",
            ));
        }
        if !(self.learning_rate.is_finite() && self.learning_rate > 0.0) {
            return Err(bad("learning_rate", "must be a positive number"));
        }
        if !(self.num_train_epochs.is_finite() && self.num_train_epochs > 0.0) {
            return Err(bad("num_train_epochs", "must be positive"));
        }
        if self.max_steps == Some(0) {
            return Err(bad("max_steps", "must be at least 1"));
        }
        if !(8..=1_048_576).contains(&self.max_seq_length) {
            return Err(bad("max_seq_length", "must be between 8 and 1048576"));
        }
        if !(1..=4096).contains(&self.lora_r) {
            return Err(bad("lora_r", "must be between 1 and 4096"));
        }
        if !(self.lora_alpha.is_finite() && self.lora_alpha > 0.0) {
            return Err(bad("lora_alpha", "must be positive"));
        }
        if !(0.0..1.0).contains(&self.lora_dropout) {
            return Err(bad("lora_dropout", "must be in [0, 1)"));
        }
        if self.target_modules.is_empty() {
            return Err(bad("target_modules", "must name at least one module"));
        }
        if !(self.weight_decay.is_finite() && self.weight_decay >= 0.0) {
            return Err(bad("weight_decay", "must be >= 0"));
        }
        if !(self.max_grad_norm.is_finite() && self.max_grad_norm >= 0.0) {
            return Err(bad("max_grad_norm", "must be >= 0 (0 disables clipping)"));
        }
        if self.checkpoint_every_steps == 0 {
            return Err(bad("checkpoint_every_steps", "must be at least 1"));
        }
        if self.keep_checkpoints == 0 {
            return Err(bad("keep_checkpoints", "must be at least 1"));
        }
        Ok(())
    }

    /// Examples per optimizer step.
    pub fn effective_batch(&self) -> i64 {
        self.per_device_train_batch_size * self.gradient_accumulation_steps
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_hf_names() {
        let c = TrainConfig::from_json(&serde_json::json!({"base_model": "/m"})).unwrap();
        assert_eq!(c.per_device_train_batch_size, 4);
        assert_eq!(c.lr_scheduler_type, LrSchedulerType::Linear);
        assert_eq!(c.device, TrainDevice::Auto);
        let c = TrainConfig::from_json(&serde_json::json!({
            "base_model": "/m", "lr_scheduler_type": "cosine", "device": "cpu", "max_steps": 10,
            "per_device_train_batch_size": 2, "gradient_accumulation_steps": 3
        }))
        .unwrap();
        assert_eq!(c.effective_batch(), 6);
        assert!(!c.load_in_4bit && !c.gradient_checkpointing);
    }

    #[test]
    fn qlora_and_checkpointing_take_hugging_face_names() {
        let c = TrainConfig::from_json(&serde_json::json!({
            "base_model": "/m", "load_in_4bit": true, "bnb_4bit_quant_type": "fp4",
            "bnb_4bit_use_double_quant": true, "bnb_4bit_compute_dtype": "bfloat16",
            "gradient_checkpointing": true
        }))
        .unwrap();
        assert!(c.load_in_4bit && c.bnb_4bit_use_double_quant && c.gradient_checkpointing);
        assert_eq!(c.bnb_4bit_quant_type, QuantType4bit::Fp4);
        assert_eq!(c.bnb_4bit_compute_dtype, ComputeDtype::Bfloat16);
        let d = TrainConfig::from_json(&serde_json::json!({"base_model": "/m"})).unwrap();
        assert_eq!(d.bnb_4bit_quant_type, QuantType4bit::Nf4);
        assert_eq!(d.bnb_4bit_compute_dtype, ComputeDtype::Float32);
    }

    #[test]
    fn errors_name_the_field() {
        for (cfg, field) in [
            (
                serde_json::json!({"base_model": "/m", "learning_rate": -1.0}),
                "learning_rate",
            ),
            (
                serde_json::json!({"base_model": "/m", "lora_dropout": 1.5}),
                "lora_dropout",
            ),
            (
                serde_json::json!({"base_model": "/m", "per_device_train_batch_size": 0}),
                "per_device_train_batch_size",
            ),
            (
                serde_json::json!({"base_model": "/m", "learning_rat": 0.1}),
                "unknown field `learning_rat`",
            ),
            (serde_json::json!({}), "missing field `base_model`"),
            (
                serde_json::json!({"base_model": "/m", "device": "tpu"}),
                "device: unknown value \"tpu\"",
            ),
            (
                serde_json::json!({"base_model": "/m", "load_in_4bit": true, "bnb_4bit_quant_type": "int4"}),
                "bnb_4bit_quant_type: unknown value \"int4\" (expected one of: nf4, fp4)",
            ),
            (
                serde_json::json!({"base_model": "/m", "bnb_4bit_compute_dtype": "fp8"}),
                "bnb_4bit_compute_dtype",
            ),
            (
                serde_json::json!({"base_model": "/m", "bnb_4bit_compute_dtype": 16}),
                "bnb_4bit_compute_dtype",
            ),
            (
                serde_json::json!({"base_model": "/m", "gradient_checkpointing": "yes"}),
                "invalid type: string \"yes\", expected a boolean",
            ),
        ] {
            let f = TrainConfig::from_json(&cfg).unwrap_err();
            assert_eq!(f.error_code, ErrorCode::ValidationError);
            assert!(f.detail.contains(field), "{}", f.detail);
        }
    }
}
