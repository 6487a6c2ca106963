//! Grouped-query self-attention of a Llama layer: q/k/v/o projections (each a `LoraLinear`),
//! rotary embeddings, and `scaled_dot_product_attention` (causal; key/value heads repeated
//! to the query heads as transformers' `repeat_kv` does).

use tch::Tensor;

use super::lora::LoraLinear;
use super::rope;

pub struct Attention {
    pub q_proj: LoraLinear,
    pub k_proj: LoraLinear,
    pub v_proj: LoraLinear,
    pub o_proj: LoraLinear,
    pub num_heads: i64,
    pub num_kv_heads: i64,
    pub head_dim: i64,
}

impl Attention {
    /// `x` `[b, t, hidden]`; `mask` a boolean `[b, 1, t, t]` (true = may attend) or None
    /// for plain causal attention.
    pub fn forward(
        &self,
        x: &Tensor,
        cos: &Tensor,
        sin: &Tensor,
        mask: Option<&Tensor>,
        train: bool,
    ) -> Tensor {
        let size = x.size();
        let (b, t) = (size[0], size[1]);
        let q = self
            .q_proj
            .forward(x, train)
            .view([b, t, self.num_heads, self.head_dim])
            .transpose(1, 2);
        let k = self
            .k_proj
            .forward(x, train)
            .view([b, t, self.num_kv_heads, self.head_dim])
            .transpose(1, 2);
        let v = self
            .v_proj
            .forward(x, train)
            .view([b, t, self.num_kv_heads, self.head_dim])
            .transpose(1, 2);
        let q = rope::apply(&q, cos, sin);
        let k = rope::apply(&k, cos, sin);
        let groups = self.num_heads / self.num_kv_heads;
        let (k, v) = if groups > 1 {
            (repeat_kv(&k, groups), repeat_kv(&v, groups))
        } else {
            (k, v)
        };
        let out = match mask {
            None => Tensor::scaled_dot_product_attention::<Tensor>(
                &q, &k, &v, None, 0.0, true, None, false,
            ),
            Some(m) => {
                Tensor::scaled_dot_product_attention(&q, &k, &v, Some(m), 0.0, false, None, false)
            }
        };
        let out = out
            .transpose(1, 2)
            .contiguous()
            .view([b, t, self.num_heads * self.head_dim]);
        self.o_proj.forward(&out, train)
    }
}

/// `[b, kv, t, d]` -> `[b, kv * groups, t, d]`, each kv head repeated `groups` times in place.
fn repeat_kv(x: &Tensor, groups: i64) -> Tensor {
    let s = x.size();
    x.unsqueeze(2)
        .expand([s[0], s[1], groups, s[2], s[3]], false)
        .reshape([s[0], s[1] * groups, s[2], s[3]])
}
