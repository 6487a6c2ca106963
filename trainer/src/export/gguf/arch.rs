//! What llama.cpp calls each family's parts: the GGUF architecture name, the tensor names
//! (`token_embd`, `blk.N.attn_q`, ..., `output_norm`, `output`) and hyper-parameters, and the
//! q/k row permutation llama.cpp's rotary embedding of the `llama` architecture expects
//! (its converter's `LlamaModel.permute`: interleaved pairs instead of rotate-half halves).
//! Families whose mapping is not exact are refused (docs/exports.md).

use tch::Tensor;
use tunewright_schemas::ModelFamily;

use super::format::MetaValue;
use tunewright_schemas::config::gguf_refusal;

use crate::model::{AttentionSpan, ModelConfig, RopeScaling};

/// The GGUF architecture of `config`'s family, or why it cannot be exported as GGUF (the
/// rule is the job config's, `gguf_refusal`, which admission applies at submission).
pub fn gguf_arch(config: &ModelConfig) -> Result<&'static str, String> {
    if let Some(reason) = gguf_refusal(config.family, sliding_window(config)) {
        return Err(reason);
    }
    Ok(match config.family {
        ModelFamily::Qwen2 => "qwen2",
        ModelFamily::Qwen3 => "qwen3",
        _ => "llama",
    })
}

/// The window of the model's sliding layers, if any.
pub fn sliding_window(config: &ModelConfig) -> Option<i64> {
    config.spec.layer_spans.iter().find_map(|s| match s {
        AttentionSpan::Sliding(w) => Some(*w),
        AttentionSpan::Global => None,
    })
}

/// The GGUF name of a Hugging Face tensor name, or None for a tensor llama.cpp does not load
/// (a tied `lm_head`).
pub fn gguf_name(hf: &str) -> Option<String> {
    let fixed = match hf {
        "model.embed_tokens.weight" => Some("token_embd.weight"),
        "model.norm.weight" => Some("output_norm.weight"),
        "lm_head.weight" => Some("output.weight"),
        _ => None,
    };
    if let Some(f) = fixed {
        return Some(f.to_string());
    }
    let rest = hf.strip_prefix("model.layers.")?;
    let (n, part) = rest.split_once('.')?;
    let (module, suffix) = part.rsplit_once('.')?;
    let name = match module {
        "input_layernorm" => "attn_norm",
        "self_attn.q_proj" => "attn_q",
        "self_attn.k_proj" => "attn_k",
        "self_attn.v_proj" => "attn_v",
        "self_attn.o_proj" => "attn_output",
        "self_attn.q_norm" => "attn_q_norm",
        "self_attn.k_norm" => "attn_k_norm",
        "post_attention_layernorm" => "ffn_norm",
        "mlp.gate_proj" => "ffn_gate",
        "mlp.up_proj" => "ffn_up",
        "mlp.down_proj" => "ffn_down",
        _ => return None,
    };
    Some(format!("blk.{n}.{name}.{suffix}"))
}

/// The Hugging Face name of a GGUF tensor name (the inverse of `gguf_name`).
pub fn hf_name(gguf: &str, layers: i64) -> Option<String> {
    (0..layers)
        .flat_map(|i| {
            [
                "input_layernorm.weight",
                "self_attn.q_proj.weight",
                "self_attn.q_proj.bias",
                "self_attn.k_proj.weight",
                "self_attn.k_proj.bias",
                "self_attn.v_proj.weight",
                "self_attn.v_proj.bias",
                "self_attn.o_proj.weight",
                "self_attn.q_norm.weight",
                "self_attn.k_norm.weight",
                "post_attention_layernorm.weight",
                "mlp.gate_proj.weight",
                "mlp.up_proj.weight",
                "mlp.down_proj.weight",
            ]
            .into_iter()
            .map(move |p| format!("model.layers.{i}.{p}"))
        })
        .chain(
            [
                "model.embed_tokens.weight",
                "model.norm.weight",
                "lm_head.weight",
            ]
            .into_iter()
            .map(String::from),
        )
        .find(|hf| gguf_name(hf).as_deref() == Some(gguf))
}

/// Heads whose rows `permute` regroups for a q (`Some(heads)`) or k (`Some(kv_heads)`)
/// projection of the `llama` architecture; None for every other tensor.
pub fn permute_heads(arch: &str, hf: &str, config: &ModelConfig) -> Option<i64> {
    if arch != "llama" {
        return None;
    }
    if hf.ends_with("self_attn.q_proj.weight") || hf.ends_with("self_attn.q_proj.bias") {
        Some(config.num_attention_heads)
    } else if hf.ends_with("self_attn.k_proj.weight") || hf.ends_with("self_attn.k_proj.bias") {
        Some(config.num_key_value_heads)
    } else {
        None
    }
}

