//! Client for the OpenAI-compatible `POST {base}/chat/completions` (Ollama's `/v1`, vLLM,
//! llama.cpp server, OpenAI), with the retry policy of docs/jobs.md ("LLM calls"): 3 attempts, exponential
//! wait 2..30 s, on timeouts, connection errors, 429 and 5xx, honouring `Retry-After`; no retry
//! on 401/403/404. Waits use tokio time (tests run with a paused clock). The API key is sent as
//! a bearer token and never logged: `LlmSettings`' Debug redacts it.
//!
//! Key rule: a base URL on a loopback host (127.0.0.0/8, ::1, localhost) needs no key (a local
//! Ollama/vLLM/llama.cpp); any other host without a key is `OLLAMA_API_KEY_MISSING`.

use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};
use tunewright_schemas::config::GenerationConfig;
use tunewright_schemas::{ctx, ErrorCode, Failure};

pub const ENV_BASE_URL: &str = "TUNEWRIGHT_LLM_BASE_URL";
pub const ENV_MODEL: &str = "TUNEWRIGHT_LLM_MODEL";
pub const ENV_API_KEY: &str = "TUNEWRIGHT_LLM_API_KEY";
pub const DEFAULT_BASE_URL: &str = "http://127.0.0.1:11434/v1";
pub const DEFAULT_MODEL: &str = "llama3.2";

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ChatMessage {
    pub role: String,
    pub content: String,
}

impl ChatMessage {
    pub fn system(s: impl Into<String>) -> Self {
        ChatMessage {
            role: "system".into(),
            content: s.into(),
        }
    }
    pub fn user(s: impl Into<String>) -> Self {
        ChatMessage {
            role: "user".into(),
            content: s.into(),
        }
    }
}

/// Where and how to reach the LLM.
#[derive(Clone)]
pub struct LlmSettings {
    pub base_url: String,
    pub model: String,
    pub api_key: Option<String>,
    pub timeout: Duration,
    pub temperature: f64,
}

impl std::fmt::Debug for LlmSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LlmSettings")
            .field("base_url", &self.base_url)
            .field("model", &self.model)
            .field("api_key", &self.api_key.as_ref().map(|_| "***redacted***"))
            .field("timeout", &self.timeout)
            .finish()
    }
}

impl LlmSettings {
    /// The job's overrides over the environment over the defaults; checks the key rule.
    pub fn resolve(cfg: &GenerationConfig) -> Result<LlmSettings, Failure> {
        let env = |k: &str| std::env::var(k).ok().filter(|v| !v.trim().is_empty());
        let base_url = cfg
            .llm_base_url
            .clone()
            .or_else(|| env(ENV_BASE_URL))
            .unwrap_or_else(|| DEFAULT_BASE_URL.into());
        let model = cfg
            .llm_model
            .clone()
            .or_else(|| env(ENV_MODEL))
            .unwrap_or_else(|| DEFAULT_MODEL.into());
        let api_key = match &cfg.llm_api_key_env {
            Some(name) => env(name),
            None => env(ENV_API_KEY),
        };
        let s = LlmSettings {
            base_url: base_url.trim_end_matches('/').to_string(),
            model,
            api_key,
            timeout: Duration::from_secs(cfg.request_timeout_secs),
            temperature: cfg.temperature,
        };
        s.check()?;
        Ok(s)
    }

    fn check(&self) -> Result<(), Failure> {
        let url = reqwest::Url::parse(&self.base_url).map_err(|e| {
            Failure::new(
                ErrorCode::ValidationError,
                ctx! {"reason" => format!("LLM base URL '{}': {e}", self.base_url)},
            )
        })?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(Failure::new(
                ErrorCode::ValidationError,
                ctx! {"reason" => format!("LLM base URL '{}' must be http(s)", self.base_url)},
            ));
        }
        if self.api_key.is_none() && !is_loopback(&url) {
            return Err(Failure::new(
                ErrorCode::OllamaApiKeyMissing,
                ctx! {"base_url" => self.base_url.clone()},
            ));
        }
        Ok(())
    }
}

fn is_loopback(url: &reqwest::Url) -> bool {
    match url.host() {
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    }
}

/// The retry numbers of docs/jobs.md ("LLM calls").
#[derive(Debug, Clone, Copy)]
pub struct RetryPolicy {
    pub attempts: u32,
    pub min_wait: Duration,
    pub max_wait: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            attempts: 3,
            min_wait: Duration::from_secs(2),
            max_wait: Duration::from_secs(30),
        }
    }
}

