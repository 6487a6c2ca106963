//! The Ollama export (docs/exports.md): the GGUF plus a `Modelfile` whose `TEMPLATE` is the
//! model's chat template in Ollama's Go template language, its default system prompt as
//! `SYSTEM`, and one `PARAMETER stop` per end-of-turn/end-of-sequence token. Templates are
//! converted by their turn markup: ChatML (`<|im_start|>role ... <|im_end|>`, Qwen) and
//! Llama 3's headers (`<|start_header_id|>role<|end_header_id|>`); the default system prompt
//! is what the chat template itself renders before a lone user turn.

use std::path::Path;

use tunewright_schemas::dataset::Turn;

use crate::error::TrainerError;
use crate::train::tokenize::ChatTokenizer;

pub const MODELFILE: &str = "Modelfile";

/// The turn markup of a chat template that tunewright converts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Markup {
    ChatMl,
    Llama3,
}

impl Markup {
    pub fn of(template: &str) -> Option<Markup> {
        if template.contains("<|im_start|>") {
            Some(Markup::ChatMl)
        } else if template.contains("<|start_header_id|>") {
            Some(Markup::Llama3)
        } else {
            None
        }
    }

    /// The Go template; `.Messages` includes the system message Ollama adds from `SYSTEM`.
    /// No BOS: llama.cpp adds it (`tokenizer.ggml.add_bos_token`). `generation_prompt` is
    /// what the chat template appends for the answer (Qwen3's opens a `<think>` block).
    pub fn go_template(self, generation_prompt: &str) -> String {
        let turn = match self {
            Markup::ChatMl => "<|im_start|>{{ .Role }}\n{{ .Content }}<|im_end|>\n",
            Markup::Llama3 => {
                "<|start_header_id|>{{ .Role }}<|end_header_id|>\n\n{{ .Content }}<|eot_id|>"
            }
        };
        format!("{{{{- range .Messages }}}}{turn}{{{{ end }}}}{generation_prompt}")
    }

    fn default_generation_prompt(self) -> &'static str {
        match self {
            Markup::ChatMl => "<|im_start|>assistant\n",
            Markup::Llama3 => "<|start_header_id|>assistant<|end_header_id|>\n\n",
        }
    }

    /// The system prompt the chat template adds on its own before `rendered`'s user turn.
    fn default_system(self, rendered: &str) -> Option<String> {
        let open = match self {
            Markup::ChatMl => "<|im_start|>system\n",
            Markup::Llama3 => "<|start_header_id|>system<|end_header_id|>\n\n",
        };
        let close = match self {
            Markup::ChatMl => "<|im_end|>",
            Markup::Llama3 => "<|eot_id|>",
        };
        let start = rendered.find(open)? + open.len();
        let end = start + rendered[start..].find(close)?;
        Some(rendered[start..end].to_string())
    }
}

fn quoted(s: &str) -> String {
    format!("\"\"\"{}\"\"\"", s.replace("\"\"\"", "\\\"\\\"\\\""))
}

/// The Modelfile of the model in `model_dir` (its GGUF beside it as `gguf_name`), with the
/// stop tokens' texts; None when the chat template's markup is not one tunewright converts.
pub fn modelfile(
    model_dir: &Path,
    gguf_name: &str,
    stop_texts: &[String],
) -> Result<Option<String>, TrainerError> {
    let tok = ChatTokenizer::load(model_dir)?;
    let Some(template) = super::gguf::vocab::chat_template(model_dir)? else {
        return Ok(None);
    };
    let Some(markup) = Markup::of(&template) else {
        return Ok(None);
    };
    let turns = [Turn {
        role: "user".into(),
        content: "x".into(),
    }];
    let lone = tok.render(&turns, false)?;
    let prompted = tok.render(&turns, true)?;
    let generation_prompt = prompted
        .strip_prefix(lone.as_str())
        .filter(|p| !p.is_empty())
        .unwrap_or(markup.default_generation_prompt());
    let mut out = format!("FROM ./{gguf_name}\n");
    out.push_str(&format!(
        "TEMPLATE {}\n",
        quoted(&markup.go_template(generation_prompt))
    ));
    if let Some(system) = markup.default_system(&lone) {
        out.push_str(&format!("SYSTEM {}\n", quoted(&system)));
    }
    for stop in stop_texts {
        out.push_str(&format!(
            "PARAMETER stop {}\n",
            serde_json::Value::from(stop.as_str())
        ));
    }
    Ok(Some(out))
}