/// llama.cpp's order of a head's rows: `w.reshape(heads, 2, rows/heads/2, ...).swapaxes(1, 2)`.
pub fn permute(w: &Tensor, heads: i64) -> Tensor {
    let s = w.size();
    let mut shape = vec![heads, 2, s[0] / heads / 2];
    shape.extend(&s[1..]);
    w.reshape(&shape).transpose(1, 2).reshape(&s)
}

/// The inverse of `permute`.
pub fn unpermute(w: &Tensor, heads: i64) -> Tensor {
    let s = w.size();
    let mut shape = vec![heads, s[0] / heads / 2, 2];
    shape.extend(&s[1..]);
    w.reshape(&shape).transpose(1, 2).reshape(&s)
}

/// The hyper-parameters under `{arch}.`.
pub fn hyper_parameters(arch: &str, c: &ModelConfig) -> Vec<(String, MetaValue)> {
    let k = |s: &str| format!("{arch}.{s}");
    let u = |v: i64| MetaValue::U32(v as u32);
    let mut out = vec![
        (k("context_length"), u(c.max_position_embeddings)),
        (k("embedding_length"), u(c.hidden_size)),
        (k("block_count"), u(c.num_hidden_layers)),
        (k("feed_forward_length"), u(c.intermediate_size)),
        (k("attention.head_count"), u(c.num_attention_heads)),
        (k("attention.head_count_kv"), u(c.num_key_value_heads)),
        (k("attention.key_length"), u(c.head_dim)),
        (k("attention.value_length"), u(c.head_dim)),
        (
            k("attention.layer_norm_rms_epsilon"),
            MetaValue::F32(c.rms_norm_eps as f32),
        ),
        (k("rope.freq_base"), MetaValue::F32(c.rope_theta as f32)),
        (k("rope.dimension_count"), u(c.spec.rotary_dim)),
        (k("vocab_size"), u(c.vocab_size)),
    ];
    if let RopeScaling::Linear { factor } = c.rope_scaling {
        out.push((k("rope.scaling.type"), MetaValue::Str("linear".into())));
        out.push((k("rope.scaling.factor"), MetaValue::F32(factor as f32)));
    }
    out
}

/// Llama 3's rope scaling as llama.cpp takes it: a `rope_freqs` tensor of one divisor per
/// frequency (its converter's `generate_extra_tensors`).
pub fn rope_freqs(c: &ModelConfig) -> Option<Vec<f32>> {
    let RopeScaling::Llama3 {
        factor,
        low_freq_factor,
        high_freq_factor,
        original_max_position_embeddings: old,
    } = c.rope_scaling
    else {
        return None;
    };
    let dim = c.spec.rotary_dim;
    let low_wavelen = old / low_freq_factor;
    let high_wavelen = old / high_freq_factor;
    Some(
        (0..dim / 2)
            .map(|i| {
                let freq = 1.0 / c.rope_theta.powf((2 * i) as f64 / dim as f64);
                let wavelen = 2.0 * std::f64::consts::PI / freq;
                let f = if wavelen < high_wavelen {
                    1.0
                } else if wavelen > low_wavelen {
                    factor
                } else {
                    let smooth =
                        (old / wavelen - low_freq_factor) / (high_freq_factor - low_freq_factor);
                    1.0 / ((1.0 - smooth) / factor + smooth)
                };
                f as f32
            })
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_the_permutation_round_trip() {
        assert_eq!(
            gguf_name("model.layers.3.self_attn.q_proj.bias").as_deref(),
            Some("blk.3.attn_q.bias")
        );
        assert_eq!(
            hf_name("blk.1.ffn_down.weight", 2).as_deref(),
            Some("model.layers.1.mlp.down_proj.weight")
        );
        assert_eq!(gguf_name("model.rotary_emb.inv_freq"), None);
        let w = Tensor::arange(8 * 3, (tch::Kind::Float, tch::Device::Cpu)).reshape([8, 3]);
        let p = permute(&w, 2);
        // Head 0's rows 0..4 become 0, 2, 1, 3 (the halves interleaved).
        let rows: Vec<f64> = (0..4).map(|r| p.double_value(&[r, 0])).collect();
        assert_eq!(rows, [0.0, 6.0, 3.0, 9.0]);
        assert!(unpermute(&p, 2).equal(&w));
    }
}
