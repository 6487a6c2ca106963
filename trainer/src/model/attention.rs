//! Grouped-query self-attention of a decoder layer: q/k/v/o projections (separate, or one
//! fused `qkv_proj` split as q | k | v), optional per-head q/k norms, rotary embeddings, and
//! the attention itself: `scaled_dot_product_attention`, or the eager form transformers uses
//! where logits are soft-capped (Gemma 2). Key/value heads are repeated to the query heads
//! as transformers' `repeat_kv` does.

use tch::{Kind, Tensor};

use super::kv_cache::LayerCache;
use super::lora::LoraLinear;
use super::norm::RmsNorm;
use super::rope;

// One per layer, built once: the size difference between the variants costs nothing.
#[allow(clippy::large_enum_variant)]
pub enum Qkv {
    Separate {
        q: LoraLinear,
        k: LoraLinear,
        v: LoraLinear,
    },
    Fused(LoraLinear),
}

pub struct Attention {
    pub qkv: Qkv,
    pub o_proj: LoraLinear,
    pub q_norm: Option<RmsNorm>,
    pub k_norm: Option<RmsNorm>,
    pub num_heads: i64,
    pub num_kv_heads: i64,
    pub head_dim: i64,
    /// Multiplier of q·k (`head_dim^-0.5`, or Gemma's `query_pre_attn_scalar^-0.5`).
    pub scale: f64,
    pub softcap: Option<f64>,
}

/// What a layer's attention needs besides its input: rotary tables and the mask.
pub struct AttnInputs<'a> {
    pub cos: &'a Tensor,
    pub sin: &'a Tensor,
    /// A boolean `[b, 1, t, t]` mask (true = may attend), or None for plain causal attention.
    pub mask: Option<&'a Tensor>,
}

impl Attention {
    /// `x` `[b, t, hidden]` -> `[b, t, hidden]`.
    pub fn forward(&self, x: &Tensor, a: &AttnInputs, train: bool) -> Tensor {
        self.forward_kv(x, a, train, None)
    }

    /// `forward` for decoding: `cache` holds this layer's past keys and values (after rotary
    /// embeddings, before `repeat_kv`), which the new ones are appended to; `a`'s tables are
    /// those of the new positions and its mask spans past and new keys.
    pub fn forward_kv(
        &self,
        x: &Tensor,
        a: &AttnInputs,
        train: bool,
        cache: Option<&mut LayerCache>,
    ) -> Tensor {
        let size = x.size();
        let (b, t) = (size[0], size[1]);
        let (q, k, v) = self.project(x, train);
        let heads = |y: Tensor, n: i64| y.view([b, t, n, self.head_dim]);
        let (mut q, mut k) = (heads(q, self.num_heads), heads(k, self.num_kv_heads));
        if let (Some(qn), Some(kn)) = (&self.q_norm, &self.k_norm) {
            q = qn.forward(&q);
            k = kn.forward(&k);
        }
        let q = rope::apply(&q.transpose(1, 2), a.cos, a.sin);
        let k = rope::apply(&k.transpose(1, 2), a.cos, a.sin);
        let v = heads(v, self.num_kv_heads).transpose(1, 2);
        let (k, v) = match cache {
            Some(c) => c.append(k, v),
            None => (k, v),
        };
        let groups = self.num_heads / self.num_kv_heads;
        let (k, v) = if groups > 1 {
            (repeat_kv(&k, groups), repeat_kv(&v, groups))
        } else {
            (k, v)
        };
        let out = match self.softcap {
            Some(cap) => eager(&q, &k, &v, a.mask, self.scale, cap),
            None => sdpa(&q, &k, &v, a.mask, self.scale, self.head_dim),
        };
        let out = out
            .transpose(1, 2)
            .contiguous()
            .view([b, t, self.num_heads * self.head_dim]);
        self.o_proj.forward(&out, train)
    }

    /// q, k, v `[b, t, heads * head_dim]` (in that order, so LoRA dropout draws as before).
    fn project(&self, x: &Tensor, train: bool) -> (Tensor, Tensor, Tensor) {
        match &self.qkv {
            Qkv::Separate { q, k, v } => (
                q.forward(x, train),
                k.forward(x, train),
                v.forward(x, train),
            ),
            Qkv::Fused(qkv) => {
                let all = qkv.forward(x, train);
                let q_dim = self.num_heads * self.head_dim;
                let kv_dim = self.num_kv_heads * self.head_dim;
                (
                    all.narrow(-1, 0, q_dim),
                    all.narrow(-1, q_dim, kv_dim),
                    all.narrow(-1, q_dim + kv_dim, kv_dim),
                )
            }
        }
    }

    /// The linear modules as (name under `self_attn.`, layer).
    pub fn linears(&self) -> Vec<(&'static str, &LoraLinear)> {
        let mut out = match &self.qkv {
            Qkv::Separate { q, k, v } => vec![("q_proj", q), ("k_proj", k), ("v_proj", v)],
            Qkv::Fused(qkv) => vec![("qkv_proj", qkv)],
        };
        out.push(("o_proj", &self.o_proj));
        out
    }

    pub fn linears_mut(&mut self) -> Vec<(&'static str, &mut LoraLinear)> {
        let mut out = match &mut self.qkv {
            Qkv::Separate { q, k, v } => vec![("q_proj", q), ("k_proj", k), ("v_proj", v)],
            Qkv::Fused(qkv) => vec![("qkv_proj", qkv)],
        };
        out.push(("o_proj", &mut self.o_proj));
        out
    }
}

/// libtorch's fused attention; its default scale is `head_dim^-0.5`, passed explicitly only
/// when the family uses another.
fn sdpa(q: &Tensor, k: &Tensor, v: &Tensor, mask: Option<&Tensor>, scale: f64, d: i64) -> Tensor {
    let scale = ((scale - (d as f64).powf(-0.5)).abs() > 1e-12).then_some(scale);
    match mask {
        None => {
            Tensor::scaled_dot_product_attention::<Tensor>(q, k, v, None, 0.0, true, scale, false)
        }
        Some(m) => Tensor::scaled_dot_product_attention(q, k, v, Some(m), 0.0, false, scale, false),
    }
}

/// transformers' `eager_attention_forward` with soft-capping: scores scaled, capped, masked
/// (causal when no mask is given), softmax in f32 and cast back.
fn eager(
    q: &Tensor,
    k: &Tensor,
    v: &Tensor,
    mask: Option<&Tensor>,
    scale: f64,
    cap: f64,
) -> Tensor {
    let scores = q.matmul(&k.transpose(2, 3)) * scale;
    let scores = (scores / cap).tanh() * cap;
    let t = q.size()[2];
    let allowed = match mask {
        Some(m) => m.shallow_clone(),
        None => Tensor::ones([t, t], (Kind::Bool, q.device())).tril(0),
    };
    let neg = Tensor::from(f64::from(f32::MIN))
        .to_kind(scores.kind())
        .to_device(q.device());
    let scores = scores.where_self(&allowed, &neg);
    scores.softmax(-1, Kind::Float).to_kind(q.kind()).matmul(v)
}

/// `[b, kv, t, d]` -> `[b, kv * groups, t, d]`, each kv head repeated `groups` times in place.
fn repeat_kv(x: &Tensor, groups: i64) -> Tensor {
    let s = x.size();
    x.unsqueeze(2)
        .expand([s[0], s[1], groups, s[2], s[3]], false)
        .reshape([s[0], s[1] * groups, s[2], s[3]])
}
