//! Admission over HTTP (docs/jobs.md, "Admission"): every job the service can tell is doomed
//! without device time is refused at submission with its catalog code and status, and the
//! refusal writes nothing: no new event in the log, no job.

mod support;
mod training;

use std::path::{Path, PathBuf};

use serde_json::{json, Value};
use support::*;
use training::{fixture, footprint, project_with_dataset, train_config};

/// Submit, expect `status`/`code`, and check that nothing was written.
async fn refused(
    s: &Server,
    project: &str,
    kind: &str,
    config: Value,
    status: u16,
    code: &str,
) -> Value {
    let before = footprint(s, project).await;
    let r = s
        .post_json(
            &format!("/api/v1/projects/{project}/jobs"),
            json!({"kind": kind, "config": config}),
        )
        .await;
    let body = expect_error(r, status, code).await;
    assert_eq!(
        footprint(s, project).await,
        before,
        "a refused {kind} job ({code}) wrote something: {body}"
    );
    body
}

/// A copy of the tiny Llama fixture that a test may damage.
fn model_copy(dir: &Path) -> PathBuf {
    let to = dir.join("model");
    std::fs::create_dir_all(&to).unwrap();
    for e in std::fs::read_dir(fixture("tiny-llama")).unwrap() {
        let e = e.unwrap();
        std::fs::copy(e.path(), to.join(e.file_name())).unwrap();
    }
    to
}

fn with(config: Value, key: &str, value: Value) -> Value {
    let mut c = config;
    c[key] = value;
    c
}

#[tokio::test]
async fn trainings_doomed_at_the_door_are_refused_with_their_code() {
    let s = Server::start().await;
    let p = project_with_dataset(&s, "admission").await;
    let tmp = tempfile::tempdir().unwrap();
    let ok = train_config(2, 1);

    let b = refused(
        &s,
        &p,
        "train",
        with(ok.clone(), "learning_rat", json!(0.1)),
        400,
        "VALIDATION_ERROR",
    )
    .await;
    assert!(
        b["detail"].as_str().unwrap().contains("learning_rat"),
        "{b}"
    );
    let b = refused(
        &s,
        &p,
        "train",
        with(ok.clone(), "max_steps", json!("ten")),
        400,
        "VALIDATION_ERROR",
    )
    .await;
    assert!(
        b["detail"].as_str().unwrap().contains("max_steps")
            || b["detail"].as_str().unwrap().contains("invalid type"),
        "{b}"
    );
    refused(&s, &p, "train", json!([1, 2]), 400, "VALIDATION_ERROR").await;

    let b = refused(
        &s,
        &p,
        "train",
        with(ok.clone(), "base_model", json!("/nonexistent/model")),
        404,
        "MODEL_NOT_FOUND",
    )
    .await;
    assert!(
        b["detail"].as_str().unwrap().contains("/nonexistent/model"),
        "{b}"
    );

    let gpt2 = model_copy(&tmp.path().join("gpt2"));
    std::fs::write(
        gpt2.join("config.json"),
        r#"{"architectures": ["GPT2LMHeadModel"], "model_type": "gpt2"}"#,
    )
    .unwrap();
    let b = refused(
        &s,
        &p,
        "train",
        with(ok.clone(), "base_model", json!(gpt2)),
        400,
        "MODEL_UNSUPPORTED_ARCH",
    )
    .await;
    assert!(
        b["detail"].as_str().unwrap().contains("GPT2LMHeadModel"),
        "{b}"
    );

    let no_tok = model_copy(&tmp.path().join("no-tokenizer"));
    std::fs::remove_file(no_tok.join("tokenizer.json")).unwrap();
    let b = refused(
        &s,
        &p,
        "train",
        with(ok.clone(), "base_model", json!(no_tok)),
        404,
        "MODEL_NOT_FOUND",
    )
    .await;
    assert!(
        b["detail"].as_str().unwrap().contains("tokenizer.json"),
        "{b}"
    );

    refused(
        &s,
        &p,
        "train",
        with(ok.clone(), "split", json!("nope")),
        404,
        "SPLIT_NOT_FOUND",
    )
    .await;

    let hw: Value = s.get("/api/v1/hardware").await.json().await.unwrap();
    if hw["gpu_available"] == json!(false) {
        refused(
            &s,
            &p,
            "train",
            with(ok.clone(), "device", json!("cuda")),
            400,
            "TRAINING_NO_GPU",
        )
        .await;
    }

    let empty = s.create_project("no dataset").await;
    refused(&s, &empty, "train", ok.clone(), 400, "TRAINING_NO_DATASET").await;
}

