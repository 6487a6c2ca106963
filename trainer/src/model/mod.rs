//! The causal LM with LoRA on tch, shared by every supported family: config parsing
//! (`config.rs`) and the family's differences as data (`spec.rs`), safetensors loading
//! (`weights.rs`, `load.rs`), rotary embeddings, masks, attention, MLP, norms, the decoder
//! layer, the key/value cache of decoding (`kv_cache.rs`), LoRA layers, QLoRA's 4-bit storage (`quant.rs`), gradient checkpointing and the
//! model itself (`causal_lm.rs`).

pub mod attention;
pub mod causal_lm;
pub mod checkpointing;
pub mod config;
mod config_fields;
pub mod decoder;
pub mod kv_cache;
pub mod load;
pub mod lora;
pub mod mask;
pub mod mlp;
pub mod norm;
pub mod quant;
pub mod rope;
pub mod spec;
pub mod weights;

pub use causal_lm::{guarded, CausalLm, Llama, LoadOptions, PEFT_PREFIX};
pub use checkpointing::Recompute;
pub use config::{LlamaConfig, ModelConfig, RopeScaling};
pub use kv_cache::KvCache;
pub use load::QuantSettings;
pub use lora::{targets_of, LoraLinear, LoraSettings, LORA_TARGETS};
pub use spec::{Activation, AttentionSpan, ModelSpec};
pub use weights::WeightFiles;
