//! A real HTTP server on 127.0.0.1 speaking the OpenAI-compatible chat API, scriptable per
//! request: each request takes the next scripted reply; with the script empty it answers with
//! valid examples derived from the prompt (so every chunk gives distinct examples).
#![allow(dead_code)]

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};

/// One scripted reply.
#[derive(Debug, Clone)]
pub enum Reply {
    /// 200 with this assistant content.
    Content(String),
    /// 200 with the default examples for the prompt.
    Examples,
    /// Wait (tokio time), then answer with the default examples.
    Slow(Duration),
    /// This status, optional Retry-After, a short body.
    Status(u16, Option<String>),
    /// 200 with a body that is not a chat completion.
    NotCompletion,
}

#[derive(Debug, Clone)]
pub struct Recorded {
    pub authorization: Option<String>,
    pub model: String,
    pub system: String,
    pub user: String,
}

#[derive(Default)]
struct Inner {
    script: VecDeque<Reply>,
    requests: Vec<Recorded>,
    examples_per_answer: usize,
}

#[derive(Clone)]
pub struct FakeLlm {
    pub base_url: String,
    inner: Arc<Mutex<Inner>>,
}

impl FakeLlm {
    pub async fn start() -> FakeLlm {
        let inner = Arc::new(Mutex::new(Inner {
            examples_per_answer: 5,
            ..Inner::default()
        }));
        let app = Router::new()
            .route("/v1/chat/completions", post(handle))
            .with_state(inner.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        FakeLlm {
            base_url: format!("http://{addr}/v1"),
            inner,
        }
    }

    pub fn push(&self, replies: impl IntoIterator<Item = Reply>) {
        self.inner.lock().unwrap().script.extend(replies);
    }

    pub fn requests(&self) -> Vec<Recorded> {
        self.inner.lock().unwrap().requests.clone()
    }

    pub fn count(&self) -> usize {
        self.inner.lock().unwrap().requests.len()
    }
}

/// The default answer: `n` examples naming the prompt's text, so chunks differ.
pub fn examples_for(user: &str, n: usize) -> String {
    let tag: String = user
        .rsplit("TEXT:\n")
        .next()
        .unwrap_or(user)
        .split_whitespace()
        .take(8)
        .collect::<Vec<_>>()
        .join(" ");
    let items: Vec<serde_json::Value> = (0..n)
        .map(|k| {
            serde_json::json!({
                "instruction": format!("Question {k} about '{tag}'?"),
                "output": format!("Answer {k}: the text says '{tag}'."),
            })
        })
        .collect();
    serde_json::to_string(&items).unwrap()
}

fn completion(content: &str) -> Response {
    Json(serde_json::json!({
        "id": "chatcmpl-test",
        "object": "chat.completion",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": "stop"}],
    }))
    .into_response()
}

async fn handle(
    State(inner): State<Arc<Mutex<Inner>>>,
    headers: HeaderMap,
    Json(body): Json<serde_json::Value>,
) -> Response {
    let msg = |role: &str| {
        body["messages"]
            .as_array()
            .and_then(|m| m.iter().find(|m| m["role"] == role))
            .and_then(|m| m["content"].as_str())
            .unwrap_or_default()
            .to_string()
    };
    let rec = Recorded {
        authorization: headers
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .map(String::from),
        model: body["model"].as_str().unwrap_or_default().to_string(),
        system: msg("system"),
        user: msg("user"),
    };
    let (reply, n) = {
        let mut g = inner.lock().unwrap();
        g.requests.push(rec.clone());
        (
            g.script.pop_front().unwrap_or(Reply::Examples),
            g.examples_per_answer,
        )
    };
    match reply {
        Reply::Content(c) => completion(&c),
        Reply::Examples => completion(&examples_for(&rec.user, n)),
        Reply::Slow(d) => {
            tokio::time::sleep(d).await;
            completion(&examples_for(&rec.user, n))
        }
        Reply::Status(code, retry_after) => {
            let status = StatusCode::from_u16(code).unwrap();
            let mut resp = (status, format!("{{\"error\": \"scripted {code}\"}}")).into_response();
            if let Some(ra) = retry_after {
                resp.headers_mut()
                    .insert("retry-after", ra.parse().unwrap());
            }
            resp
        }
        Reply::NotCompletion => Json(serde_json::json!({"hello": "world"})).into_response(),
    }
}
