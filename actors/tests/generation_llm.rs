//! The LLM client against a real HTTP fake on 127.0.0.1 with a paused clock: every error code
//! of docs/errors.md, the retry policy of docs/jobs.md (counts, waits, Retry-After, no retry on 401/403/404).

#[path = "support/fake_llm.rs"]
mod fake_llm;

use std::time::Duration;

use fake_llm::{FakeLlm, Reply};
use tokio::time::Instant;
use tunewright_actors::generation::{ChatMessage, LlmClient, LlmSettings, RetryPolicy};
use tunewright_schemas::ErrorCode;

fn settings(base: &str, key: Option<&str>) -> LlmSettings {
    LlmSettings {
        base_url: base.to_string(),
        model: "test-model".into(),
        api_key: key.map(String::from),
        timeout: Duration::from_secs(10),
        temperature: 0.0,
    }
}

async fn ask(fake: &FakeLlm) -> Result<String, tunewright_schemas::Failure> {
    let c = LlmClient::new(settings(&fake.base_url, Some("sk-test"))).unwrap();
    c.chat(&[ChatMessage::user("TEXT:\nhello world")]).await
}

#[tokio::test(start_paused = true)]
async fn answers_and_sends_bearer_and_model() {
    let fake = FakeLlm::start().await;
    fake.push([Reply::Content("hi".into())]);
    assert_eq!(ask(&fake).await.unwrap(), "hi");
    let r = &fake.requests()[0];
    assert_eq!(r.authorization.as_deref(), Some("Bearer sk-test"));
    assert_eq!(r.model, "test-model");
}

#[tokio::test(start_paused = true)]
async fn loopback_without_key_sends_no_authorization() {
    let fake = FakeLlm::start().await;
    let c = LlmClient::new(settings(&fake.base_url, None)).unwrap();
    c.chat(&[ChatMessage::user("x")]).await.unwrap();
    assert_eq!(fake.requests()[0].authorization, None);
}

