//! LoRA exactly as PEFT lays it out: a frozen base `Linear` plus, on target modules,
//! `lora_A` `[r, in]` (kaiming-uniform with a = sqrt(5), i.e. U(-1/sqrt(in), 1/sqrt(in))) and
//! `lora_B` `[out, r]` (zeros), scaled by `alpha / r`, with dropout on the LoRA input only in
//! training. Adapter weights are f32 (PEFT's `autocast_adapter_dtype`); the input is cast to
//! f32 for the LoRA path and the sum cast back to the base dtype.

use tch::{Kind, Tensor};

use crate::error::TrainerError;

/// The LoRA settings of a run (names as in PEFT's `LoraConfig`).
#[derive(Debug, Clone, PartialEq)]
pub struct LoraSettings {
    pub r: i64,
    pub alpha: f64,
    pub dropout: f64,
    pub target_modules: Vec<String>,
}

/// The module suffixes LoRA can target in a Llama model.
pub const LORA_TARGETS: &[&str] = &[
    "q_proj",
    "k_proj",
    "v_proj",
    "o_proj",
    "gate_proj",
    "up_proj",
    "down_proj",
];

impl LoraSettings {
    pub fn scaling(&self) -> f64 {
        self.alpha / self.r as f64
    }

    /// Check rank, dropout and targets; expand PEFT's "all-linear" to every target suffix.
    pub fn resolved_targets(&self) -> Result<Vec<String>, TrainerError> {
        if self.r <= 0 {
            return Err(TrainerError::InvalidLora {
                reason: format!("lora_r must be positive, got {}", self.r),
            });
        }
        if !(0.0..1.0).contains(&self.dropout) {
            return Err(TrainerError::InvalidLora {
                reason: format!("lora_dropout must be in [0, 1), got {}", self.dropout),
            });
        }
        if !self.alpha.is_finite() || self.alpha <= 0.0 {
            return Err(TrainerError::InvalidLora {
                reason: format!("lora_alpha must be positive, got {}", self.alpha),
            });
        }
        if self.target_modules.is_empty() {
            return Err(TrainerError::InvalidLora {
                reason: "target_modules is empty".into(),
            });
        }
        let mut out = Vec::new();
        for t in &self.target_modules {
            if t == "all-linear" {
                out.extend(LORA_TARGETS.iter().map(|s| s.to_string()));
                continue;
            }
            let suffix = t.rsplit('.').next().unwrap_or(t);
            if !LORA_TARGETS.contains(&suffix) {
                return Err(TrainerError::InvalidLora {
                    reason: format!(
                        "target module '{t}' does not exist in a Llama model (available: {})",
                        LORA_TARGETS.join(", ")
                    ),
                });
            }
            out.push(suffix.to_string());
        }
        out.sort_by_key(|s| LORA_TARGETS.iter().position(|x| x == s));
        out.dedup();
        Ok(out)
    }
}

/// The trainable pair of one adapted module.
pub struct LoraPair {
    pub a: Tensor,
    pub b: Tensor,
    pub scaling: f64,
    pub dropout: f64,
}

/// A frozen linear layer, optionally with a LoRA pair.
pub struct LoraLinear {
    pub weight: Tensor,
    pub bias: Option<Tensor>,
    pub lora: Option<LoraPair>,
}

impl LoraLinear {
    pub fn frozen(weight: Tensor, bias: Option<Tensor>) -> LoraLinear {
        LoraLinear {
            weight,
            bias,
            lora: None,
        }
    }

    /// Attach a fresh LoRA pair (A from the global generator, seeded by the caller; B zeros).
    pub fn attach(&mut self, settings: &LoraSettings) -> Result<(), TrainerError> {
        let size = self.weight.size();
        let (out_f, in_f) = (size[0], size[1]);
        let device = self.weight.device();
        let bound = 1.0 / (in_f as f64).sqrt();
        let a = Tensor::f_empty([settings.r, in_f], (Kind::Float, tch::Device::Cpu))
            .and_then(|mut a| a.f_uniform_(-bound, bound))
            .and_then(|a| a.f_to_device(device))
            .map_err(|e| TrainerError::torch("LoRA init", e))?;
        let b = Tensor::f_zeros([out_f, settings.r], (Kind::Float, device))
            .map_err(|e| TrainerError::torch("LoRA init", e))?;
        self.lora = Some(LoraPair {
            a: a.set_requires_grad(true),
            b: b.set_requires_grad(true),
            scaling: settings.scaling(),
            dropout: settings.dropout,
        });
        Ok(())
    }

    pub fn forward(&self, x: &Tensor, train: bool) -> Tensor {
        let base = x.linear(&self.weight, self.bias.as_ref());
        match &self.lora {
            None => base,
            Some(l) => {
                let xf = x.to_kind(Kind::Float);
                let xf = if train && l.dropout > 0.0 {
                    xf.dropout(l.dropout, true)
                } else {
                    xf
                };
                let delta =
                    xf.linear::<Tensor>(&l.a, None).linear::<Tensor>(&l.b, None) * l.scaling;
                if base.kind() == Kind::Float {
                    base + delta
                } else {
                    (base.to_kind(Kind::Float) + delta).to_kind(base.kind())
                }
            }
        }
    }

    /// W + scaling * B @ A in f32 (the merged weight), or W itself without LoRA.
    pub fn merged_weight(&self) -> Tensor {
        match &self.lora {
            None => self.weight.shallow_clone(),
            Some(l) => self.weight.to_kind(Kind::Float) + l.b.matmul(&l.a) * l.scaling,
        }
    }
}
