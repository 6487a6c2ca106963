//! The Llama model with LoRA on tch: config parsing, safetensors loading, rotary embeddings,
//! attention, MLP, LoRA layers and the model itself.

pub mod attention;
pub mod config;
pub mod llama;
pub mod lora;
pub mod mlp;
pub mod rope;
pub mod weights;

pub use config::{LlamaConfig, RopeScaling};
pub use llama::{guarded, Llama, PEFT_PREFIX};
pub use lora::{LoraLinear, LoraSettings, LORA_TARGETS};
pub use weights::WeightFiles;
