//! The gated feed-forward block of a decoder layer: `down(act(gate(x)) * up(x))`, SwiGLU or
//! GeGLU, with gate and up as two projections or one fused `gate_up_proj` (Phi-3: gate is
//! the first half of its output).

use tch::Tensor;

use super::lora::LoraLinear;
use super::spec::Activation;

pub enum GateUp {
    Separate { gate: LoraLinear, up: LoraLinear },
    Fused(LoraLinear),
}

pub struct Mlp {
    pub gate_up: GateUp,
    pub down_proj: LoraLinear,
    pub activation: Activation,
}

impl Mlp {
    pub fn forward(&self, x: &Tensor, train: bool) -> Tensor {
        let (gate, up) = match &self.gate_up {
            GateUp::Separate { gate, up } => (gate.forward(x, train), up.forward(x, train)),
            GateUp::Fused(gate_up) => {
                let both = gate_up.forward(x, train);
                let half = both.size().last().copied().unwrap_or(0) / 2;
                (both.narrow(-1, 0, half), both.narrow(-1, half, half))
            }
        };
        let gate = match self.activation {
            Activation::Silu => gate.silu(),
            Activation::GeluTanh => gate.gelu("tanh"),
        };
        self.down_proj.forward(&(gate * up), train)
    }

    /// The linear modules as (name under `mlp.`, layer).
    pub fn linears(&self) -> Vec<(&'static str, &LoraLinear)> {
        match &self.gate_up {
            GateUp::Separate { gate, up } => vec![
                ("gate_proj", gate),
                ("up_proj", up),
                ("down_proj", &self.down_proj),
            ],
            GateUp::Fused(gu) => vec![("gate_up_proj", gu), ("down_proj", &self.down_proj)],
        }
    }

    pub fn linears_mut(&mut self) -> Vec<(&'static str, &mut LoraLinear)> {
        match &mut self.gate_up {
            GateUp::Separate { gate, up } => vec![
                ("gate_proj", gate),
                ("up_proj", up),
                ("down_proj", &mut self.down_proj),
            ],
            GateUp::Fused(gu) => vec![("gate_up_proj", gu), ("down_proj", &mut self.down_proj)],
        }
    }
}
