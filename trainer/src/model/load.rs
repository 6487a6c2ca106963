//! Building a model's layers from a checkpoint's tensors: every family's weight names and
//! shapes, frozen base weights in the model dtype or 4-bit quantized (QLoRA).

use tch::{Device, Kind, Tensor};
use tunewright_schemas::config::QuantType4bit;

use super::attention::{Attention, Qkv};
use super::config::ModelConfig;
use super::decoder::Layer;
use super::lora::LoraLinear;
use super::mlp::{GateUp, Mlp};
use super::norm::RmsNorm;
use super::quant::Quantized4bit;
use super::spec::AttentionSpan;
use super::weights::WeightFiles;
use crate::error::TrainerError;

/// QLoRA's storage of the frozen linear weights.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QuantSettings {
    pub quant_type: QuantType4bit,
    pub double_quant: bool,
}

/// Where and how tensors are read.
pub struct Loader<'a> {
    pub files: &'a WeightFiles,
    pub config: &'a ModelConfig,
    pub device: Device,
    pub dtype: Kind,
    pub quant: Option<QuantSettings>,
}

impl Loader<'_> {
    pub fn get(&self, name: &str, shape: &[i64]) -> Result<Tensor, TrainerError> {
        self.files.get(name, shape, self.device, self.dtype)
    }

    fn norm(&self, name: &str, dim: i64) -> Result<RmsNorm, TrainerError> {
        Ok(RmsNorm {
            weight: self.get(&format!("{name}.weight"), &[dim])?,
            eps: self.config.rms_norm_eps,
            plus_one: self.config.spec.norm_plus_one,
        })
    }

    fn linear(
        &self,
        name: &str,
        out_f: i64,
        in_f: i64,
        bias: bool,
    ) -> Result<LoraLinear, TrainerError> {
        let b = if bias {
            Some(self.get(&format!("{name}.bias"), &[out_f])?)
        } else {
            None
        };
        let wname = format!("{name}.weight");
        match self.quant {
            None => Ok(LoraLinear::frozen(self.get(&wname, &[out_f, in_f])?, b)),
            Some(q) => {
                // Quantize from the checkpoint's own values (as bitsandbytes does on load).
                let w = self
                    .files
                    .get(&wname, &[out_f, in_f], self.device, Kind::Float)?;
                let packed = Quantized4bit::quantize(&w, q.quant_type, q.double_quant)?;
                Ok(LoraLinear::quantized(packed, self.dtype, b))
            }
        }
    }

    fn attention(&self, p: &str) -> Result<Attention, TrainerError> {
        let c = self.config;
        let s = &c.spec;
        let h = c.hidden_size;
        let (q_dim, kv_dim) = c.q_kv_dims();
        let qkv_bias = s.qkv_bias || c.attention_bias;
        let qkv = if s.fused_projections {
            Qkv::Fused(self.linear(&format!("{p}.qkv_proj"), q_dim + 2 * kv_dim, h, qkv_bias)?)
        } else {
            Qkv::Separate {
                q: self.linear(&format!("{p}.q_proj"), q_dim, h, qkv_bias)?,
                k: self.linear(&format!("{p}.k_proj"), kv_dim, h, qkv_bias)?,
                v: self.linear(&format!("{p}.v_proj"), kv_dim, h, qkv_bias)?,
            }
        };
        let (q_norm, k_norm) = if s.qk_norm {
            (
                Some(self.norm(&format!("{p}.q_norm"), c.head_dim)?),
                Some(self.norm(&format!("{p}.k_norm"), c.head_dim)?),
            )
        } else {
            (None, None)
        };
        Ok(Attention {
            qkv,
            o_proj: self.linear(&format!("{p}.o_proj"), h, q_dim, c.attention_bias)?,
            q_norm,
            k_norm,
            num_heads: c.num_attention_heads,
            num_kv_heads: c.num_key_value_heads,
            head_dim: c.head_dim,
            scale: s.attn_scale,
            softcap: s.attn_logit_softcap,
        })
    }

    fn mlp(&self, p: &str) -> Result<Mlp, TrainerError> {
        let c = self.config;
        let (h, i, b) = (c.hidden_size, c.intermediate_size, c.mlp_bias);
        let gate_up = if c.spec.fused_projections {
            GateUp::Fused(self.linear(&format!("{p}.gate_up_proj"), 2 * i, h, b)?)
        } else {
            GateUp::Separate {
                gate: self.linear(&format!("{p}.gate_proj"), i, h, b)?,
                up: self.linear(&format!("{p}.up_proj"), i, h, b)?,
            }
        };
        Ok(Mlp {
            gate_up,
            down_proj: self.linear(&format!("{p}.down_proj"), h, i, b)?,
            activation: c.spec.activation,
        })
    }

    /// Decoder layer `i`.
    pub fn layer(&self, i: i64) -> Result<Layer, TrainerError> {
        let c = self.config;
        let p = format!("model.layers.{i}");
        let h = c.hidden_size;
        let span = c
            .spec
            .layer_spans
            .get(i as usize)
            .copied()
            .unwrap_or(AttentionSpan::Global);
        let feedforward_norms = if c.spec.sandwich_norms {
            Some((
                self.norm(&format!("{p}.pre_feedforward_layernorm"), h)?,
                self.norm(&format!("{p}.post_feedforward_layernorm"), h)?,
            ))
        } else {
            None
        };
        let local = c.spec.local_rope_theta.is_some() && matches!(span, AttentionSpan::Sliding(_));
        Ok(Layer {
            input_layernorm: self.norm(&format!("{p}.input_layernorm"), h)?,
            self_attn: self.attention(&format!("{p}.self_attn"))?,
            post_attention_layernorm: self.norm(&format!("{p}.post_attention_layernorm"), h)?,
            feedforward_norms,
            mlp: self.mlp(&format!("{p}.mlp"))?,
            span,
            rope: usize::from(local),
        })
    }
}
