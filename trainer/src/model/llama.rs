//! `Llama`: a Llama-family causal LM built from a local Hugging Face checkpoint, with frozen
//! base weights and optional LoRA pairs on the target projections. `forward` gives f32
//! logits; `lora_parameters` lists the trainable tensors under PEFT's key names.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::Path;

use tch::{Device, Kind, Tensor};

use super::attention::Attention;
use super::config::LlamaConfig;
use super::lora::{LoraLinear, LoraSettings};
use super::mlp::{Mlp, RmsNorm};
use super::rope;
use super::weights::WeightFiles;
use crate::error::TrainerError;

/// The prefix PEFT puts before a module's name in adapter files.
pub const PEFT_PREFIX: &str = "base_model.model.";

pub struct Layer {
    pub input_layernorm: RmsNorm,
    pub self_attn: Attention,
    pub post_attention_layernorm: RmsNorm,
    pub mlp: Mlp,
}

pub struct Llama {
    pub config: LlamaConfig,
    pub device: Device,
    pub dtype: Kind,
    pub lora: Option<LoraSettings>,
    embed_tokens: Tensor,
    layers: Vec<Layer>,
    norm: RmsNorm,
    lm_head: Tensor,
    inv_freq: Tensor,
}

impl Llama {
    /// Load `dir` onto `device` in `dtype` (base weights frozen); attach LoRA pairs when
    /// `lora` is given, initialised deterministically from `seed`.
    pub fn load(
        dir: &Path,
        device: Device,
        dtype: Kind,
        lora: Option<&LoraSettings>,
        seed: i64,
    ) -> Result<Llama, TrainerError> {
        let config = LlamaConfig::from_dir(dir)?;
        let targets = match lora {
            Some(l) => l.resolved_targets()?,
            None => Vec::new(),
        };
        let files = WeightFiles::open(dir)?;
        let _guard = tch::no_grad_guard();
        let c = &config;
        let (h, q_dim, kv_dim) = (
            c.hidden_size,
            c.num_attention_heads * c.head_dim,
            c.num_key_value_heads * c.head_dim,
        );
        let get = |name: &str, shape: &[i64]| files.get(name, shape, device, dtype);
        let linear =
            |name: &str, out_f: i64, in_f: i64, bias: bool| -> Result<LoraLinear, TrainerError> {
                let w = get(&format!("{name}.weight"), &[out_f, in_f])?;
                let b = if bias {
                    Some(get(&format!("{name}.bias"), &[out_f])?)
                } else {
                    None
                };
                Ok(LoraLinear::frozen(w, b))
            };
        let embed_tokens = get("model.embed_tokens.weight", &[c.vocab_size, h])?;
        let mut layers = Vec::with_capacity(c.num_hidden_layers as usize);
        for i in 0..c.num_hidden_layers {
            let p = format!("model.layers.{i}");
            let ab = c.attention_bias;
            let mb = c.mlp_bias;
            layers.push(Layer {
                input_layernorm: RmsNorm {
                    weight: get(&format!("{p}.input_layernorm.weight"), &[h])?,
                    eps: c.rms_norm_eps,
                },
                self_attn: Attention {
                    q_proj: linear(&format!("{p}.self_attn.q_proj"), q_dim, h, ab)?,
                    k_proj: linear(&format!("{p}.self_attn.k_proj"), kv_dim, h, ab)?,
                    v_proj: linear(&format!("{p}.self_attn.v_proj"), kv_dim, h, ab)?,
                    o_proj: linear(&format!("{p}.self_attn.o_proj"), h, q_dim, ab)?,
                    num_heads: c.num_attention_heads,
                    num_kv_heads: c.num_key_value_heads,
                    head_dim: c.head_dim,
                },
                post_attention_layernorm: RmsNorm {
                    weight: get(&format!("{p}.post_attention_layernorm.weight"), &[h])?,
                    eps: c.rms_norm_eps,
                },
                mlp: Mlp {
                    gate_proj: linear(&format!("{p}.mlp.gate_proj"), c.intermediate_size, h, mb)?,
                    up_proj: linear(&format!("{p}.mlp.up_proj"), c.intermediate_size, h, mb)?,
                    down_proj: linear(&format!("{p}.mlp.down_proj"), h, c.intermediate_size, mb)?,
                },
            });
        }
        let norm = RmsNorm {
            weight: get("model.norm.weight", &[h])?,
            eps: c.rms_norm_eps,
        };
        let lm_head = if c.tie_word_embeddings {
            embed_tokens.shallow_clone()
        } else {
            get("lm_head.weight", &[c.vocab_size, h])?
        };
        let inv_freq = rope::inv_freq(c, device);
        let mut model = Llama {
            config,
            device,
            dtype,
            lora: lora.cloned(),
            embed_tokens,
            layers,
            norm,
            lm_head,
            inv_freq,
        };
        if let Some(settings) = lora {
            tch::manual_seed(seed);
            for (name, lin) in model.linears_mut() {
                let suffix = name.rsplit('.').next().unwrap_or_default();
                if targets.iter().any(|t| t == suffix) {
                    lin.attach(settings)?;
                }
            }
        }
        Ok(model)
    }

