//! The ids generation stops at: `eos_token_id` of `generation_config.json` and `config.json`
//! (one id or a list), the tokenizer's `eos_token`, and the end-of-turn tokens of the chat
//! templates tunewright supports when the vocabulary has them (docs/generation.md). Exports
//! carry the same set (GGUF's eos/eot ids, Ollama's `stop` parameters).

use std::path::Path;

use serde_json::Value;

use crate::TrainerError;

/// End-of-turn and end-of-text tokens of the supported families' chat templates.
pub const END_OF_TURN: &[&str] = &[
    "<|eot_id|>",
    "<|end_of_text|>",
    "<|im_end|>",
    "<|endoftext|>",
    "<end_of_turn>",
    "<|end|>",
    "</s>",
    "<eos>",
];

fn read_json(path: &Path) -> Result<Option<Value>, TrainerError> {
    if !path.is_file() {
        return Ok(None);
    }
    let bytes = std::fs::read(path).map_err(|e| TrainerError::load(path, e.to_string()))?;
    serde_json::from_slice(&bytes)
        .map(Some)
        .map_err(|e| TrainerError::load(path, e.to_string()))
}

fn ids_of(v: Option<&Value>) -> Vec<i64> {
    match v {
        Some(Value::Number(n)) => n.as_i64().into_iter().collect(),
        Some(Value::Array(a)) => a.iter().filter_map(Value::as_i64).collect(),
        _ => Vec::new(),
    }
}

/// The stop ids of the model in `dir`, sorted, each once.
pub fn stop_ids(dir: &Path) -> Result<Vec<i64>, TrainerError> {
    let mut ids = Vec::new();
    for file in ["generation_config.json", "config.json"] {
        if let Some(v) = read_json(&dir.join(file))? {
            ids.extend(ids_of(v.get("eos_token_id")));
        }
    }
    let tok_path = dir.join("tokenizer.json");
    let tokenizer = tokenizers::Tokenizer::from_file(&tok_path)
        .map_err(|e| TrainerError::load(&tok_path, e.to_string()))?;
    if let Some(cfg) = read_json(&dir.join("tokenizer_config.json"))? {
        let eos = match cfg.get("eos_token") {
            Some(Value::String(s)) => Some(s.clone()),
            Some(Value::Object(o)) => o.get("content").and_then(Value::as_str).map(String::from),
            _ => None,
        };
        if let Some(id) = eos.and_then(|e| tokenizer.token_to_id(&e)) {
            ids.push(i64::from(id));
        }
    }
    for text in END_OF_TURN {
        if let Some(id) = tokenizer.token_to_id(text) {
            ids.push(i64::from(id));
        }
    }
    ids.sort_unstable();
    ids.dedup();
    Ok(ids)
}
