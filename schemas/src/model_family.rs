//! The model families tunewright fine-tunes, and which Hugging Face architecture names (the
//! `architectures` of a `config.json`) and `model_type`s belong to each. Pure data, so the
//! service can refuse an unsupported base model at job submission without linking libtorch;
//! the trainer reads the same table to pick its decoder's spec.

use serde::{Deserialize, Serialize};

/// A family of decoder-only models sharing one layout (see the trainer's `ModelSpec`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ModelFamily {
    /// Llama 1, 2, 3, 3.1, 3.2, 3.3 (llama3 rope scaling, tied embeddings on the small ones).
    Llama,
    /// Mistral (sliding-window attention where the sequence is longer than the window).
    Mistral,
    /// Qwen2 and Qwen2.5 (biases on q, k and v).
    Qwen2,
    /// Qwen3 dense models (per-head RMSNorm on q and k, explicit head_dim).
    Qwen3,
    /// Phi-3 and Phi-4 (fused `qkv_proj` and `gate_up_proj`).
    Phi3,
    /// Gemma 2 (GeGLU, RMSNorm with +1, soft-capping, alternating sliding/global layers).
    Gemma2,
    /// Gemma 3 text models (Gemma 2's layout plus q/k norms and a local rope base).
    Gemma3,
}

/// Every architecture name tunewright trains, with its family.
pub const SUPPORTED_ARCHITECTURES: &[(&str, ModelFamily)] = &[
    ("LlamaForCausalLM", ModelFamily::Llama),
    ("MistralForCausalLM", ModelFamily::Mistral),
    ("Qwen2ForCausalLM", ModelFamily::Qwen2),
    ("Qwen3ForCausalLM", ModelFamily::Qwen3),
    ("Phi3ForCausalLM", ModelFamily::Phi3),
    ("Gemma2ForCausalLM", ModelFamily::Gemma2),
    ("Gemma3ForCausalLM", ModelFamily::Gemma3),
];

/// `config.json`'s `model_type` of each family (used when `architectures` is absent).
const MODEL_TYPES: &[(&str, ModelFamily)] = &[
    ("llama", ModelFamily::Llama),
    ("mistral", ModelFamily::Mistral),
    ("qwen2", ModelFamily::Qwen2),
    ("qwen3", ModelFamily::Qwen3),
    ("phi3", ModelFamily::Phi3),
    ("gemma2", ModelFamily::Gemma2),
    ("gemma3_text", ModelFamily::Gemma3),
];

/// The family of a Hugging Face architecture name, e.g. `Qwen2ForCausalLM` -> `Qwen2`.
pub fn family_of_architecture(architecture: &str) -> Option<ModelFamily> {
    SUPPORTED_ARCHITECTURES
        .iter()
        .find(|(name, _)| *name == architecture)
        .map(|(_, f)| *f)
}

/// The family of a `config.json` `model_type`, e.g. `gemma3_text` -> `Gemma3`.
pub fn family_of_model_type(model_type: &str) -> Option<ModelFamily> {
    MODEL_TYPES
        .iter()
        .find(|(name, _)| *name == model_type)
        .map(|(_, f)| *f)
}

impl ModelFamily {
    /// The family's architecture name (the one its checkpoints declare).
    pub fn architecture(self) -> &'static str {
        SUPPORTED_ARCHITECTURES
            .iter()
            .find(|(_, f)| *f == self)
            .map(|(name, _)| *name)
            .unwrap_or("LlamaForCausalLM")
    }

    /// The short name used in docs and fixture directories (`tiny-<name>`).
    pub fn name(self) -> &'static str {
        match self {
            ModelFamily::Llama => "llama",
            ModelFamily::Mistral => "mistral",
            ModelFamily::Qwen2 => "qwen2",
            ModelFamily::Qwen3 => "qwen3",
            ModelFamily::Phi3 => "phi3",
            ModelFamily::Gemma2 => "gemma2",
            ModelFamily::Gemma3 => "gemma3",
        }
    }
}

/// The supported architecture names joined for messages ("LlamaForCausalLM, ...").
pub fn supported_architectures_list() -> String {
    SUPPORTED_ARCHITECTURES
        .iter()
        .map(|(name, _)| *name)
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_architecture_maps_to_its_family_and_back() {
        for (name, family) in SUPPORTED_ARCHITECTURES {
            assert_eq!(family_of_architecture(name), Some(*family));
            assert_eq!(family.architecture(), *name);
            assert_eq!(
                family_of_model_type(
                    MODEL_TYPES
                        .iter()
                        .find(|(_, f)| f == family)
                        .map(|(t, _)| *t)
                        .unwrap()
                ),
                Some(*family)
            );
        }
        assert_eq!(family_of_architecture("GPT2LMHeadModel"), None);
        assert_eq!(family_of_architecture("llamaforcausallm"), None);
        assert_eq!(family_of_model_type("gemma3"), None, "multimodal Gemma 3");
        assert!(supported_architectures_list().contains("Phi3ForCausalLM"));
    }
}
