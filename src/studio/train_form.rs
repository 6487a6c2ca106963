//! The training form: one input per field of the `train` job's config
//! (`tunewright_schemas::config::TrainConfig`), with help, and the form's values turned back
//! into the config JSON the API takes. Defaults are the config's own (parsed from a config
//! that names only the model), so the form never states a default the trainer does not use;
//! validation stays with the config and the admission checks behind `submit_job`.

use serde::Serialize;
use serde_json::{Map, Value};
use tunewright_schemas::config::TrainConfig;

use crate::http::error::ApiError;

/// How a field is typed in and turned into JSON.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Input {
    Integer,
    Decimal,
    Text,
    /// Comma-separated names.
    List,
    Checkbox,
    Choice(&'static [&'static str]),
}

/// One field of the form.
#[derive(Debug, Clone, Copy)]
pub struct Field {
    pub name: &'static str,
    pub label: &'static str,
    pub input: Input,
    pub help: &'static str,
    /// Shown outside the "Advanced" section.
    pub basic: bool,
}

const fn f(
    name: &'static str,
    label: &'static str,
    input: Input,
    help: &'static str,
    basic: bool,
) -> Field {
    Field {
        name,
        label,
        input,
        help,
        basic,
    }
}

/// Every field of `TrainConfig`, in the order the form shows them.
pub const FIELDS: &[Field] = &[
    f("base_model", "Base model directory", Input::Text, "The model to adapt: a local checkpoint directory (config.json, safetensors, tokenizer.json) or a Hugging Face model id in the local cache.", true),
    f("revision", "Model revision", Input::Text, "When the base model is a Hugging Face model id found in the local cache: its branch, tag or commit (empty: main).", false),
    f("split", "Split", Input::Text, "A split of this project's dataset: training uses its train part and evaluates on its val part. Empty: the whole dataset.", true),
    f("max_steps", "Max steps", Input::Integer, "Optimizer steps to run; overrides the number of epochs when set.", true),
    f("num_train_epochs", "Epochs", Input::Decimal, "Passes over the training data when max steps is empty.", true),
    f("per_device_train_batch_size", "Batch size", Input::Integer, "Examples per forward pass. Lower it if the device runs out of memory.", true),
    f("gradient_accumulation_steps", "Gradient accumulation", Input::Integer, "Forward passes per optimizer step: the effective batch is batch size times this.", true),
    f("learning_rate", "Learning rate", Input::Decimal, "Peak learning rate of the schedule (LoRA usually 1e-4 to 5e-4).", true),
    f("max_seq_length", "Max sequence length", Input::Integer, "Tokens per example; longer examples are dropped and counted in the pre-flight note.", true),
    f("lora_r", "LoRA rank", Input::Integer, "Rank of the adapter matrices: more capacity, more memory.", true),
    f("lora_alpha", "LoRA alpha", Input::Decimal, "Scaling of the adapter (alpha / rank); commonly twice the rank.", true),
    f("device", "Device", Input::Choice(&["auto", "cpu", "cuda"]), "auto: the GPU when there is one, else the CPU.", true),
    f("warmup_steps", "Warm-up steps", Input::Integer, "Steps over which the learning rate rises from 0 to its peak.", false),
    f("lr_scheduler_type", "Schedule", Input::Choice(&["linear", "cosine", "constant"]), "How the learning rate falls after warm-up.", false),
    f("weight_decay", "Weight decay", Input::Decimal, "AdamW's decoupled weight decay.", false),
    f("max_grad_norm", "Max gradient norm", Input::Decimal, "Gradients are clipped to this norm; 0 disables clipping.", false),
    f("lora_dropout", "LoRA dropout", Input::Decimal, "Dropout on the adapter's input, in [0, 1).", false),
    f("target_modules", "Target modules", Input::List, "Comma-separated projections that get adapters, e.g. q_proj, k_proj, v_proj, o_proj.", false),
    f("seed", "Seed", Input::Integer, "Seeds the adapter's initialisation, dropout and data order.", false),
    f("checkpoint_every_steps", "Checkpoint every", Input::Integer, "Steps between checkpoints (a failed run resumes from the last one).", false),
    f("keep_checkpoints", "Checkpoints kept", Input::Integer, "How many of the newest checkpoints stay on disk.", false),
    f("eval_steps", "Evaluate every", Input::Integer, "Steps between evaluations on the split's val part; 0: only at the end.", false),
    f("logging_steps", "Log every", Input::Integer, "Steps between progress reports (each one is a point of the curves).", false),
    f("load_in_4bit", "QLoRA (4-bit base weights)", Input::Checkbox, "Store the frozen base weights in 4 bits (about a quarter of bf16's memory) and dequantize them per use; the adapter stays in full precision.", true),
    f("bnb_4bit_quant_type", "4-bit data type", Input::Choice(&["nf4", "fp4"]), "How QLoRA quantizes the base weights: nf4 (normal float) or fp4.", false),
    f("bnb_4bit_use_double_quant", "Double quantization", Input::Checkbox, "Quantize QLoRA's per-block scales too (saves about 0.4 bits per weight).", false),
    f("bnb_4bit_compute_dtype", "4-bit compute dtype", Input::Choice(&["float32", "bfloat16", "float16"]), "The dtype QLoRA's dequantized weights are computed in.", false),
    f("gradient_checkpointing", "Gradient checkpointing", Input::Checkbox, "Recompute each layer's activations in the backward pass instead of keeping them: far less memory, about a third slower.", true),
    f("remediate_oom", "Remediate out-of-memory", Input::Checkbox, "On OOM, retry from the last checkpoint with half the batch and double the accumulation.", false),
    f("remediate_divergence", "Remediate divergence", Input::Checkbox, "On a NaN or exploding loss, roll back to the last good checkpoint at a lower learning rate.", false),
];

