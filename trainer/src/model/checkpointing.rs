//! Gradient checkpointing: the forward pass runs each decoder layer without a graph and keeps
//! only its input; the backward pass re-runs the layers from the top, each with a graph on a
//! fresh leaf copy of its input, and pushes the gradient of its output through it (a
//! vector-Jacobian product written as `sum(y * grad).backward()`), which leaves the LoRA
//! gradients and the gradient of the layer's input. Activation memory is then one layer's
//! graph plus one `[b, t, hidden]` tensor per layer.
//!
//! LoRA dropout draws from libtorch's generator: each layer's forward is run under a seed
//! drawn for it, and its recomputation under the same seed, so both see the same masks.

use tch::{Kind, Tensor};

use super::causal_lm::{guarded, CausalLm, Shared};
use crate::error::TrainerError;

/// What the backward pass needs to recompute the layers.
pub struct Recompute<'a> {
    model: &'a CausalLm,
    shared: Shared,
    /// The input of each layer (detached).
    inputs: Vec<Tensor>,
    /// The seed each layer's forward ran under.
    seeds: Vec<i64>,
    /// The last layer's output as a leaf: the loss's backward leaves its gradient here.
    top: Tensor,
}

impl CausalLm {
    /// Training forward with checkpointing: f32 logits, and the `Recompute` whose `backward`
    /// must be called after the loss's backward.
    pub fn forward_checkpointed(
        &self,
        input_ids: &Tensor,
        attention_mask: Option<&Tensor>,
    ) -> Result<(Tensor, Recompute<'_>), TrainerError> {
        guarded("forward", || {
            let shared = self.shared(attention_mask, input_ids.size()[1]);
            let mut x = tch::no_grad(|| self.embed(input_ids));
            let mut inputs = Vec::with_capacity(self.layers.len());
            let mut seeds = Vec::with_capacity(self.layers.len());
            for layer in &self.layers {
                let seed = Tensor::randint(i64::MAX, [1], (Kind::Int64, tch::Device::Cpu))
                    .int64_value(&[0]);
                tch::manual_seed(seed);
                let y = tch::no_grad(|| layer.forward(&x, &shared.inputs(layer), true));
                inputs.push(x);
                seeds.push(seed);
                x = y;
            }
            let top = x.detach().set_requires_grad(true);
            let logits = self.logits(&self.final_norm().forward(&top));
            let r = Recompute {
                model: self,
                shared,
                inputs,
                seeds,
                top,
            };
            (logits, r)
        })
    }
}

impl Recompute<'_> {
    /// Back-propagate through the layers, from the top, recomputing each.
    pub fn backward(self) -> Result<(), TrainerError> {
        guarded("backward", || {
            let mut grad = self.top.grad();
            if !grad.defined() {
                // The loss did not depend on the layers (nothing to train through).
                return;
            }
            let layers = &self.model.layers;
            for (i, layer) in layers.iter().enumerate().rev() {
                let x = self.inputs[i].detach().set_requires_grad(i > 0);
                tch::manual_seed(self.seeds[i]);
                let y = layer.forward(&x, &self.shared.inputs(layer), true);
                (y * &grad).sum(Kind::Float).backward();
                if i > 0 {
                    grad = x.grad();
                }
            }
        })
    }
}