    /// Every linear module as (name, layer), in model order, e.g. `model.layers.0.self_attn.q_proj`.
    fn linears(&self) -> Vec<(String, &LoraLinear)> {
        let mut out = Vec::new();
        for (i, l) in self.layers.iter().enumerate() {
            let p = format!("model.layers.{i}");
            let a = &l.self_attn;
            let m = &l.mlp;
            for (n, lin) in [
                ("self_attn.q_proj", &a.q_proj),
                ("self_attn.k_proj", &a.k_proj),
                ("self_attn.v_proj", &a.v_proj),
                ("self_attn.o_proj", &a.o_proj),
                ("mlp.gate_proj", &m.gate_proj),
                ("mlp.up_proj", &m.up_proj),
                ("mlp.down_proj", &m.down_proj),
            ] {
                out.push((format!("{p}.{n}"), lin));
            }
        }
        out
    }

    fn linears_mut(&mut self) -> Vec<(String, &mut LoraLinear)> {
        let mut out = Vec::new();
        for (i, l) in self.layers.iter_mut().enumerate() {
            let p = format!("model.layers.{i}");
            let a = &mut l.self_attn;
            let m = &mut l.mlp;
            out.push((format!("{p}.self_attn.q_proj"), &mut a.q_proj));
            out.push((format!("{p}.self_attn.k_proj"), &mut a.k_proj));
            out.push((format!("{p}.self_attn.v_proj"), &mut a.v_proj));
            out.push((format!("{p}.self_attn.o_proj"), &mut a.o_proj));
            out.push((format!("{p}.mlp.gate_proj"), &mut m.gate_proj));
            out.push((format!("{p}.mlp.up_proj"), &mut m.up_proj));
            out.push((format!("{p}.mlp.down_proj"), &mut m.down_proj));
        }
        out
    }

    /// Names of the linear modules (for the pre-flight "target modules exist" check),
    /// `lm_head` included.
    pub fn module_names(&self) -> Vec<String> {
        let mut names: Vec<String> = self.linears().into_iter().map(|(n, _)| n).collect();
        names.push("lm_head".to_string());
        names
    }

    /// Trainable LoRA tensors under PEFT's key names, in model order, A before B.
    pub fn lora_parameters(&self) -> Vec<(String, Tensor)> {
        let mut out = Vec::new();
        for (name, lin) in self.linears() {
            if let Some(l) = &lin.lora {
                out.push((
                    format!("{PEFT_PREFIX}{name}.lora_A.weight"),
                    l.a.shallow_clone(),
                ));
                out.push((
                    format!("{PEFT_PREFIX}{name}.lora_B.weight"),
                    l.b.shallow_clone(),
                ));
            }
        }
        out
    }

    /// Copy `named` into the LoRA tensors exactly (for resume and for loading an adapter).
    /// Every LoRA tensor of the model must be given with its shape; extra names are errors.
    pub fn load_lora_parameters(&mut self, named: &[(String, Tensor)]) -> Result<(), TrainerError> {
        let own = self.lora_parameters();
        if own.is_empty() {
            return Err(TrainerError::InvalidLora {
                reason: "the model has no LoRA layers to load into".into(),
            });
        }
        for (name, _) in named {
            if !own.iter().any(|(n, _)| n == name) {
                return Err(TrainerError::InvalidLora {
                    reason: format!("unexpected LoRA tensor '{name}'"),
                });
            }
        }
        let _guard = tch::no_grad_guard();
        for (name, mut dst) in own {
            let Some((_, src)) = named.iter().find(|(n, _)| *n == name) else {
                return Err(TrainerError::InvalidLora {
                    reason: format!("LoRA tensor '{name}' is missing"),
                });
            };
            if src.size() != dst.size() {
                return Err(TrainerError::InvalidLora {
                    reason: format!(
                        "LoRA tensor '{name}' has shape {:?}, expected {:?}",
                        src.size(),
                        dst.size()
                    ),
                });
            }
            dst.f_copy_(src)
                .map_err(|e| TrainerError::torch("loading LoRA weights", e))?;
        }
        Ok(())
    }

