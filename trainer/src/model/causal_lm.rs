//! `CausalLm`: a decoder-only causal LM of any supported family, built from a local Hugging
//! Face checkpoint, with frozen base weights (dense, or 4-bit for QLoRA) and optional LoRA
//! pairs on the target projections. `forward` gives f32 logits; `lora_parameters` lists the
//! trainable tensors under PEFT's key names.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::Path;

use tch::{Device, Kind, Tensor};

use super::attention::AttnInputs;
use super::config::ModelConfig;
use super::decoder::Layer;
use super::kv_cache::{self, KvCache};
use super::load::{Loader, QuantSettings};
use super::lora::{LoraLinear, LoraSettings};
use super::norm::RmsNorm;
use super::spec::AttentionSpan;
use super::weights::WeightFiles;
use super::{mask, rope};
use crate::error::TrainerError;

/// The prefix PEFT puts before a module's name in adapter files.
pub const PEFT_PREFIX: &str = "base_model.model.";

/// How the base weights are held.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LoadOptions {
    /// QLoRA: frozen linear weights stored 4-bit (the model dtype is the compute dtype).
    pub quant: Option<QuantSettings>,
}

pub struct CausalLm {
    pub config: ModelConfig,
    pub device: Device,
    pub dtype: Kind,
    pub lora: Option<LoraSettings>,
    pub quant: Option<QuantSettings>,
    embed_tokens: Tensor,
    pub(super) layers: Vec<Layer>,
    norm: RmsNorm,
    lm_head: Tensor,
    /// Rotary inverse frequencies: [global] or, for Gemma 3, [global, local].
    inv_freqs: Vec<Tensor>,
}

/// The name this type had when only Llama was supported.
pub type Llama = CausalLm;

/// What every layer of one forward pass shares: rotary tables and masks.
pub(super) struct Shared {
    tables: Vec<(Tensor, Tensor)>,
    masks: Vec<(AttentionSpan, Option<Tensor>)>,
}

impl Shared {
    pub(super) fn inputs(&self, layer: &Layer) -> AttnInputs<'_> {
        let (cos, sin) = &self.tables[layer.rope.min(self.tables.len() - 1)];
        let mask = self
            .masks
            .iter()
            .find(|(s, _)| *s == layer.span)
            .and_then(|(_, m)| m.as_ref());
        AttnInputs { cos, sin, mask }
    }
}

impl CausalLm {
    /// Load `dir` onto `device` in `dtype` (base weights frozen); attach LoRA pairs when
    /// `lora` is given, initialised deterministically from `seed`.
    pub fn load(
        dir: &Path,
        device: Device,
        dtype: Kind,
        lora: Option<&LoraSettings>,
        seed: i64,
    ) -> Result<CausalLm, TrainerError> {
        Self::load_with(dir, device, dtype, lora, seed, LoadOptions::default())
    }

    /// `load` with base-weight options (QLoRA).
    pub fn load_with(
        dir: &Path,
        device: Device,
        dtype: Kind,
        lora: Option<&LoraSettings>,
        seed: i64,
        options: LoadOptions,
    ) -> Result<CausalLm, TrainerError> {
        let config = ModelConfig::from_dir(dir)?;
        let targets = match lora {
            Some(l) => l.resolved_targets_for(config.family)?,
            None => Vec::new(),
        };
        let files = WeightFiles::open(dir)?;
        let _guard = tch::no_grad_guard();
        let c = &config;
        let h = c.hidden_size;
        let loader = Loader {
            files: &files,
            config: c,
            device,
            dtype,
            quant: options.quant,
        };
        let embed_tokens = loader.get("model.embed_tokens.weight", &[c.vocab_size, h])?;
        let layers = (0..c.num_hidden_layers)
            .map(|i| loader.layer(i))
            .collect::<Result<Vec<_>, _>>()?;
        let norm = RmsNorm {
            weight: loader.get("model.norm.weight", &[h])?,
            eps: c.rms_norm_eps,
            plus_one: c.spec.norm_plus_one,
        };
        let lm_head = if c.tie_word_embeddings {
            embed_tokens.shallow_clone()
        } else {
            loader.get("lm_head.weight", &[c.vocab_size, h])?
        };
        let rd = c.spec.rotary_dim;
        let mut inv_freqs = vec![rope::inv_freq(c.rope_theta, rd, &c.rope_scaling, device)];
        if let Some(local) = c.spec.local_rope_theta {
            inv_freqs.push(rope::inv_freq(local, rd, &super::RopeScaling::None, device));
        }
        let mut model = CausalLm {
            config,
            device,
            dtype,
            lora: lora.cloned(),
            quant: options.quant,
            embed_tokens,
            layers,
            norm,
            lm_head,
            inv_freqs,
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
            for (n, lin) in l.linears() {
                out.push((format!("model.layers.{i}.{n}"), lin));
            }
        }
        out
    }