#[tokio::test]
async fn exports_and_generations_doomed_at_the_door_are_refused() {
    let s = Server::start_with(Options::default().env("TUNEWRIGHT_LLM_API_KEY", "")).await;
    let p = project_with_dataset(&s, "exports").await;
    refused(&s, &p, "export", json!({}), 400, "EXPORT_NO_RUN").await;
    let b = refused(
        &s,
        &p,
        "export",
        json!({"format": "onnx"}),
        422,
        "EXPORT_FORMAT_UNAVAILABLE",
    )
    .await;
    assert!(
        b["detail"]
            .as_str()
            .unwrap()
            .starts_with("Export format 'onnx' is not yet available"),
        "{b}"
    );
    refused(
        &s,
        &p,
        "export",
        json!({"format": "peft", "train_job": "job_nope"}),
        400,
        "VALIDATION_ERROR",
    )
    .await;

    let r = s
        .upload(
            &p,
            "notes.md",
            b"# notes\n\nSome text to learn from.\n".to_vec(),
        )
        .await;
    assert_eq!(r.status(), 201);
    let b = refused(
        &s,
        &p,
        "dataset_preview",
        json!({"llm_base_url": "https://llm.example.com/v1"}),
        400,
        "OLLAMA_API_KEY_MISSING",
    )
    .await;
    let detail = b["detail"].as_str().unwrap();
    assert!(
        detail.contains("llm_api_key_env") && detail.contains("TUNEWRIGHT_LLM_API_KEY"),
        "{b}"
    );
    refused(
        &s,
        &p,
        "dataset_generate",
        json!({"chunk_tokens": "big"}),
        400,
        "VALIDATION_ERROR",
    )
    .await;
}

#[tokio::test]
async fn an_unreadable_model_is_access_denied() {
    let tmp = tempfile::tempdir().unwrap();
    let model = model_copy(tmp.path());
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(
        model.join("config.json"),
        std::fs::Permissions::from_mode(0o000),
    )
    .unwrap();
    std::fs::set_permissions(tmp.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let data = tempfile::tempdir().unwrap();
    let s = Server::start_with(Options::default().data_dir(data.path()).unprivileged()).await;
    let p = project_with_dataset(&s, "denied").await;
    let b = refused(
        &s,
        &p,
        "train",
        with(train_config(2, 1), "base_model", json!(model)),
        403,
        "MODEL_ACCESS_DENIED",
    )
    .await;
    assert!(b["detail"].as_str().unwrap().contains("denied"), "{b}");
}

/// A Hugging Face cache with the tiny Llama as `Tiny/Llama` at `commit`, under `root`.
fn hub_cache(root: &Path, commit: &str) -> PathBuf {
    let repo = root.join("hub").join("models--Tiny--Llama");
    std::fs::create_dir_all(repo.join("refs")).unwrap();
    std::fs::write(repo.join("refs/main"), commit).unwrap();
    let blobs = repo.join("blobs");
    let snap = repo.join("snapshots").join(commit);
    std::fs::create_dir_all(&blobs).unwrap();
    std::fs::create_dir_all(&snap).unwrap();
    // The cache's real shape: snapshot entries are links to content-addressed blobs.
    for e in std::fs::read_dir(fixture("tiny-llama")).unwrap() {
        let e = e.unwrap();
        let blob = blobs.join(format!("blob-{}", e.file_name().to_string_lossy()));
        std::fs::copy(e.path(), &blob).unwrap();
        std::os::unix::fs::symlink(&blob, snap.join(e.file_name())).unwrap();
    }
    root.join("hub")
}

#[tokio::test]
async fn a_model_id_resolves_through_the_local_cache_and_is_pinned() {
    let tmp = tempfile::tempdir().unwrap();
    let commit = "0123456789abcdef0123456789abcdef01234567";
    let cache = hub_cache(tmp.path(), commit);
    let s = Server::start_with(
        training::single_threaded(Options::default()).env("HF_HUB_CACHE", cache.to_str().unwrap()),
    )
    .await;
    let p = project_with_dataset(&s, "hub").await;
    let b = refused(
        &s,
        &p,
        "train",
        with(train_config(2, 1), "base_model", json!("Nobody/Absent")),
        404,
        "MODEL_NOT_FOUND",
    )
    .await;
    let detail = b["detail"].as_str().unwrap();
    assert!(
        detail.contains("huggingface-cli download Nobody/Absent")
            && detail.contains(cache.to_str().unwrap()),
        "{b}"
    );
    refused(
        &s,
        &p,
        "train",
        with(
            with(train_config(2, 1), "base_model", json!("Tiny/Llama")),
            "revision",
            json!("v9"),
        ),
        502,
        "MODEL_RESOLVE_FAILED",
    )
    .await;
    // A snapshot whose weights are a dangling link is incomplete.
    let snap = cache.join("models--Tiny--Llama/snapshots").join(commit);
    let blob = std::fs::read_link(snap.join("model.safetensors")).unwrap();
    std::fs::rename(&blob, blob.with_extension("away")).unwrap();
    refused(
        &s,
        &p,
        "train",
        with(train_config(2, 1), "base_model", json!("Tiny/Llama")),
        502,
        "MODEL_RESOLVE_FAILED",
    )
    .await;
    std::fs::rename(blob.with_extension("away"), &blob).unwrap();

    let id = training::submit_train(
        &s,
        &p,
        with(train_config(2, 1), "base_model", json!("Tiny/Llama")),
    )
    .await;
    let job = training::finished(&s, &id).await;
    assert_eq!(job["status"], "success", "{job}");
    assert_eq!(job["config"]["base_model"], "Tiny/Llama");
    assert_eq!(
        job["config"]["revision"], commit,
        "admission pins the commit"
    );
}
