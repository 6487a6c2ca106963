//! The tokenizer as GGUF metadata (`tokenizer.ggml.*`, `tokenizer.chat_template`), read from
//! `tokenizer.json` and `tokenizer_config.json`: byte-level BPE as llama.cpp's `gpt2` model
//! with its pre-tokenizer name, every token by id (special added tokens as control tokens,
//! ids past the tokenizer's up to the model's vocabulary as unused padding), the merges, the
//! bos/eos/end-of-turn/padding ids and the chat template (docs/exports.md).

use std::path::Path;

use serde_json::Value;
use tunewright_schemas::ModelFamily;

use super::format::MetaValue;
use crate::error::TrainerError;

const NORMAL: i32 = 1;
const CONTROL: i32 = 3;
const USER_DEFINED: i32 = 4;
const UNUSED: i32 = 5;

/// The tokens that end a turn in the supported families' chat templates.
const TURN_ENDS: &[&str] = &["<|eot_id|>", "<|im_end|>", "<end_of_turn>", "<|end|>"];

fn read_json(path: &Path) -> Result<Value, TrainerError> {
    let bytes = std::fs::read(path).map_err(|e| TrainerError::load(path, e.to_string()))?;
    serde_json::from_slice(&bytes).map_err(|e| TrainerError::load(path, e.to_string()))
}

fn token_text(v: &Value, key: &str) -> Option<String> {
    match v.get(key)? {
        Value::String(s) => Some(s.clone()),
        Value::Object(o) => o.get("content")?.as_str().map(str::to_string),
        _ => None,
    }
}

/// The chat template of the model in `dir` (tokenizer_config.json or chat_template.jinja).
pub fn chat_template(dir: &Path) -> Result<Option<String>, TrainerError> {
    let cfg = read_json(&dir.join("tokenizer_config.json"))?;
    if let Some(t) = cfg.get("chat_template").and_then(Value::as_str) {
        return Ok(Some(t.to_string()));
    }
    Ok(std::fs::read_to_string(dir.join("chat_template.jinja")).ok())
}

/// The tokenizer metadata of the model in `dir` whose vocabulary has `vocab_size` rows.
pub fn metadata(
    dir: &Path,
    family: ModelFamily,
    vocab_size: i64,
) -> Result<Vec<(String, MetaValue)>, TrainerError> {
    let tok_path = dir.join("tokenizer.json");
    let tok = read_json(&tok_path)?;
    let bad = |reason: &str| TrainerError::load(&tok_path, reason.to_string());
    let model = tok.get("model").ok_or_else(|| bad("no model"))?;
    if model.get("type").and_then(Value::as_str) != Some("BPE") {
        return Err(bad(
            "GGUF export supports byte-level BPE tokenizers (tokenizer.json model type BPE)",
        ));
    }
    let vocab = model
        .get("vocab")
        .and_then(Value::as_object)
        .ok_or_else(|| bad("no vocab"))?;
    let size = usize::try_from(vocab_size).map_err(|_| bad("negative vocab_size"))?;
    let mut tokens: Vec<Option<String>> = vec![None; size];
    let mut types = vec![NORMAL; size];
    for (text, id) in vocab {
        if let Some(slot) = id.as_u64().and_then(|i| tokens.get_mut(i as usize)) {
            *slot = Some(text.clone());
        }
    }
    let mut specials = Vec::new();
    for added in tok
        .get("added_tokens")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let (Some(id), Some(text)) = (
            added.get("id").and_then(Value::as_u64),
            added.get("content").and_then(Value::as_str),
        ) else {
            continue;
        };
        if let Some(slot) = tokens.get_mut(id as usize) {
            *slot = Some(text.to_string());
            let special = added
                .get("special")
                .and_then(Value::as_bool)
                .unwrap_or(false);
            types[id as usize] = if special { CONTROL } else { USER_DEFINED };
            specials.push((text.to_string(), id as i32));
        }
    }
    let tokens: Vec<String> = tokens
        .into_iter()
        .enumerate()
        .map(|(i, t)| {
            t.unwrap_or_else(|| {
                types[i] = UNUSED;
                format!("[PAD{i}]")
            })
        })
        .collect();
    let merges: Vec<String> = model
        .get("merges")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|m| match m {
            Value::String(s) => Some(s.clone()),
            Value::Array(pair) => {
                let parts: Vec<&str> = pair.iter().filter_map(Value::as_str).collect();
                (parts.len() == 2).then(|| parts.join(" "))
            }
            _ => None,
        })
        .collect();
    let id_of = |text: &str| tokens.iter().position(|t| t == text).map(|i| i as u32);
    let cfg = read_json(&dir.join("tokenizer_config.json"))?;
    let pre = match family {
        ModelFamily::Llama => "llama-bpe",
        ModelFamily::Qwen2 | ModelFamily::Qwen3 => "qwen2",
        _ => "default",
    };
    let mut out = vec![
        (
            "tokenizer.ggml.model".to_string(),
            MetaValue::Str("gpt2".into()),
        ),
        ("tokenizer.ggml.pre".to_string(), MetaValue::Str(pre.into())),
        (
            "tokenizer.ggml.tokens".to_string(),
            MetaValue::StrArray(tokens.clone()),
        ),
        (
            "tokenizer.ggml.token_type".to_string(),
            MetaValue::I32Array(types),
        ),
        (
            "tokenizer.ggml.merges".to_string(),
            MetaValue::StrArray(merges),
        ),
    ];
    let bos = token_text(&cfg, "bos_token").and_then(|t| id_of(&t));
    let eos_text = token_text(&cfg, "eos_token");
    let eos = eos_text.as_deref().and_then(id_of);
    if let Some(id) = bos {
        out.push(("tokenizer.ggml.bos_token_id".into(), MetaValue::U32(id)));
    }
    if let Some(id) = eos {
        out.push(("tokenizer.ggml.eos_token_id".into(), MetaValue::U32(id)));
    }
    // The end-of-turn token: the first of the templates' turn ends in the vocabulary.
    let eot = TURN_ENDS.iter().find_map(|t| {
        specials
            .iter()
            .find(|(s, _)| s == t)
            .map(|(_, id)| *id as u32)
    });
    if let Some(id) = eot {
        out.push(("tokenizer.ggml.eot_token_id".into(), MetaValue::U32(id)));
    }
    if let Some(id) = token_text(&cfg, "pad_token").and_then(|t| id_of(&t)) {
        out.push(("tokenizer.ggml.padding_token_id".into(), MetaValue::U32(id)));
    }
    let add_bos = cfg
        .get("add_bos_token")
        .and_then(Value::as_bool)
        .unwrap_or(family == ModelFamily::Llama && bos.is_some());
    out.push((
        "tokenizer.ggml.add_bos_token".into(),
        MetaValue::Bool(add_bos),
    ));
    if let Some(t) = chat_template(dir)? {
        out.push(("tokenizer.chat_template".into(), MetaValue::Str(t)));
    }
    Ok(out)
}
