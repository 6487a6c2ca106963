//! The pre-flight memory estimate of a training run: frozen base weights (dense in the model
//! dtype, or 4-bit with QLoRA), LoRA weights with their gradients and AdamW moments (f32),
//! and the activations one micro-batch keeps for the backward pass (every layer's, or with
//! gradient checkpointing each layer's input plus one layer's recomputed graph), plus the
//! logits and their loss. The per-token activation coefficients were measured (peak RSS of
//! `examples/memory_levers.rs` on the CPU); the same script prints estimate and measurement
//! side by side. With `load_in_4bit` layers are always recomputed (see `recomputes_layers`).

use crate::model::quant::quantized_bytes;
use crate::model::{LoraSettings, ModelConfig, QuantSettings};

/// What a run holds in memory, by part.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct MemoryEstimate {
    pub base_weights: u64,
    pub lora_and_optimizer: u64,
    pub activations: u64,
    pub total: u64,
}

/// The settings that decide a run's memory.
#[derive(Debug, Clone)]
pub struct MemoryPlan<'a> {
    pub micro_batch: u64,
    pub seq_len: u64,
    /// Bytes per element of the model (compute) dtype.
    pub dtype_bytes: u64,
    pub lora: &'a LoraSettings,
    /// Resolved LoRA targets (module suffixes).
    pub targets: &'a [String],
    pub quant: Option<QuantSettings>,
    pub gradient_checkpointing: bool,
}

/// Activations one layer keeps for the backward pass, per token, in units of `hidden` and of
/// `intermediate` elements of the model dtype: the norms' inputs and outputs, q/k/v before and
/// after rotary embeddings, the attention output, the MLP's gate, activation, up and product.
/// Measured with `script/memory-levers` (peak RSS on the CPU, f32, all-linear LoRA):
/// 8 x hidden + 3 x intermediate per token and layer, within a few percent.
const PER_TOKEN_HIDDEN_UNITS: u64 = 8;
const PER_TOKEN_INTERMEDIATE_UNITS: u64 = 3;
/// Per token and vocabulary entry: the f32 logits, their log-softmax and its gradient.
const LOGIT_COPIES: u64 = 3;

/// Bytes of the frozen base weights for `mc` held in `dtype_bytes`, or with `quant`.
pub fn base_weight_bytes(mc: &ModelConfig, dtype_bytes: u64, quant: Option<QuantSettings>) -> u64 {
    let linear = (mc.num_hidden_layers * mc.linear_parameters_per_layer()).max(0) as u64;
    let rest = (mc.num_parameters().max(0) as u64).saturating_sub(linear);
    let linear_bytes = match quant {
        None => linear * dtype_bytes,
        Some(q) => {
            // Per matrix, since blocks never straddle two weights.
            let (q_dim, kv_dim) = mc.q_kv_dims();
            let (h, i) = (mc.hidden_size as u64, mc.intermediate_size as u64);
            let shapes = [
                q_dim as u64 * h,
                kv_dim as u64 * h,
                kv_dim as u64 * h,
                q_dim as u64 * h,
                i * h,
                i * h,
                h * i,
            ];
            let per_layer: u64 = if mc.spec.fused_projections {
                quantized_bytes(shapes[0] + shapes[1] + shapes[2], q.double_quant)
                    + quantized_bytes(shapes[3], q.double_quant)
                    + quantized_bytes(shapes[4] + shapes[5], q.double_quant)
                    + quantized_bytes(shapes[6], q.double_quant)
            } else {
                shapes
                    .iter()
                    .map(|n| quantized_bytes(*n, q.double_quant))
                    .sum()
            };
            per_layer * mc.num_hidden_layers as u64
        }
    };
    linear_bytes + rest * dtype_bytes
}

/// LoRA A and B with gradients and two AdamW moments, all f32.
fn lora_bytes(mc: &ModelConfig, plan: &MemoryPlan) -> u64 {
    let (q_dim, kv_dim) = mc.q_kv_dims();
    let (h, i) = (mc.hidden_size, mc.intermediate_size);
    let io = |t: &str| -> (i64, i64) {
        match t {
            "q_proj" => (h, q_dim),
            "k_proj" | "v_proj" => (h, kv_dim),
            "qkv_proj" => (h, q_dim + 2 * kv_dim),
            "o_proj" => (q_dim, h),
            "gate_proj" | "up_proj" => (h, i),
            "gate_up_proj" => (h, 2 * i),
            _ => (i, h),
        }
    };
    let per_layer: i64 = plan
        .targets
        .iter()
        .map(|t| {
            let (inp, out) = io(t);
            plan.lora.r * (inp + out)
        })
        .sum();
    (per_layer * mc.num_hidden_layers).max(0) as u64 * 4 * 4
}

/// Activation bytes of one micro-batch: every layer's saved activations (or with
/// recomputation each layer's input and one layer's graph), one layer's worth more while the
/// backward pass computes its gradients, the attention scores where they are materialised
/// (the eager, soft-capped attention), one layer's dequantized weights while it is
/// recomputed (QLoRA), and the logits.
fn activation_bytes(mc: &ModelConfig, plan: &MemoryPlan) -> u64 {
    let tokens = plan.micro_batch * plan.seq_len;
    let (h, i) = (mc.hidden_size as u64, mc.intermediate_size as u64);
    let per_layer =
        tokens * (PER_TOKEN_HIDDEN_UNITS * h + PER_TOKEN_INTERMEDIATE_UNITS * i) * plan.dtype_bytes;
    let scores = if mc.spec.attn_logit_softcap.is_some() {
        2 * plan.micro_batch
            * mc.num_attention_heads as u64
            * plan.seq_len
            * plan.seq_len
            * plan.dtype_bytes
    } else {
        0
    };
    let layers = mc.num_hidden_layers as u64;
    let kept = if plan.gradient_checkpointing {
        layers * tokens * h * plan.dtype_bytes + per_layer + scores
    } else {
        layers * (per_layer + scores)
    };
    let dequantized = if plan.quant.is_some() {
        mc.linear_parameters_per_layer().max(0) as u64 * plan.dtype_bytes
    } else {
        0
    };
    kept + per_layer + dequantized + tokens * mc.vocab_size as u64 * 4 * LOGIT_COPIES
}

/// The estimate for `mc` trained with `plan`.
pub fn estimate(mc: &ModelConfig, plan: &MemoryPlan) -> MemoryEstimate {
    let base_weights = base_weight_bytes(mc, plan.dtype_bytes, plan.quant);
    let lora_and_optimizer = lora_bytes(mc, plan);
    let activations = activation_bytes(mc, plan);
    MemoryEstimate {
        base_weights,
        lora_and_optimizer,
        activations,
        total: base_weights + lora_and_optimizer + activations,
    }
}
