//! Rotary position embeddings as transformers computes them: inverse frequencies in f32
//! (with Llama 3 or linear scaling), cos/sin tables for positions, and `rotate_half`.

use tch::{Device, Kind, Tensor};

use super::config::{LlamaConfig, RopeScaling};

/// Inverse frequencies `[head_dim / 2]` in f32 on `device`.
pub fn inv_freq(cfg: &LlamaConfig, device: Device) -> Tensor {
    let dim = cfg.head_dim;
    let exponent = Tensor::arange_start_step(0, dim, 2, (Kind::Int64, device)).to_kind(Kind::Float)
        / (dim as f64);
    let base = Tensor::from(cfg.rope_theta as f32).to_device(device);
    let inv = base.pow(&exponent).reciprocal();
    match cfg.rope_scaling {
        RopeScaling::None => inv,
        RopeScaling::Linear { factor } => inv / factor,
        RopeScaling::Llama3 {
            factor,
            low_freq_factor,
            high_freq_factor,
            original_max_position_embeddings: old,
        } => {
            let low_freq_wavelen = old / low_freq_factor;
            let high_freq_wavelen = old / high_freq_factor;
            let wavelen = inv.reciprocal() * (2.0 * std::f64::consts::PI);
            let scaled = inv.where_self(&wavelen.le(low_freq_wavelen), &(&inv / factor));
            let smooth = ((wavelen.reciprocal() * old) - low_freq_factor)
                / (high_freq_factor - low_freq_factor);
            let smoothed = (smooth.ones_like() - &smooth) * &scaled / factor + &smooth * &scaled;
            let medium = wavelen
                .ge(high_freq_wavelen)
                .logical_and(&wavelen.le(low_freq_wavelen));
            smoothed.where_self(&medium, &scaled)
        }
    }
}

/// cos and sin tables `[t, head_dim]` (f32) for positions `0..t`.
pub fn cos_sin(inv_freq: &Tensor, t: i64) -> (Tensor, Tensor) {
    let pos = Tensor::arange(t, (Kind::Float, inv_freq.device()));
    let freqs = pos.unsqueeze(1).matmul(&inv_freq.unsqueeze(0));
    let emb = Tensor::cat(&[&freqs, &freqs], -1);
    (emb.cos(), emb.sin())
}

/// Apply the rotation to `x` `[b, heads, t, head_dim]`; `cos`/`sin` `[t, head_dim]` in x's dtype.
pub fn apply(x: &Tensor, cos: &Tensor, sin: &Tensor) -> Tensor {
    let half = x.size()[3] / 2;
    let x1 = x.narrow(3, 0, half);
    let x2 = x.narrow(3, half, half);
    let rotated = Tensor::cat(&[&x2.neg(), &x1], 3);
    x * cos + rotated * sin
}
