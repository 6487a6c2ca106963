//! The SwiGLU feed-forward block and RMSNorm of a Llama layer.

use tch::{Kind, Tensor};

use super::lora::LoraLinear;

pub struct Mlp {
    pub gate_proj: LoraLinear,
    pub up_proj: LoraLinear,
    pub down_proj: LoraLinear,
}

impl Mlp {
    pub fn forward(&self, x: &Tensor, train: bool) -> Tensor {
        let gate = self.gate_proj.forward(x, train).silu();
        let up = self.up_proj.forward(x, train);
        self.down_proj.forward(&(gate * up), train)
    }
}

/// RMSNorm as transformers computes it: statistics in f32, scaled by the weight after the
/// cast back to the input dtype.
pub struct RmsNorm {
    pub weight: Tensor,
    pub eps: f64,
}

impl RmsNorm {
    pub fn forward(&self, x: &Tensor) -> Tensor {
        let kind = x.kind();
        let xf = x.to_kind(Kind::Float);
        let var = xf.pow_tensor_scalar(2).mean_dim(-1, true, Kind::Float);
        let normed = xf * (var + self.eps).rsqrt();
        &self.weight * normed.to_kind(kind)
    }
}
