//! AdamW with its state kept here (tch cannot save libtorch's optimizer state, and exact
//! resume needs it): first and second moments per parameter and the step count, decoupled
//! weight decay and bias correction exactly as `torch.optim.AdamW`.

use tch::{Kind, Tensor};

pub struct AdamW {
    pub beta1: f64,
    pub beta2: f64,
    pub eps: f64,
    pub weight_decay: f64,
    pub step: i64,
    /// (first moment, second moment) per parameter, in the parameters' order.
    pub moments: Vec<(Tensor, Tensor)>,
}

impl AdamW {
    pub fn new(params: &[Tensor], weight_decay: f64) -> AdamW {
        let moments = params
            .iter()
            .map(|p| {
                (
                    p.zeros_like().to_kind(Kind::Float),
                    p.zeros_like().to_kind(Kind::Float),
                )
            })
            .collect();
        AdamW {
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
            weight_decay,
            step: 0,
            moments,
        }
    }

    /// One update with learning rate `lr`, reading each parameter's `.grad()`.
    pub fn step(&mut self, params: &[Tensor], lr: f64) {
        let _guard = tch::no_grad_guard();
        self.step += 1;
        let bc1 = 1.0 - self.beta1.powi(self.step as i32);
        let bc2 = 1.0 - self.beta2.powi(self.step as i32);
        for (p, (m, v)) in params.iter().zip(self.moments.iter_mut()) {
            let g = p.grad();
            if !g.defined() {
                continue;
            }
            // torch's single-tensor AdamW, in place: m <- lerp(m, g, 1 - b1),
            // v <- b2 v + (1 - b2) g², p <- p - lr/bc1 * m / (sqrt(v)/sqrt(bc2) + eps).
            let g = g.to_kind(Kind::Float);
            let mut p = p.shallow_clone();
            if self.weight_decay != 0.0 {
                let _ = p.g_mul_scalar_(1.0 - lr * self.weight_decay);
            }
            let _ = m.lerp_(&g, 1.0 - self.beta1);
            let _ = v.g_mul_scalar_(self.beta2);
            let _ = v.addcmul_(&(&g * (1.0 - self.beta2)), &g);
            let mut denom = v.sqrt();
            let _ = denom.g_div_scalar_(bc2.sqrt());
            let _ = denom.g_add_scalar_(self.eps);
            if p.kind() == Kind::Float {
                let _ = p.addcdiv_(&(&*m * (-lr / bc1)), &denom);
            } else {
                let update = (&*m * (lr / bc1)) / denom;
                let _ = p.g_sub_(&update.to_kind(p.kind()));
            }
        }
    }
}

/// Clip the global L2 norm of the gradients to `max_norm` (0: no clipping); the norm before.
pub fn clip_grad_norm(params: &[Tensor], max_norm: f64) -> f64 {
    let _guard = tch::no_grad_guard();
    let mut sq = 0.0;
    for p in params {
        let g = p.grad();
        if g.defined() {
            sq += g
                .to_kind(Kind::Double)
                .pow_tensor_scalar(2)
                .sum(Kind::Double)
                .double_value(&[]);
        }
    }
    let norm = sq.sqrt();
    if max_norm > 0.0 && norm > max_norm {
        let scale = max_norm / (norm + 1e-6);
        for p in params {
            let mut g = p.grad();
            if g.defined() {
                let _ = g.g_mul_scalar_(scale);
            }
        }
    }
    norm
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Reference values from torch.optim.AdamW(lr=0.1, weight_decay=0.01) on p=[1, -2],
    /// loss = sum(p^2), three steps (computed with PyTorch 2.11).
    #[test]
    fn matches_torch_adamw() {
        let p = Tensor::from_slice(&[1.0f32, -2.0]).set_requires_grad(true);
        let mut opt = AdamW::new(&[p.shallow_clone()], 0.01);
        for _ in 0..3 {
            let loss = (&p * &p).sum(Kind::Float);
            loss.backward();
            opt.step(&[p.shallow_clone()], 0.1);
            let _ = p.grad().zero_();
        }
        let got: Vec<f32> = Vec::<f32>::try_from(p.detach()).unwrap();
        let want = [0.698_911_25f32, -1.694_944_6];
        for (g, w) in got.iter().zip(want) {
            assert!((g - w).abs() < 1e-5, "{got:?} vs {want:?}");
        }
    }
}
