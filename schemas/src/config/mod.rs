//! Job configurations as users write them (Hugging Face names where they exist).

pub mod evaluate;
pub mod export;
pub mod generation;
pub mod job;
pub mod train;

pub use evaluate::{CheckpointChoice, EvaluateConfig};
pub use export::{gguf_refusal, gguf_unavailable, ExportConfig, ExportFormat, Quantization};
pub use generation::GenerationConfig;
pub use job::JobConfig;
pub use train::{ComputeDtype, LrSchedulerType, QuantType4bit, TrainConfig, TrainDevice};

/// `config` with `changes` (a JSON object of keys and their new values) applied: what a
/// suggestion's or a remedy's `config_changes` does to a job's config. Non-objects are left as
/// they are.
pub fn with_changes(config: &serde_json::Value, changes: &serde_json::Value) -> serde_json::Value {
    let mut out = config.clone();
    if let (serde_json::Value::Object(o), serde_json::Value::Object(c)) = (&mut out, changes) {
        for (k, v) in c {
            o.insert(k.clone(), v.clone());
        }
    }
    out
}
