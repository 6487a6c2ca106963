//! Suggestions for failures of the LLM service behind dataset generation, in the generation
//! config's own keys (`request_timeout_secs`, `chunk_tokens`, `llm_model`,
//! `llm_api_key_env`, ...). A job never carries an API key: it names the environment
//! variable that holds one, so no suggestion here puts a key in a config.

use serde_json::json;
use tunewright_schemas::config::GenerationConfig;
use tunewright_schemas::{ErrorPhase, ErrorType, Suggestion};

use super::facts::Facts;
use super::suggestion::{int, num, s, Config};
use ErrorType::*;

/// The generation config's bounds (see `GenerationConfig::validate`).
const MAX_TIMEOUT_SECS: u64 = 3600;
const MIN_CHUNK_TOKENS: u64 = 32;

/// `Some` for the types this module answers; `None` leaves them to `suggest`.
pub fn suggestions(
    t: ErrorType,
    phase: ErrorPhase,
    c: Option<&Config>,
    _f: &Facts,
) -> Option<Vec<Suggestion>> {
    Some(match t {
        NetworkTimeout => timeout(c),
        NetworkUnreachable => vec![s("Check the service URL", "TUNEWRIGHT_LLM_BASE_URL (or the job's llm_base_url) must reach a running OpenAI-compatible server, e.g. http://127.0.0.1:11434/v1 for a local Ollama.".into(), json!({}))],
        RateLimit => vec![s("Wait and retry", "Rate-limited calls are retried honouring Retry-After; lower the request rate or raise the account's quota.".into(), json!({}))],
        AuthFailed => vec![s("Set a valid API key", "Set TUNEWRIGHT_LLM_API_KEY to a key the service accepts, or put the key in another environment variable and name that variable in the job's llm_api_key_env.".into(), json!({}))],
        LlmResponseInvalid => response_invalid(c),
        LlmModelNotFound => vec![s("Use a model the service has", "Pull it first (`ollama pull NAME`) or set llm_model (or TUNEWRIGHT_LLM_MODEL) to a model the service lists at GET /v1/models.".into(), json!({}))],
        LlmServerError => vec![
            s("Check the LLM server's log", "Server errors are retried automatically; a model runner that crashes or is killed often means the model does not fit the server's memory.".into(), json!({})),
            s("Use a smaller model", "Set llm_model (or TUNEWRIGHT_LLM_MODEL) to a smaller model the server has.".into(), json!({})),
        ],
        SequenceTooLong if phase == ErrorPhase::Generation => smaller_chunks(c)
            .into_iter()
            .chain([s("Use a model with a longer context", "The prompt holds one chunk of the documents plus the instructions; it must fit the model's context window.".into(), json!({}))])
            .collect(),
        _ => return None,
    })
}

fn defaults() -> GenerationConfig {
    GenerationConfig::default()
}

fn timeout(c: Option<&Config>) -> Vec<Suggestion> {
    let retry = s("Retry later", "Timeouts are retried automatically with backoff; a cold local model can take minutes to load on its first call.".into(), json!({}));
    let Some(c) = c else {
        return vec![
            s("Raise the request timeout", "Raise request_timeout_secs in the job's config (a slow local model needs more than the default).".into(), json!({})),
            retry,
        ];
    };
    let now = int(Some(c), "request_timeout_secs").unwrap_or(defaults().request_timeout_secs);
    let next = (now.saturating_mul(2)).clamp(1, MAX_TIMEOUT_SECS);
    let mut v = Vec::new();
    if next > now {
        v.push(s("Raise the request timeout", format!("request_timeout_secs {now} -> {next}: each LLM call may take that long before it is retried."), json!({"request_timeout_secs": next})));
    }
    v.push(retry);
    v
}

fn response_invalid(c: Option<&Config>) -> Vec<Suggestion> {
    let mut v = smaller_chunks(c);
    if let Some(c) = c {
        let temp = num(Some(c), "temperature").unwrap_or(defaults().temperature);
        if temp > 0.3 {
            v.push(s("Lower the temperature", format!("temperature {temp} -> 0.2: a cooler model follows the JSON format more reliably."), json!({"temperature": 0.2})));
        }
    }
    v.push(s("Use a stronger model", "Invalid JSON after repair usually means the model cannot follow the format: set llm_model to a larger model.".into(), json!({})));
    v
}

/// Halve chunk_tokens (keeping the overlap under half a chunk, as the config requires).
fn smaller_chunks(c: Option<&Config>) -> Vec<Suggestion> {
    let Some(c) = c else {
        return vec![s(
            "Use smaller chunks",
            "Lower chunk_tokens so each prompt (and answer) is shorter.".into(),
            json!({}),
        )];
    };
    let d = defaults();
    let chunk = int(Some(c), "chunk_tokens").unwrap_or(d.chunk_tokens as u64);
    let overlap = int(Some(c), "chunk_overlap_tokens").unwrap_or(d.chunk_overlap_tokens as u64);
    let next = (chunk / 2).max(MIN_CHUNK_TOKENS);
    if next >= chunk {
        return Vec::new();
    }
    if overlap < next / 2 {
        return vec![s(
            "Use smaller chunks",
            format!("chunk_tokens {chunk} -> {next}: shorter prompts and answers."),
            json!({"chunk_tokens": next}),
        )];
    }
    let next_overlap = next / 4;
    vec![s(
        "Use smaller chunks",
        format!("chunk_tokens {chunk} -> {next} with chunk_overlap_tokens {overlap} -> {next_overlap} (the overlap must stay under half a chunk)."),
        json!({"chunk_tokens": next, "chunk_overlap_tokens": next_overlap}),
    )]
}