impl RetryPolicy {
    /// Wait before retry number `n` (1-based): min * 2^(n-1), capped; a server's
    /// `Retry-After` wins (capped at 5 minutes).
    pub fn wait(&self, n: u32, retry_after: Option<Duration>) -> Duration {
        if let Some(ra) = retry_after {
            return ra.min(Duration::from_secs(300));
        }
        let exp = self
            .min_wait
            .saturating_mul(1u32 << (n.saturating_sub(1)).min(16));
        exp.min(self.max_wait)
    }
}

/// One failed try: the failure and whether the LLM retry policy retries it.
struct TryError {
    failure: Failure,
    retry: bool,
    retry_after: Option<Duration>,
}

#[derive(Clone)]
pub struct LlmClient {
    http: reqwest::Client,
    settings: LlmSettings,
    policy: RetryPolicy,
}

#[derive(Deserialize)]
struct Completion {
    choices: Vec<Choice>,
}
#[derive(Deserialize)]
struct Choice {
    message: ChoiceMessage,
}
#[derive(Deserialize)]
struct ChoiceMessage {
    content: Option<String>,
}

impl LlmClient {
    pub fn new(settings: LlmSettings) -> Result<LlmClient, Failure> {
        let http = reqwest::Client::builder().build().map_err(|e| {
            Failure::new(
                ErrorCode::OllamaApiError,
                ctx! {"reason" => format!("HTTP client: {e}")},
            )
        })?;
        Ok(LlmClient {
            http,
            settings,
            policy: RetryPolicy::default(),
        })
    }

    pub fn with_policy(mut self, policy: RetryPolicy) -> Self {
        self.policy = policy;
        self
    }

    pub fn settings(&self) -> &LlmSettings {
        &self.settings
    }

    /// The assistant's answer text, after up to `policy.attempts` tries.
    pub async fn chat(&self, messages: &[ChatMessage]) -> Result<String, Failure> {
        let mut n = 0;
        loop {
            n += 1;
            match self.try_once(messages).await {
                Ok(text) => return Ok(text),
                Err(e) if e.retry && n < self.policy.attempts => {
                    let wait = self.policy.wait(n, e.retry_after);
                    tracing::warn!(
                        code = e.failure.error_code.as_str(),
                        attempt = n,
                        wait_ms = wait.as_millis() as u64,
                        "LLM request failed, retrying"
                    );
                    tokio::time::sleep(wait).await;
                }
                Err(e) => return Err(e.failure),
            }
        }
    }

    async fn try_once(&self, messages: &[ChatMessage]) -> Result<String, TryError> {
        let s = &self.settings;
        let body = serde_json::json!({
            "model": s.model,
            "messages": messages,
            "temperature": s.temperature,
            "stream": false,
        });
        let mut req = self
            .http
            .post(format!("{}/chat/completions", s.base_url))
            .json(&body);
        if let Some(key) = &s.api_key {
            req = req.bearer_auth(key);
        }
        let timeout_secs = s.timeout.as_secs();
        let timed_out = || TryError {
            failure: Failure::new(
                ErrorCode::OllamaApiTimeout,
                ctx! {"timeout_secs" => timeout_secs},
            ),
            retry: true,
            retry_after: None,
        };
        let exchange = async {
            let resp = req.send().await.map_err(transport)?;
            let status = resp.status();
            let retry_after = resp
                .headers()
                .get(reqwest::header::RETRY_AFTER)
                .and_then(|v| v.to_str().ok())
                .and_then(parse_retry_after);
            let text = resp.text().await.map_err(transport)?;
            Ok::<_, TryError>((status, retry_after, text))
        };
        let (status, retry_after, text) = match tokio::time::timeout(s.timeout, exchange).await {
            Ok(r) => r?,
            Err(_) => return Err(timed_out()),
        };
        if status.is_success() {
            return parse_completion(&text).map_err(|reason| TryError {
                failure: Failure::new(ErrorCode::OllamaResponseInvalid, ctx! {"reason" => reason}),
                retry: false,
                retry_after: None,
            });
        }
        Err(status_error(status.as_u16(), retry_after, &text, &s.model))
    }
}

