//! Turning chat examples into token ids with the model's own tokenizer (`tokenizer.json`)
//! and chat template (`tokenizer_config.json`, rendered with minijinja and its Python string
//! methods, which templates such as Qwen3's call), with labels masked so the loss covers only
//! the answer (the last assistant turn) and its end-of-turn token.
//!
//! The answer's span: it starts where the conversation's tokens leave those of the prompt
//! rendered with the generation prompt, and not before the answer's own text (templates that
//! move a system prompt into the last user turn, or open a `<think>` block, make the two
//! renderings differ earlier); it ends with the first special token after the answer's text
//! (`<|eot_id|>`, `<|im_end|>`, `<end_of_turn>`, `<|end|>`, `</s>`), so the newline and the
//! end-of-text some templates put after the turn are not trained.

use std::collections::HashSet;
use std::path::Path;

use minijinja::{context, Environment};
use tokenizers::Tokenizer;
use tunewright_schemas::dataset::Turn;

use crate::TrainerError;

/// Label of a position the loss ignores (as in PyTorch's cross-entropy).
pub const IGNORE: i64 = -100;

pub struct ChatTokenizer {
    tokenizer: Tokenizer,
    /// Ids of the added tokens marked special (turn and text delimiters).
    special: HashSet<i64>,
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
        let special = tokenizer
            .get_added_tokens_decoder()
            .iter()
            .filter(|(_, t)| t.special)
            .map(|(id, _)| *id as i64)
            .collect();
        Ok(ChatTokenizer {
            special,
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
        env.set_unknown_method_callback(minijinja_contrib::pycompat::unknown_method_callback);
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

    /// `ids` as text, special tokens included.
    pub fn decode(&self, ids: &[i64]) -> Result<String, TrainerError> {
        let ids: Vec<u32> = ids.iter().map(|i| *i as u32).collect();
        self.tokenizer
            .decode(&ids, false)
            .map_err(|e| TrainerError::load(Path::new("tokenizer.json"), e.to_string()))
    }

    /// Token ids of the whole conversation and labels that keep only the last answer and its
    /// end-of-turn token (see the module comment).
    pub fn encode_example(&self, turns: &[Turn]) -> Result<(Vec<i64>, Vec<i64>), TrainerError> {
        let text = self.render(turns, false)?;
        let enc = self
            .tokenizer
            .encode(text.as_str(), false)
            .map_err(|e| TrainerError::load(Path::new("tokenizer.json"), e.to_string()))?;
        let full: Vec<i64> = enc.get_ids().iter().map(|i| *i as i64).collect();
        let prompt = self.encode(&self.render(&turns[..turns.len().saturating_sub(1)], true)?)?;
        let common = full.iter().zip(&prompt).take_while(|(a, b)| a == b).count();
        let answer = turns.last().map(|t| t.content.trim()).unwrap_or_default();
        let (start, end) = self.answer_span(&text, enc.get_offsets(), &full, answer, common);
        let labels = full
            .iter()
            .enumerate()
            .map(|(i, t)| {
                if (start..end).contains(&i) {
                    *t
                } else {
                    IGNORE
                }
            })
            .collect();
        Ok((full, labels))
    }

    /// Token range `[start, end)` of the answer and its end-of-turn token; `common` tokens are
    /// shared with the prompt. Without the answer's text in the rendering (a template that
    /// rewrites it), everything after `common` is the answer.
    fn answer_span(
        &self,
        text: &str,
        offsets: &[(usize, usize)],
        ids: &[i64],
        answer: &str,
        common: usize,
    ) -> (usize, usize) {
        let Some(pos) = (!answer.is_empty()).then(|| text.rfind(answer)).flatten() else {
            return (common, ids.len());
        };
        let first = offsets.iter().position(|(_, e)| *e > pos).unwrap_or(common);
        let start = common.max(first);
        let answer_end = pos + answer.len();
        let end = (start..ids.len())
            .find(|&k| offsets[k].0 >= answer_end && self.special.contains(&ids[k]))
            .map(|k| k + 1)
            .unwrap_or(ids.len());
        (start, end)
    }
}