    /// f32 logits `[b, t, vocab]` for `input_ids` `[b, t]` (i64); `attention_mask` `[b, t]`
    /// with 1 for tokens and 0 for padding. Panics on libtorch errors: use `try_forward`
    /// where an OOM must become an error.
    pub fn forward(
        &self,
        input_ids: &Tensor,
        attention_mask: Option<&Tensor>,
        train: bool,
    ) -> Tensor {
        self.hidden(input_ids, attention_mask, train)
            .linear::<Tensor>(&self.lm_head, None)
            .to_kind(Kind::Float)
    }

    /// `forward` with libtorch failures (OOM above all) as `TrainerError`.
    pub fn try_forward(
        &self,
        input_ids: &Tensor,
        attention_mask: Option<&Tensor>,
        train: bool,
    ) -> Result<Tensor, TrainerError> {
        guarded("forward", || self.forward(input_ids, attention_mask, train))
    }

    /// The final normalised hidden states `[b, t, hidden]` in the model dtype.
    pub fn hidden(
        &self,
        input_ids: &Tensor,
        attention_mask: Option<&Tensor>,
        train: bool,
    ) -> Tensor {
        let t = input_ids.size()[1];
        let mut x = Tensor::embedding(&self.embed_tokens, input_ids, -1, false, false);
        let (cos, sin) = rope::cos_sin(&self.inv_freq, t);
        let (cos, sin) = (cos.to_kind(self.dtype), sin.to_kind(self.dtype));
        let mask = attention_mask.and_then(|m| build_mask(m, t));
        // Residual adds allocate: tch's `+=` is libtorch's in-place `add_`, which would
        // overwrite a tensor autograd saved for the backward pass.
        #[allow(clippy::assign_op_pattern)]
        for layer in &self.layers {
            let a = layer.self_attn.forward(
                &layer.input_layernorm.forward(&x),
                &cos,
                &sin,
                mask.as_ref(),
                train,
            );
            x = x + a;
            let m = layer
                .mlp
                .forward(&layer.post_attention_layernorm.forward(&x), train);
            x = x + m;
        }
        self.norm.forward(&x)
    }

    /// The model's linear layers by name (for merging and inspection).
    pub fn linear(&self, name: &str) -> Option<&LoraLinear> {
        self.linears()
            .into_iter()
            .find(|(n, _)| n == name)
            .map(|(_, l)| l)
    }

    /// Number of trainable LoRA parameters.
    pub fn num_lora_parameters(&self) -> i64 {
        self.lora_parameters()
            .iter()
            .map(|(_, t)| t.numel() as i64)
            .sum()
    }
}

/// A boolean `[b, 1, t, t]` mask: causal, keys that are padding hidden, every query allowed
/// to see itself (so fully padded rows stay finite). None when nothing is padded.
fn build_mask(attention_mask: &Tensor, t: i64) -> Option<Tensor> {
    let keys = attention_mask
        .to_device(attention_mask.device())
        .to_kind(Kind::Bool);
    if keys.all().int64_value(&[]) == 1 {
        return None;
    }
    let dev = attention_mask.device();
    let causal = Tensor::ones([t, t], (Kind::Bool, dev)).tril(0);
    let eye = Tensor::eye(t, (Kind::Bool, dev));
    let m = causal
        .unsqueeze(0)
        .unsqueeze(0)
        .logical_and(&keys.unsqueeze(1).unsqueeze(1));
    Some(m.logical_or(&eye.unsqueeze(0).unsqueeze(0)))
}

/// Run `f`, turning a libtorch panic (tch's non-`f_` calls panic with libtorch's message)
/// into a classified `TrainerError` (OOM -> `Oom`).
pub fn guarded<T>(phase: &str, f: impl FnOnce() -> T) -> Result<T, TrainerError> {
    catch_unwind(AssertUnwindSafe(f)).map_err(|payload| {
        let message = payload
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| payload.downcast_ref::<&str>().map(|s| s.to_string()))
            .unwrap_or_else(|| "libtorch failed".to_string());
        TrainerError::torch(phase, tch::TchError::Torch(message))
    })
}
