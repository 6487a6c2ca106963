//! `ModelSpec`: everything one model family does differently from Llama, as data read from
//! its `config.json`, so that one decoder (`decoder.rs`) serves every family. Llama is the
//! spec with every flag off.

use serde_json::Value;
use tunewright_schemas::ModelFamily;

use super::config_fields::{bad, opt_i64};
use crate::error::TrainerError;

/// The MLP's gate activation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Activation {
    /// SwiGLU (Llama, Mistral, Qwen, Phi-3).
    Silu,
    /// GeGLU with the tanh approximation (Gemma's `gelu_pytorch_tanh`).
    GeluTanh,
}

/// Attention of one layer: over every earlier token, or over the last `window` tokens only.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AttentionSpan {
    Global,
    /// A query at position i sees keys j with i - window < j <= i.
    Sliding(i64),
}

#[derive(Debug, Clone, PartialEq)]
pub struct ModelSpec {
    /// Biases on q, k and v (Qwen2) regardless of `attention_bias`.
    pub qkv_bias: bool,
    /// One `qkv_proj` and one `gate_up_proj` instead of separate projections (Phi-3).
    pub fused_projections: bool,
    /// Per-head RMSNorm on queries and keys before rotary embeddings (Qwen3, Gemma 3).
    pub qk_norm: bool,
    pub activation: Activation,
    /// RMSNorm scales by `1 + weight`, computed in f32 (Gemma).
    pub norm_plus_one: bool,
    /// Norms after attention and around the MLP too (Gemma's four norms per layer).
    pub sandwich_norms: bool,
    /// Embeddings multiplied by sqrt(hidden_size) (Gemma).
    pub scale_embeddings: bool,
    /// Attention logits soft-capped: cap * tanh(x / cap) (Gemma 2).
    pub attn_logit_softcap: Option<f64>,
    /// Output logits soft-capped (Gemma 2).
    pub final_logit_softcap: Option<f64>,
    /// Scale of q·k: `query_pre_attn_scalar^-0.5` (Gemma), else `head_dim^-0.5`.
    pub attn_scale: f64,
    /// The attention span of each layer.
    pub layer_spans: Vec<AttentionSpan>,
    /// Rotary base of the sliding layers, which use no rope scaling (Gemma 3).
    pub local_rope_theta: Option<f64>,
    /// Dimensions of each head that get rotary embeddings (Phi's `partial_rotary_factor`).
    pub rotary_dim: i64,
    /// `tie_word_embeddings` when config.json does not say (Gemma ties).
    pub ties_embeddings_by_default: bool,
}

/// The activation names (`hidden_act` / `hidden_activation`) each activation accepts.
const SILU: &[&str] = &["silu", "swish"];
const GELU_TANH: &[&str] = &["gelu_pytorch_tanh", "gelu_new", "gelu_fast"];

impl ModelSpec {
    pub fn from_json(
        family: ModelFamily,
        v: &Value,
        head_dim: i64,
        layers: i64,
    ) -> Result<ModelSpec, TrainerError> {
        use ModelFamily::*;
        let gemma = matches!(family, Gemma2 | Gemma3);
        let activation = activation_of(family, v)?;
        let f64_of = |k: &str| v.get(k).and_then(Value::as_f64);
        let attn_scale = match (gemma, f64_of("query_pre_attn_scalar")) {
            (true, Some(s)) if s > 0.0 => s.powf(-0.5),
            _ => (head_dim as f64).powf(-0.5),
        };
        let partial = f64_of("partial_rotary_factor").unwrap_or(1.0);
        let rotary_dim = (head_dim as f64 * partial) as i64;
        if !(partial > 0.0 && partial <= 1.0) || rotary_dim < 2 || rotary_dim % 2 != 0 {
            return Err(bad(format!(
                "partial_rotary_factor {partial} gives {rotary_dim} rotary dimensions of {head_dim}: it must be even and at least 2"
            )));
        }
        Ok(ModelSpec {
            qkv_bias: family == Qwen2,
            fused_projections: family == Phi3,
            qk_norm: matches!(family, Qwen3 | Gemma3),
            activation,
            norm_plus_one: gemma,
            sandwich_norms: gemma,
            scale_embeddings: gemma,
            attn_logit_softcap: if family == Gemma2 {
                f64_of("attn_logit_softcapping")
            } else {
                None
            },
            final_logit_softcap: if gemma {
                f64_of("final_logit_softcapping")
            } else {
                None
            },
            attn_scale,
            layer_spans: layer_spans(family, v, layers)?,
            local_rope_theta: if family == Gemma3 {
                Some(local_rope_theta(v))
            } else {
                None
            },
            rotary_dim,
            ties_embeddings_by_default: gemma,
        })
    }
}