    fn linears_mut(&mut self) -> Vec<(String, &mut LoraLinear)> {
        let mut out = Vec::new();
        for (i, l) in self.layers.iter_mut().enumerate() {
            for (n, lin) in l.linears_mut() {
                out.push((format!("model.layers.{i}.{n}"), lin));
            }
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
        self.logits(&self.hidden(input_ids, attention_mask, train))
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

    /// f32 logits of final hidden states: the LM head, then Gemma 2's soft-cap in the model
    /// dtype (as transformers does).
    pub(super) fn logits(&self, hidden: &Tensor) -> Tensor {
        let logits = hidden.linear::<Tensor>(&self.lm_head, None);
        match self.config.spec.final_logit_softcap {
            Some(cap) => ((logits / cap).tanh() * cap).to_kind(Kind::Float),
            None => logits.to_kind(Kind::Float),
        }
    }

    /// Token embeddings, scaled by sqrt(hidden) (rounded to the model dtype) for Gemma.
    pub(super) fn embed(&self, input_ids: &Tensor) -> Tensor {
        let x = Tensor::embedding(&self.embed_tokens, input_ids, -1, false, false);
        if !self.config.spec.scale_embeddings {
            return x;
        }
        let normalizer = Tensor::from((self.config.hidden_size as f64).sqrt())
            .to_kind(self.dtype)
            .to_device(self.device);
        x * normalizer
    }

    /// Rotary tables and masks for a batch of `t` tokens.
    pub(super) fn shared(&self, attention_mask: Option<&Tensor>, t: i64) -> Shared {
        let tables = self
            .inv_freqs
            .iter()
            .map(|f| {
                let (cos, sin) = rope::cos_sin(f, t);
                (cos.to_kind(self.dtype), sin.to_kind(self.dtype))
            })
            .collect();
        let mut masks: Vec<(AttentionSpan, Option<Tensor>)> = Vec::new();
        for layer in &self.layers {
            if !masks.iter().any(|(s, _)| *s == layer.span) {
                masks.push((
                    layer.span,
                    mask::build(attention_mask, t, layer.span, self.device),
                ));
            }
        }
        Shared { tables, masks }
    }

    /// The final normalised hidden states `[b, t, hidden]` in the model dtype.
    pub fn hidden(
        &self,
        input_ids: &Tensor,
        attention_mask: Option<&Tensor>,
        train: bool,
    ) -> Tensor {
        let shared = self.shared(attention_mask, input_ids.size()[1]);
        let mut x = self.embed(input_ids);
        for layer in &self.layers {
            x = layer.forward(&x, &shared.inputs(layer), train);
        }
        self.norm.forward(&x)
    }

    /// f32 logits `[1, t, vocab]` of `t` new tokens `[1, t]` after those in `cache`, whose
    /// keys and values are appended to it (decoding; no padding, one sequence).
    pub fn forward_cached(
        &self,
        input_ids: &Tensor,
        cache: &mut KvCache,
    ) -> Result<Tensor, TrainerError> {
        guarded("forward", || {
            let t = input_ids.size()[1];
            let past = cache.len;
            let tables = self
                .inv_freqs
                .iter()
                .map(|f| {
                    let (cos, sin) = rope::cos_sin(f, past + t);
                    (
                        cos.narrow(0, past, t).to_kind(self.dtype),
                        sin.narrow(0, past, t).to_kind(self.dtype),
                    )
                })
                .collect();
            let mut masks: Vec<(AttentionSpan, Option<Tensor>)> = Vec::new();
            for layer in &self.layers {
                if !masks.iter().any(|(s, _)| *s == layer.span) {
                    let m = kv_cache::mask_after(past, t, layer.span, self.device);
                    masks.push((layer.span, m));
                }
            }
            let shared = Shared { tables, masks };
            let mut x = self.embed(input_ids);
            for (layer, slot) in self.layers.iter().zip(cache.layers.iter_mut()) {
                x = layer.forward_kv(&x, &shared.inputs(layer), false, Some(slot));
            }
            cache.len = past + t;
            self.logits(&self.norm.forward(&x))
        })
    }

    /// An empty key/value cache for this model.
    pub fn new_cache(&self) -> KvCache {
        KvCache::new(self.layers.len())
    }

    pub(super) fn final_norm(&self) -> &RmsNorm {
        &self.norm
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

    /// Bytes the frozen base weights hold (quantized linears at their 4-bit size; tied
    /// embeddings once).
    pub fn base_weight_bytes(&self) -> u64 {
        let t = |x: &Tensor| (x.numel() * x.kind().elt_size_in_bytes()) as u64;
        let mut bytes = t(&self.embed_tokens) + t(&self.norm.weight);
        if !self.config.tie_word_embeddings {
            bytes += t(&self.lm_head);
        }
        for (_, lin) in self.linears() {
            bytes += lin.weight_bytes() + lin.bias.as_ref().map(t).unwrap_or(0);
        }
        for l in &self.layers {
            bytes += t(&l.input_layernorm.weight) + t(&l.post_attention_layernorm.weight);
            if let Some((a, b)) = &l.feedforward_norms {
                bytes += t(&a.weight) + t(&b.weight);
            }
            if let (Some(q), Some(k)) = (&l.self_attn.q_norm, &l.self_attn.k_norm) {
                bytes += t(&q.weight) + t(&k.weight);
            }
        }
        bytes
    }
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
