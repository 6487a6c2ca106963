//! Turning chat examples into token ids with the model's own tokenizer (`tokenizer.json`)
//! and chat template (`tokenizer_config.json`, rendered with minijinja), with labels masked
//! so the loss covers only the answer (the last assistant turn) and its end-of-turn token.

use std::path::Path;

use minijinja::{context, Environment};
use tokenizers::Tokenizer;
use tunewright_schemas::dataset::Turn;

use crate::TrainerError;

/// Label of a position the loss ignores (as in PyTorch's cross-entropy).
pub const IGNORE: i64 = -100;

pub struct ChatTokenizer {
    tokenizer: Tokenizer,
    template: String,
    bos: String,
    eos: String,
    pub pad_id: i64,
    pub eos_id: i64,
}

fn token_text(v: &serde_json::Value, key: &str) -> Option<String> {
    match v.get(key)? {
        serde_json::Value::String(s) => Some(s.clone()),
        serde_json::Value::Object(o) => o.get("content")?.as_str().map(str::to_string),
        _ => None,
    }
}

impl ChatTokenizer {
    pub fn load(model_dir: &Path) -> Result<ChatTokenizer, TrainerError> {
        let tok_path = model_dir.join("tokenizer.json");
        let tokenizer = Tokenizer::from_file(&tok_path)
            .map_err(|e| TrainerError::load(&tok_path, e.to_string()))?;
        let cfg_path = model_dir.join("tokenizer_config.json");
        let cfg: serde_json::Value = std::fs::read(&cfg_path)
            .map_err(|e| TrainerError::load(&cfg_path, e.to_string()))
            .and_then(|b| {
                serde_json::from_slice(&b).map_err(|e| TrainerError::load(&cfg_path, e.to_string()))
            })?;
        let template = match cfg.get("chat_template").and_then(|t| t.as_str()) {
            Some(t) => t.to_string(),
            None => {
                std::fs::read_to_string(model_dir.join("chat_template.jinja")).map_err(|_| {
                    TrainerError::load(
                        &cfg_path,
                        "no chat_template (tokenizer_config.json or chat_template.jinja)",
                    )
                })?
            }
        };
        let bos = token_text(&cfg, "bos_token").unwrap_or_default();
        let eos = token_text(&cfg, "eos_token")
            .ok_or_else(|| TrainerError::load(&cfg_path, "no eos_token"))?;
        let pad = token_text(&cfg, "pad_token").unwrap_or_else(|| eos.clone());
        let id = |t: &str| tokenizer.token_to_id(t).map(|i| i as i64);
        let eos_id = id(&eos).ok_or_else(|| {
            TrainerError::load(
                &cfg_path,
                format!("eos_token '{eos}' is not in the vocabulary"),
            )
        })?;
        let pad_id = id(&pad).ok_or_else(|| {
            TrainerError::load(
                &cfg_path,
                format!("pad_token '{pad}' is not in the vocabulary"),
            )
        })?;
        Ok(ChatTokenizer {
            tokenizer,
            template,
            bos,
            eos,
            pad_id,
            eos_id,
        })
    }

    /// Render `turns` with the chat template.
    pub fn render(
        &self,
        turns: &[Turn],
        add_generation_prompt: bool,
    ) -> Result<String, TrainerError> {
        let mut env = Environment::new();
        env.add_function(
            "raise_exception",
            |msg: String| -> Result<String, minijinja::Error> {
                Err(minijinja::Error::new(
                    minijinja::ErrorKind::InvalidOperation,
                    msg,
                ))
            },
        );
        env.add_template("chat", &self.template)
            .map_err(|e| TrainerError::load(Path::new("chat_template"), e.to_string()))?;
        let tmpl = env
            .get_template("chat")
            .map_err(|e| TrainerError::load(Path::new("chat_template"), e.to_string()))?;
        tmpl.render(context! {
            messages => turns,
            add_generation_prompt => add_generation_prompt,
            bos_token => &self.bos,
            eos_token => &self.eos,
        })
        .map_err(|e| TrainerError::load(Path::new("chat_template"), e.to_string()))
    }

    pub fn encode(&self, text: &str) -> Result<Vec<i64>, TrainerError> {
        let enc = self
            .tokenizer
            .encode(text, false)
            .map_err(|e| TrainerError::load(Path::new("tokenizer.json"), e.to_string()))?;
        Ok(enc.get_ids().iter().map(|i| *i as i64).collect())
    }

    /// Token ids of the whole conversation and labels that keep only the last answer.
    pub fn encode_example(&self, turns: &[Turn]) -> Result<(Vec<i64>, Vec<i64>), TrainerError> {
        let full = self.encode(&self.render(turns, false)?)?;
        let prompt = self.encode(&self.render(&turns[..turns.len().saturating_sub(1)], true)?)?;
        let common = full.iter().zip(&prompt).take_while(|(a, b)| a == b).count();
        let labels = full
            .iter()
            .enumerate()
            .map(|(i, t)| if i < common { IGNORE } else { *t })
            .collect();
        Ok((full, labels))
    }
}
