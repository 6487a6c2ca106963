//! LoRA exactly as PEFT lays it out: a frozen base `Linear` plus, on target modules,
//! `lora_A` `[r, in]` (kaiming-uniform with a = sqrt(5), i.e. U(-1/sqrt(in), 1/sqrt(in))) and
//! `lora_B` `[out, r]` (zeros), scaled by `alpha / r`, with dropout on the LoRA input only in
//! training. Adapter weights are f32 (PEFT's `autocast_adapter_dtype`); the input is cast to
//! f32 for the LoRA path and the sum cast back to the base dtype. The frozen weight is dense,
//! or 4-bit quantized (QLoRA) and dequantized at each use.

use tch::{Kind, Tensor};
use tunewright_schemas::ModelFamily;

use super::quant::Quantized4bit;
use crate::error::TrainerError;

/// The LoRA settings of a run (names as in PEFT's `LoraConfig`).
#[derive(Debug, Clone, PartialEq)]
pub struct LoraSettings {
    pub r: i64,
    pub alpha: f64,
    pub dropout: f64,
    pub target_modules: Vec<String>,
}

/// The module suffixes LoRA can target in a Llama-layout model (every family but Phi-3).
pub const LORA_TARGETS: &[&str] = &[
    "q_proj",
    "k_proj",
    "v_proj",
    "o_proj",
    "gate_proj",
    "up_proj",
    "down_proj",
];

/// Phi-3's modules: q, k and v live in one `qkv_proj`, gate and up in one `gate_up_proj`.
pub const FUSED_LORA_TARGETS: &[&str] = &["qkv_proj", "o_proj", "gate_up_proj", "down_proj"];

/// The linear modules LoRA can target in `family`.
pub fn targets_of(family: ModelFamily) -> &'static [&'static str] {
    match family {
        ModelFamily::Phi3 => FUSED_LORA_TARGETS,
        _ => LORA_TARGETS,
    }
}

/// The module of `family` that holds the projection a user named: in Phi-3, `q_proj`,
/// `k_proj` and `v_proj` are parts of `qkv_proj`, `gate_proj` and `up_proj` of `gate_up_proj`
/// (so one config trains every family). Other names stay as they are.
fn module_for(family: ModelFamily, name: &str) -> &str {
    match (family, name) {
        (ModelFamily::Phi3, "q_proj" | "k_proj" | "v_proj") => "qkv_proj",
        (ModelFamily::Phi3, "gate_proj" | "up_proj") => "gate_up_proj",
        _ => name,
    }
}

impl LoraSettings {
    pub fn scaling(&self) -> f64 {
        self.alpha / self.r as f64
    }

    /// `resolved_targets_for` a Llama-layout model, also accepting Phi-3's fused module names
    /// (for adapters read back from disk, whose targets are module names already).
    pub fn resolved_targets(&self) -> Result<Vec<String>, TrainerError> {
        let fused = self
            .target_modules
            .iter()
            .any(|t| matches!(t.rsplit('.').next(), Some("qkv_proj" | "gate_up_proj")));
        let family = if fused {
            ModelFamily::Phi3
        } else {
            ModelFamily::Llama
        };
        self.resolved_targets_for(family)
    }

    /// Check rank, dropout and targets against `family`'s modules; expand PEFT's "all-linear"
    /// to every module; map split names onto fused modules (Phi-3).
    pub fn resolved_targets_for(&self, family: ModelFamily) -> Result<Vec<String>, TrainerError> {
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
        let available = targets_of(family);
        let mut out = Vec::new();
        for t in &self.target_modules {
            if t == "all-linear" {
                out.extend(available.iter().map(|s| s.to_string()));
                continue;
            }
            let suffix = module_for(family, t.rsplit('.').next().unwrap_or(t));
            if !available.contains(&suffix) {
                return Err(TrainerError::InvalidLora {
                    reason: format!(
                        "target module '{t}' does not exist in a {} model (available: {})",
                        family.architecture(),
                        available.join(", ")
                    ),
                });
            }
            out.push(suffix.to_string());
        }
        out.sort_by_key(|s| available.iter().position(|x| x == s));
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

/// The frozen weight of a linear layer.
pub enum BaseWeight {
    Dense(Tensor),
    /// QLoRA: 4-bit blocks, dequantized to `compute` at each use.
    Quantized {
        q: Quantized4bit,
        compute: Kind,
    },
}

/// A frozen linear layer, optionally with a LoRA pair.
pub struct LoraLinear {
    pub base: BaseWeight,
    pub bias: Option<Tensor>,
    pub lora: Option<LoraPair>,
}

impl LoraLinear {
    pub fn frozen(weight: Tensor, bias: Option<Tensor>) -> LoraLinear {
        LoraLinear {
            base: BaseWeight::Dense(weight),
            bias,
            lora: None,
        }
    }

    /// A linear layer whose weight is stored 4-bit quantized and computed in `compute`.
    pub fn quantized(q: Quantized4bit, compute: Kind, bias: Option<Tensor>) -> LoraLinear {
        LoraLinear {
            base: BaseWeight::Quantized { q, compute },
            bias,
            lora: None,
        }
    }

    /// `[out, in]` of the weight.
    pub fn shape(&self) -> (i64, i64) {
        match &self.base {
            BaseWeight::Dense(w) => {
                let s = w.size();
                (s[0], s[1])
            }
            BaseWeight::Quantized { q, .. } => (q.shape[0], q.shape[1]),
        }
    }

    /// The weight as a dense tensor (dequantized when stored 4-bit).
    pub fn weight(&self) -> Tensor {
        match &self.base {
            BaseWeight::Dense(w) => w.shallow_clone(),
            BaseWeight::Quantized { q, compute } => q.dequantize(*compute),
        }
    }

    /// Bytes the frozen weight takes in memory.
    pub fn weight_bytes(&self) -> u64 {
        match &self.base {
            BaseWeight::Dense(w) => (w.numel() * w.kind().elt_size_in_bytes()) as u64,
            BaseWeight::Quantized { q, .. } => q.bytes(),
        }
    }

    fn device(&self) -> tch::Device {
        match &self.base {
            BaseWeight::Dense(w) => w.device(),
            BaseWeight::Quantized { q, .. } => q.packed.device(),
        }
    }

    /// Attach a fresh LoRA pair (A from the global generator, seeded by the caller; B zeros).
    pub fn attach(&mut self, settings: &LoraSettings) -> Result<(), TrainerError> {
        let (out_f, in_f) = self.shape();
        let device = self.device();
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
        let base = match &self.base {
            BaseWeight::Dense(w) => x.linear(w, self.bias.as_ref()),
            BaseWeight::Quantized { q, compute } => {
                x.linear(&q.dequantize(*compute), self.bias.as_ref())
            }
        };
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
            None => self.weight(),
            Some(l) => self.weight().to_kind(Kind::Float) + l.b.matmul(&l.a) * l.scaling,
        }
    }
}
