//! Rotary position embeddings as transformers computes them: inverse frequencies in f32
//! (with Llama 3 or linear scaling) over the rotary part of a head (all of it, or Phi's
//! `partial_rotary_factor` of it), cos/sin tables for positions, and `rotate_half`.

use tch::{Device, Kind, Tensor};

use super::config::RopeScaling;

/// Inverse frequencies `[rotary_dim / 2]` in f32 on `device` for base `theta`.
pub fn inv_freq(theta: f64, rotary_dim: i64, scaling: &RopeScaling, device: Device) -> Tensor {
    let exponent = Tensor::arange_start_step(0, rotary_dim, 2, (Kind::Int64, device))
        .to_kind(Kind::Float)
        / (rotary_dim as f64);
    let base = Tensor::from(theta as f32).to_device(device);
    let inv = base.pow(&exponent).reciprocal();
    match *scaling {
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

/// cos and sin tables `[t, rotary_dim]` (f32) for positions `0..t`.
pub fn cos_sin(inv_freq: &Tensor, t: i64) -> (Tensor, Tensor) {
    let pos = Tensor::arange(t, (Kind::Float, inv_freq.device()));
    let freqs = pos.unsqueeze(1).matmul(&inv_freq.unsqueeze(0));
    let emb = Tensor::cat(&[&freqs, &freqs], -1);
    (emb.cos(), emb.sin())
}

/// Apply the rotation to `x` `[b, heads, t, head_dim]`; `cos`/`sin` `[t, rotary_dim]` in x's
/// dtype. Dimensions past `rotary_dim` pass through unchanged.
pub fn apply(x: &Tensor, cos: &Tensor, sin: &Tensor) -> Tensor {
    let head_dim = x.size()[3];
    let rotary_dim = cos.size()[1];
    if rotary_dim < head_dim {
        let rot = x.narrow(3, 0, rotary_dim);
        let pass = x.narrow(3, rotary_dim, head_dim - rotary_dim);
        return Tensor::cat(&[&rotate(&rot, cos, sin), &pass], 3);
    }
    rotate(x, cos, sin)
}

fn rotate(x: &Tensor, cos: &Tensor, sin: &Tensor) -> Tensor {
    let half = x.size()[3] / 2;
    let x1 = x.narrow(3, 0, half);
    let x2 = x.narrow(3, half, half);
    let rotated = Tensor::cat(&[&x2.neg(), &x1], 3);
    x * cos + rotated * sin
}
