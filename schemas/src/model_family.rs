//! The model families tunewright trains, named by the `architectures` entry of a Hugging Face
//! `config.json`. Pure data: the service refuses an unsupported model at admission with it, and
//! the trainer builds the model of the family it names.

/// A family of decoder-only models that share one implementation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ModelFamily {
    Llama,
    Mistral,
}

/// Every architecture name tunewright loads, with its family.
pub const SUPPORTED_ARCHITECTURES: &[(&str, ModelFamily)] = &[
    ("LlamaForCausalLM", ModelFamily::Llama),
    ("MistralForCausalLM", ModelFamily::Mistral),
];

/// The family of a `config.json` architecture name, if tunewright trains it.
pub fn family_of_architecture(architecture: &str) -> Option<ModelFamily> {
    SUPPORTED_ARCHITECTURES
        .iter()
        .find(|(name, _)| *name == architecture)
        .map(|(_, f)| *f)
}

/// The supported names, for messages.
pub fn supported_list() -> String {
    SUPPORTED_ARCHITECTURES
        .iter()
        .map(|(n, _)| *n)
        .collect::<Vec<_>>()
        .join(", ")
}
