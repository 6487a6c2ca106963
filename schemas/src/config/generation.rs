//! Configuration of the dataset generation jobs (`dataset_preview`, `dataset_generate`):
//! chunking, how many examples per chunk, and per-job overrides of the LLM endpoint.

#![allow(clippy::result_large_err)] // `Failure` is the domain error, returned by value.

use serde::{Deserialize, Serialize};

use crate::{ctx, ErrorCode, Failure};

/// A generation job's config as users write it; every field has a default.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct GenerationConfig {
    /// Target chunk size in (estimated) tokens.
    pub chunk_tokens: usize,
    /// Tokens of the previous chunk repeated at the start of the next.
    pub chunk_overlap_tokens: usize,
    /// How many chunks a `dataset_preview` job uses.
    pub preview_chunks: usize,
    /// How many examples the LLM is asked for per chunk.
    pub examples_per_chunk: usize,
    /// Overrides `TUNEWRIGHT_LLM_BASE_URL`, e.g. `http://127.0.0.1:11434/v1`.
    pub llm_base_url: Option<String>,
    /// Overrides `TUNEWRIGHT_LLM_MODEL`.
    pub llm_model: Option<String>,
    /// Name of the environment variable holding this job's API key (overrides
    /// `TUNEWRIGHT_LLM_API_KEY`). The key itself is never part of a job config, so it never
    /// reaches the event log; a config carrying `llm_api_key` is rejected.
    pub llm_api_key_env: Option<String>,
    /// Whole-request timeout per LLM call, seconds.
    pub request_timeout_secs: u64,
    /// Temperature passed to the LLM.
    pub temperature: f64,
}

impl Default for GenerationConfig {
    fn default() -> Self {
        GenerationConfig {
            chunk_tokens: 512,
            chunk_overlap_tokens: 64,
            preview_chunks: 3,
            examples_per_chunk: 5,
            llm_base_url: None,
            llm_model: None,
            llm_api_key_env: None,
            request_timeout_secs: 120,
            temperature: 0.7,
        }
    }
}

impl std::fmt::Debug for GenerationConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GenerationConfig")
            .field("chunk_tokens", &self.chunk_tokens)
            .field("chunk_overlap_tokens", &self.chunk_overlap_tokens)
            .field("preview_chunks", &self.preview_chunks)
            .field("examples_per_chunk", &self.examples_per_chunk)
            .field("llm_base_url", &self.llm_base_url)
            .field("llm_model", &self.llm_model)
            .field("llm_api_key_env", &self.llm_api_key_env)
            .field("request_timeout_secs", &self.request_timeout_secs)
            .field("temperature", &self.temperature)
            .finish()
    }
}

/// What a secret is replaced with wherever a config is shown or recorded.
pub const REDACTED: &str = "***redacted***";

fn bad(field: &str, reason: &str) -> Failure {
    Failure::new(
        ErrorCode::ValidationError,
        ctx! {"reason" => format!("generation config: {field} {reason}"), "field" => field},
    )
}

impl GenerationConfig {
    pub fn from_json(v: &serde_json::Value) -> Result<GenerationConfig, Failure> {
        let v = if v.is_null() {
            serde_json::json!({})
        } else {
            v.clone()
        };
        if v.get("llm_api_key").is_some() {
            return Err(Failure::new(
                ErrorCode::ValidationError,
                ctx! {
                    "reason" => "generation config: llm_api_key is not accepted in a job config (it would be recorded); set TUNEWRIGHT_LLM_API_KEY or name a variable in llm_api_key_env",
                    "field" => "llm_api_key"
                },
            ));
        }
        let c: GenerationConfig = serde_json::from_value(v).map_err(|e| {
            Failure::new(
                ErrorCode::ValidationError,
                ctx! {"reason" => format!("generation config: {e}")},
            )
        })?;
        c.validate()?;
        Ok(c)
    }

    pub fn validate(&self) -> Result<(), Failure> {
        if !(32..=32_768).contains(&self.chunk_tokens) {
            return Err(bad("chunk_tokens", "must be between 32 and 32768"));
        }
        if self.chunk_overlap_tokens >= self.chunk_tokens / 2 {
            return Err(bad(
                "chunk_overlap_tokens",
                "must be less than half of chunk_tokens",
            ));
        }
        if !(1..=100).contains(&self.preview_chunks) {
            return Err(bad("preview_chunks", "must be between 1 and 100"));
        }
        if !(1..=50).contains(&self.examples_per_chunk) {
            return Err(bad("examples_per_chunk", "must be between 1 and 50"));
        }
        if !(1..=3600).contains(&self.request_timeout_secs) {
            return Err(bad("request_timeout_secs", "must be between 1 and 3600"));
        }
        if !(0.0..=2.0).contains(&self.temperature) {
            return Err(bad("temperature", "must be between 0 and 2"));
        }
        Ok(())
    }

    /// A job config JSON with any API key replaced by [`REDACTED`] (for recording/showing).
    pub fn redacted(v: &serde_json::Value) -> serde_json::Value {
        let mut v = v.clone();
        if let Some(o) = v.as_object_mut() {
            if let Some(k) = o.get_mut("llm_api_key") {
                if !k.is_null() {
                    *k = serde_json::Value::String(REDACTED.into());
                }
            }
        }
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_validation() {
        let c = GenerationConfig::from_json(&serde_json::Value::Null).unwrap();
        assert_eq!(c.chunk_tokens, 512);
        let e = GenerationConfig::from_json(&serde_json::json!({"chunk_tokens": 1})).unwrap_err();
        assert_eq!(e.error_code, ErrorCode::ValidationError);
        let e = GenerationConfig::from_json(&serde_json::json!({"nope": 1})).unwrap_err();
        assert_eq!(e.error_code, ErrorCode::ValidationError);
    }

    #[test]
    fn key_is_redacted() {
        let v = serde_json::json!({"llm_api_key": "sk-secret"});
        assert!(!GenerationConfig::redacted(&v)
            .to_string()
            .contains("sk-secret"));
        let e = GenerationConfig::from_json(&v).unwrap_err();
        assert_eq!(e.error_code, ErrorCode::ValidationError);
        assert_eq!(e.context.0["field"], "llm_api_key");
        assert!(!e.to_string().contains("sk-secret"));
    }
}
