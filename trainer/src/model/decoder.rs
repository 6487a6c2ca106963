//! One decoder layer, shared by every family: pre-norm attention and MLP with residual adds,
//! plus Gemma's norms after attention and around the MLP where the spec asks for them.

use tch::Tensor;

use super::attention::{Attention, AttnInputs};
use super::kv_cache::LayerCache;
use super::lora::LoraLinear;
use super::mlp::Mlp;
use super::norm::RmsNorm;
use super::spec::AttentionSpan;

pub struct Layer {
    pub input_layernorm: RmsNorm,
    pub self_attn: Attention,
    /// Llama: the norm before the MLP. Gemma: the norm of the attention output.
    pub post_attention_layernorm: RmsNorm,
    /// Gemma only: the norms before and after the MLP.
    pub feedforward_norms: Option<(RmsNorm, RmsNorm)>,
    pub mlp: Mlp,
    pub span: AttentionSpan,
    /// Index into the model's rotary tables (0: global, 1: Gemma 3's local base).
    pub rope: usize,
}

impl Layer {
    pub fn forward(&self, x: &Tensor, a: &AttnInputs, train: bool) -> Tensor {
        self.forward_kv(x, a, train, None)
    }

    /// `forward` with the layer's key/value cache (decoding; see `Attention::forward_kv`).
    // Residual adds allocate: tch's `+=` is libtorch's in-place `add_`, which would overwrite
    // a tensor autograd saved for the backward pass.
    #[allow(clippy::assign_op_pattern)]
    pub fn forward_kv(
        &self,
        x: &Tensor,
        a: &AttnInputs,
        train: bool,
        cache: Option<&mut LayerCache>,
    ) -> Tensor {
        let attn = self
            .self_attn
            .forward_kv(&self.input_layernorm.forward(x), a, train, cache);
        match &self.feedforward_norms {
            None => {
                let x = x + attn;
                let m = self
                    .mlp
                    .forward(&self.post_attention_layernorm.forward(&x), train);
                x + m
            }
            Some((pre, post)) => {
                let x = x + self.post_attention_layernorm.forward(&attn);
                let m = self.mlp.forward(&pre.forward(&x), train);
                &x + post.forward(&m)
            }
        }
    }

    /// The linear modules as (name under `model.layers.N.`, layer), in PEFT's order.
    pub fn linears(&self) -> Vec<(String, &LoraLinear)> {
        let attn = self.self_attn.linears().into_iter();
        let mlp = self.mlp.linears().into_iter();
        attn.map(|(n, l)| (format!("self_attn.{n}"), l))
            .chain(mlp.map(|(n, l)| (format!("mlp.{n}"), l)))
            .collect()
    }

    pub fn linears_mut(&mut self) -> Vec<(String, &mut LoraLinear)> {
        let attn = self.self_attn.linears_mut().into_iter();
        let mlp = self.mlp.linears_mut().into_iter();
        attn.map(|(n, l)| (format!("self_attn.{n}"), l))
            .chain(mlp.map(|(n, l)| (format!("mlp.{n}"), l)))
            .collect()
    }
}