#[tokio::test(start_paused = true)]
async fn server_errors_retry_with_exponential_waits_then_succeed() {
    let fake = FakeLlm::start().await;
    fake.push([
        Reply::Status(500, None),
        Reply::Status(503, None),
        Reply::Content("ok".into()),
    ]);
    let t0 = Instant::now();
    assert_eq!(ask(&fake).await.unwrap(), "ok");
    let waited = t0.elapsed();
    assert_eq!(fake.count(), 3);
    assert!(
        waited >= Duration::from_secs(6) && waited < Duration::from_secs(7),
        "2 s + 4 s: {waited:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn server_errors_give_up_after_three_attempts() {
    let fake = FakeLlm::start().await;
    fake.push([
        Reply::Status(500, None),
        Reply::Status(502, None),
        Reply::Status(500, None),
        Reply::Content("late".into()),
    ]);
    let e = ask(&fake).await.unwrap_err();
    assert_eq!(e.error_code, ErrorCode::OllamaApiError);
    assert_eq!(fake.count(), 3);
}

#[tokio::test(start_paused = true)]
async fn rate_limit_honours_retry_after_seconds() {
    let fake = FakeLlm::start().await;
    fake.push([
        Reply::Status(429, Some("17".into())),
        Reply::Content("ok".into()),
    ]);
    let t0 = Instant::now();
    assert_eq!(ask(&fake).await.unwrap(), "ok");
    let waited = t0.elapsed();
    assert!(
        waited >= Duration::from_secs(17) && waited < Duration::from_secs(18),
        "{waited:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn rate_limit_honours_retry_after_http_date_and_ends_in_rate_limit_code() {
    let fake = FakeLlm::start().await;
    let past = httpdate::fmt_http_date(std::time::SystemTime::UNIX_EPOCH);
    fake.push([
        Reply::Status(429, Some(past.clone())),
        Reply::Status(429, Some(past.clone())),
        Reply::Status(429, Some(past)),
    ]);
    let t0 = Instant::now();
    let e = ask(&fake).await.unwrap_err();
    assert_eq!(e.error_code, ErrorCode::OllamaApiRateLimit);
    assert_eq!(fake.count(), 3);
    // A date in the past means "now": no exponential wait was added.
    assert!(t0.elapsed() < Duration::from_secs(1), "{:?}", t0.elapsed());
}

#[tokio::test(start_paused = true)]
async fn no_retry_on_401_403_404() {
    for (status, code) in [
        (401, ErrorCode::OllamaApiKeyInvalid),
        (403, ErrorCode::OllamaApiKeyInvalid),
        (404, ErrorCode::OllamaModelNotFound),
    ] {
        let fake = FakeLlm::start().await;
        fake.push([Reply::Status(status, None), Reply::Content("never".into())]);
        let e = ask(&fake).await.unwrap_err();
        assert_eq!(e.error_code, code, "HTTP {status}");
        assert_eq!(fake.count(), 1, "HTTP {status} is not retried");
    }
}

#[tokio::test(start_paused = true)]
async fn slow_answers_time_out_and_are_retried() {
    let fake = FakeLlm::start().await;
    let slow = Duration::from_secs(600);
    fake.push([Reply::Slow(slow), Reply::Slow(slow), Reply::Slow(slow)]);
    let t0 = Instant::now();
    let e = ask(&fake).await.unwrap_err();
    assert_eq!(e.error_code, ErrorCode::OllamaApiTimeout);
    assert_eq!(fake.count(), 3);
    // 3 timeouts of 10 s and waits of 2 s and 4 s.
    let waited = t0.elapsed();
    assert!(
        waited >= Duration::from_secs(36) && waited < Duration::from_secs(40),
        "{waited:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn a_slow_answer_then_a_fast_one_succeeds() {
    let fake = FakeLlm::start().await;
    fake.push([
        Reply::Slow(Duration::from_secs(600)),
        Reply::Content("fast".into()),
    ]);
    assert_eq!(ask(&fake).await.unwrap(), "fast");
    assert_eq!(fake.count(), 2);
}

#[tokio::test(start_paused = true)]
async fn a_body_that_is_not_a_completion_is_response_invalid() {
    let fake = FakeLlm::start().await;
    fake.push([Reply::NotCompletion]);
    let e = ask(&fake).await.unwrap_err();
    assert_eq!(e.error_code, ErrorCode::OllamaResponseInvalid);
    assert_eq!(fake.count(), 1);
}

#[tokio::test(start_paused = true)]
async fn connection_refused_is_api_error_after_retries() {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    drop(l);
    let c = LlmClient::new(settings(&format!("http://{addr}/v1"), None)).unwrap();
    let t0 = Instant::now();
    let e = c.chat(&[ChatMessage::user("x")]).await.unwrap_err();
    assert_eq!(e.error_code, ErrorCode::OllamaApiError);
    assert!(t0.elapsed() >= Duration::from_secs(6), "two waits happened");
}

#[tokio::test]
async fn remote_base_url_without_key_is_key_missing() {
    let cfg = tunewright_schemas::config::GenerationConfig {
        llm_base_url: Some("https://ollama.com/v1".into()),
        llm_api_key_env: Some("TUNEWRIGHT_TEST_NO_SUCH_KEY_VAR".into()),
        ..Default::default()
    };
    let e = LlmSettings::resolve(&cfg).unwrap_err();
    assert_eq!(e.error_code, ErrorCode::OllamaApiKeyMissing);
}

fn https_client(base: &str) -> LlmClient {
    LlmClient::new(settings(base, Some("sk-test")))
        .unwrap()
        .with_policy(RetryPolicy {
            attempts: 1,
            min_wait: Duration::from_millis(1),
            max_wait: Duration::from_millis(1),
        })
}

fn reason(f: &tunewright_schemas::Failure) -> String {
    f.context.0["reason"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

/// https base URLs (Ollama Cloud, OpenAI) work: the client has a TLS backend, so a refused
/// https connection is an ordinary retryable connection error, not "scheme not supported".
#[tokio::test]
async fn an_https_base_url_builds_and_a_refused_connection_is_an_api_error() {
    let c = https_client("https://127.0.0.1:1/v1");
    let e = c.chat(&[ChatMessage::user("x")]).await.unwrap_err();
    assert_eq!(e.error_code, ErrorCode::OllamaApiError, "{e:?}");
    assert!(e.error_code.is_retryable());
    let r = reason(&e);
    assert!(r.contains("cannot connect"), "{r}");
    assert!(!r.to_ascii_lowercase().contains("scheme"), "{r}");
    assert!(!format!("{e:?}").contains("sk-test"));
}

/// Against a local listener the client really speaks TLS: the first bytes it sends on an https
/// URL are a TLS handshake record (0x16, version 3.x), and a peer that hangs up is an API error.
#[tokio::test]
async fn an_https_request_starts_a_tls_handshake() {
    use tokio::io::AsyncReadExt;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let peer = tokio::spawn(async move {
        let (mut sock, _) = listener.accept().await.unwrap();
        let mut first = [0u8; 3];
        sock.read_exact(&mut first).await.unwrap();
        first
    });
    let c = https_client(&format!("https://{addr}/v1"));
    let e = c.chat(&[ChatMessage::user("x")]).await.unwrap_err();
    let first = peer.await.unwrap();
    assert_eq!(first[0], 0x16, "not a TLS handshake record: {first:?}");
    assert_eq!(first[1], 0x03, "not a TLS version: {first:?}");
    assert_eq!(e.error_code, ErrorCode::OllamaApiError, "{e:?}");
    assert!(!reason(&e).to_ascii_lowercase().contains("scheme"), "{e:?}");
}