/// A field as the template shows it.
#[derive(Debug, Serialize)]
pub struct FieldView {
    pub name: &'static str,
    pub label: &'static str,
    pub input: Input,
    pub help: &'static str,
    pub basic: bool,
    /// The default, as typed in the form (empty when there is none).
    pub value: String,
    pub checked: bool,
}

/// The config's defaults as JSON.
fn defaults() -> Map<String, Value> {
    let placeholder = serde_json::json!({"base_model": "."});
    TrainConfig::from_json(&placeholder)
        .ok()
        .and_then(|c| serde_json::to_value(c).ok())
        .and_then(|v| v.as_object().cloned())
        .unwrap_or_default()
}

fn as_text(v: Option<&Value>) -> String {
    match v {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(s)) => s.clone(),
        Some(Value::Array(items)) => items
            .iter()
            .map(|i| {
                i.as_str()
                    .map(str::to_owned)
                    .unwrap_or_else(|| i.to_string())
            })
            .collect::<Vec<_>>()
            .join(", "),
        Some(other) => other.to_string(),
    }
}

/// The form's fields with their defaults; `base_model` is prefilled with `model` if given.
pub fn fields(model: Option<&str>) -> Vec<FieldView> {
    let d = defaults();
    FIELDS
        .iter()
        .map(|field| {
            let mut value = as_text(d.get(field.name));
            if field.name == "base_model" {
                value = model.unwrap_or("").to_string();
            }
            FieldView {
                name: field.name,
                label: field.label,
                input: field.input,
                help: field.help,
                basic: field.basic,
                checked: d.get(field.name) == Some(&Value::Bool(true)),
                value,
            }
        })
        .collect()
}

fn bad(field: &str, reason: &str) -> ApiError {
    ApiError::validation(format!("{field}: {reason}"))
}

/// One typed-in value as JSON; `None` for an empty field (the config's default applies).
fn value_of(field: &Field, text: &str) -> Result<Option<Value>, ApiError> {
    let t = text.trim();
    if t.is_empty() && field.input != Input::Checkbox {
        return Ok(None);
    }
    Ok(Some(match field.input {
        Input::Integer => Value::from(
            t.parse::<i64>()
                .map_err(|_| bad(field.name, "must be a whole number"))?,
        ),
        Input::Decimal => {
            let x = t.parse::<f64>().ok().filter(|x| x.is_finite());
            let x = x.ok_or_else(|| bad(field.name, "must be a number"))?;
            serde_json::Number::from_f64(x)
                .map(Value::Number)
                .ok_or_else(|| bad(field.name, "must be a number"))?
        }
        Input::Text | Input::Choice(_) => Value::from(t),
        Input::List => Value::from(
            t.split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .collect::<Vec<_>>(),
        ),
        Input::Checkbox => Value::Bool(matches!(t, "on" | "true" | "1")),
    }))
}

/// The config JSON of a submitted form (`pairs` as the browser sent them).
pub fn config_of(pairs: &[(String, String)]) -> Result<Value, ApiError> {
    let mut config = Map::new();
    for field in FIELDS {
        let text = pairs
            .iter()
            .find(|(k, _)| k == field.name)
            .map(|(_, v)| v.as_str())
            .unwrap_or("");
        if let Some(v) = value_of(field, text)? {
            config.insert(field.name.to_string(), v);
        }
    }
    Ok(Value::Object(config))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_form_covers_every_config_field() {
        let d = defaults();
        assert!(!d.is_empty());
        for key in d.keys() {
            assert!(
                FIELDS.iter().any(|f| f.name == key),
                "no form field for {key}"
            );
        }
        assert_eq!(FIELDS.len(), d.len());
    }

    #[test]
    fn defaults_are_the_configs_own() {
        let f = fields(Some("/m"));
        let get = |n: &str| f.iter().find(|x| x.name == n).unwrap();
        assert_eq!(get("base_model").value, "/m");
        assert_eq!(get("per_device_train_batch_size").value, "4");
        assert_eq!(
            get("target_modules").value,
            "q_proj, k_proj, v_proj, o_proj"
        );
        assert_eq!(get("max_steps").value, "");
        assert!(!get("remediate_oom").checked);
    }

    #[test]
    fn a_form_becomes_a_valid_config() {
        let pairs: Vec<(String, String)> = [
            ("base_model", "/m"),
            ("max_steps", "12"),
            ("learning_rate", "2e-4"),
            ("target_modules", "q_proj, v_proj"),
            ("remediate_oom", "on"),
            ("split", ""),
        ]
        .iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect();
        let c = config_of(&pairs).unwrap();
        assert_eq!(c["max_steps"], 12);
        assert_eq!(c["target_modules"], serde_json::json!(["q_proj", "v_proj"]));
        assert_eq!(c["remediate_oom"], true);
        assert_eq!(c["remediate_divergence"], false);
        assert!(c.get("split").is_none());
        assert!(TrainConfig::from_json(&c).is_ok(), "{c}");
        let e = config_of(&[("max_steps".into(), "ten".into())]).unwrap_err();
        assert!(
            e.0.detail.contains("max_steps: must be a whole number"),
            "{}",
            e.0.detail
        );
    }
}
