//! RMSNorm in the two forms transformers computes: Llama's (statistics in f32, scaled by the
//! weight after the cast back to the input dtype) and Gemma's (scaled by `1 + weight` in f32,
//! then cast back).

use tch::{Kind, Tensor};

pub struct RmsNorm {
    pub weight: Tensor,
    pub eps: f64,
    /// Gemma's form: `x_normed * (1 + weight)` in f32.
    pub plus_one: bool,
}

impl RmsNorm {
    pub fn forward(&self, x: &Tensor) -> Tensor {
        let kind = x.kind();
        let xf = x.to_kind(Kind::Float);
        let var = xf.pow_tensor_scalar(2).mean_dim(-1, true, Kind::Float);
        let normed = xf * (var + self.eps).rsqrt();
        if self.plus_one {
            (normed * (self.weight.to_kind(Kind::Float) + 1.0)).to_kind(kind)
        } else {
            &self.weight * normed.to_kind(kind)
        }
    }
}