/// A transport failure (connect, TLS, reset, ...), retryable, with the error's source chain in
/// the reason (reqwest's own text names only the URL; the cause, e.g. "Connection refused" or
/// a certificate error, is in the sources). The chain names the URL, never the headers.
fn transport(e: reqwest::Error) -> TryError {
    let mut reason = if e.is_connect() {
        format!("cannot connect: {e}")
    } else {
        format!("transport error: {e}")
    };
    let mut source = std::error::Error::source(&e);
    while let Some(cause) = source {
        reason.push_str(": ");
        reason.push_str(&cause.to_string());
        source = cause.source();
    }
    TryError {
        failure: Failure::new(ErrorCode::OllamaApiError, ctx! {"reason" => reason}),
        retry: true,
        retry_after: None,
    }
}

fn status_error(status: u16, retry_after: Option<Duration>, body: &str, model: &str) -> TryError {
    let snippet: String = body.chars().take(300).collect();
    let (failure, retry) = match status {
        401 | 403 => (
            Failure::new(ErrorCode::OllamaApiKeyInvalid, ctx! {"status" => status}),
            false,
        ),
        404 => (
            Failure::new(ErrorCode::OllamaModelNotFound, ctx! {"model" => model}),
            false,
        ),
        429 => (
            Failure::new(
                ErrorCode::OllamaApiRateLimit,
                ctx! {"retry_after_secs" => retry_after.map(|d| d.as_secs()).unwrap_or(0)},
            ),
            true,
        ),
        s if s >= 500 => (
            Failure::new(
                ErrorCode::OllamaApiError,
                ctx! {"reason" => format!("HTTP {s}: {snippet}")},
            ),
            true,
        ),
        s => (
            Failure::new(
                ErrorCode::OllamaApiError,
                ctx! {"reason" => format!("HTTP {s}: {snippet}")},
            ),
            false,
        ),
    };
    TryError {
        failure: failure.caused_by(format!("HTTP {status}")),
        retry,
        retry_after,
    }
}

fn parse_completion(text: &str) -> Result<String, String> {
    let c: Completion =
        serde_json::from_str(text).map_err(|e| format!("not a chat completion: {e}"))?;
    c.choices
        .into_iter()
        .next()
        .and_then(|ch| ch.message.content)
        .ok_or_else(|| "the completion has no message content".to_string())
}

/// `Retry-After` as delta-seconds or an HTTP date (relative to now, never negative).
pub fn parse_retry_after(v: &str) -> Option<Duration> {
    let v = v.trim();
    if let Ok(secs) = v.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let at = httpdate::parse_http_date(v).ok()?;
    Some(
        at.duration_since(SystemTime::now())
            .unwrap_or(Duration::ZERO),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_forms() {
        assert_eq!(parse_retry_after("7"), Some(Duration::from_secs(7)));
        let future = SystemTime::now() + Duration::from_secs(100);
        let d = parse_retry_after(&httpdate::fmt_http_date(future)).unwrap();
        assert!(d <= Duration::from_secs(100) && d >= Duration::from_secs(98));
        assert_eq!(
            parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT"),
            Some(Duration::ZERO)
        );
        assert_eq!(parse_retry_after("soon"), None);
    }

    #[test]
    fn backoff_is_exponential_and_capped() {
        let p = RetryPolicy::default();
        let w: Vec<u64> = (1..=6).map(|n| p.wait(n, None).as_secs()).collect();
        assert_eq!(w, vec![2, 4, 8, 16, 30, 30]);
        assert_eq!(p.wait(1, Some(Duration::from_secs(9))).as_secs(), 9);
    }

    #[test]
    fn key_rule() {
        let mut cfg = GenerationConfig {
            llm_base_url: Some("https://ollama.com/v1".into()),
            llm_api_key_env: Some("TUNEWRIGHT_TEST_UNSET_KEY_VARIABLE".into()),
            ..GenerationConfig::default()
        };
        let e = LlmSettings::resolve(&cfg).unwrap_err();
        assert_eq!(e.error_code, ErrorCode::OllamaApiKeyMissing);
        cfg.llm_base_url = Some("http://127.0.0.1:11434/v1".into());
        assert!(LlmSettings::resolve(&cfg).is_ok());
        cfg.llm_base_url = Some("http://localhost:8000/v1/".into());
        assert_eq!(
            LlmSettings::resolve(&cfg).unwrap().base_url,
            "http://localhost:8000/v1"
        );
        let s = LlmSettings {
            api_key: Some("sk-secret".into()),
            ..LlmSettings::resolve(&cfg).unwrap()
        };
        assert!(!format!("{s:?}").contains("sk-secret"));
    }
}