/// Gemma 3's rotary base of the sliding layers: `rope_local_base_freq` (transformers 4) or
/// `rope_parameters.sliding_attention.rope_theta` (transformers 5).
fn local_rope_theta(v: &Value) -> f64 {
    v.get("rope_parameters")
        .and_then(|p| p.get("sliding_attention"))
        .and_then(|p| p.get("rope_theta"))
        .and_then(Value::as_f64)
        .or_else(|| v.get("rope_local_base_freq").and_then(Value::as_f64))
        .unwrap_or(10000.0)
}

fn activation_of(family: ModelFamily, v: &Value) -> Result<Activation, TrainerError> {
    let gemma = matches!(family, ModelFamily::Gemma2 | ModelFamily::Gemma3);
    // Gemma reads `hidden_activation` (its `hidden_act` is a leftover); the others `hidden_act`.
    let key = if gemma {
        "hidden_activation"
    } else {
        "hidden_act"
    };
    let name = v.get(key).and_then(Value::as_str).unwrap_or(if gemma {
        "gelu_pytorch_tanh"
    } else {
        "silu"
    });
    if SILU.contains(&name) {
        Ok(Activation::Silu)
    } else if GELU_TANH.contains(&name) {
        Ok(Activation::GeluTanh)
    } else {
        Err(TrainerError::UnsupportedArch {
            architecture: format!("{} with {key}={name}", family.architecture()),
        })
    }
}

/// Each layer's span: `layer_types` when config.json lists them (transformers >= 4.53 writes
/// them), else each family's rule for older configs.
fn layer_spans(
    family: ModelFamily,
    v: &Value,
    layers: i64,
) -> Result<Vec<AttentionSpan>, TrainerError> {
    use ModelFamily::*;
    let window = opt_i64(v, "sliding_window").filter(|w| *w > 0);
    let sliding = |on: bool| -> Result<AttentionSpan, TrainerError> {
        match (on, window) {
            (false, _) => Ok(AttentionSpan::Global),
            (true, Some(w)) => Ok(AttentionSpan::Sliding(w)),
            (true, None) => Err(bad(
                "a layer is sliding_attention but sliding_window is not a positive integer",
            )),
        }
    };
    if let Some(types) = v.get("layer_types").and_then(Value::as_array) {
        if types.len() as i64 != layers {
            return Err(bad(format!(
                "layer_types lists {} layers, num_hidden_layers is {layers}",
                types.len()
            )));
        }
        // Qwen2/3 keep layer_types even when use_sliding_window is off: then nothing slides.
        let qwen_off = matches!(family, Qwen2 | Qwen3)
            && !v
                .get("use_sliding_window")
                .and_then(Value::as_bool)
                .unwrap_or(false);
        return types
            .iter()
            .map(|t| match t.as_str() {
                Some("sliding_attention") => sliding(!qwen_off),
                Some("full_attention") => Ok(AttentionSpan::Global),
                other => Err(bad(format!("unknown layer type {other:?} in layer_types"))),
            })
            .collect();
    }
    let pattern = opt_i64(v, "sliding_window_pattern").unwrap_or(6).max(1);
    let max_window_layers = opt_i64(v, "max_window_layers").unwrap_or(layers);
    let qwen_on = v
        .get("use_sliding_window")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    (0..layers)
        .map(|i| match family {
            Llama => Ok(AttentionSpan::Global),
            Mistral | Phi3 => sliding(window.is_some()),
            Qwen2 | Qwen3 => sliding(qwen_on && window.is_some() && i >= max_window_layers),
            Gemma2 => sliding((i + 1) % 2 != 0),
            Gemma3 => sliding((i + 1) % pattern != 0),
        })
        .collect()
}
