//! Dataset uploads seen from outside (raw JSONL body or multipart), their validation errors,
//! and what a dataset unlocks: splits and training jobs, with their own errors.

mod support;

use serde_json::json;
use support::{expect_error, Options, Server};

fn alpaca(n: usize) -> Vec<u8> {
    (0..n)
        .map(|i| {
            json!({"instruction": format!("Say {i}"), "output": format!("{i}")}).to_string() + "\n"
        })
        .collect::<String>()
        .into_bytes()
}

#[tokio::test]
async fn a_dataset_upload_unlocks_splits_and_training() {
    let s = Server::start().await;
    let p = s.create_project("ds").await;
    let url = s.url(&format!("/api/v1/projects/{p}/dataset"));

    // Raw JSONL body.
    let r = s
        .client
        .post(&url)
        .header("content-type", "application/jsonl")
        .body(alpaca(20))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let d: serde_json::Value = r.json().await.unwrap();
    assert_eq!(d["num_examples"], 20);
    assert_eq!(d["format"], "alpaca");
    assert_eq!(d["source"], "upload");
    let proj: serde_json::Value = s
        .get(&format!("/api/v1/projects/{p}"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(proj["status"], "ready_to_train");
    assert_eq!(proj["dataset"]["num_examples"], 20);

    // Multipart, replacing it.
    let part = reqwest::multipart::Part::bytes(alpaca(12)).file_name("data.jsonl");
    let r = s
        .client
        .post(&url)
        .multipart(reqwest::multipart::Form::new().part("file", part))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let d: serde_json::Value = r.json().await.unwrap();
    assert_eq!(d["num_examples"], 12);
    let stored = std::fs::read_dir(s.data_dir.join("projects").join(&p).join("datasets"))
        .unwrap()
        .count();
    assert!(stored >= 1);

    // Splits (docs/projects.md).
    let splits = format!("/api/v1/projects/{p}/splits");
    let r = s
        .post_json(
            &splits,
            json!({"name": "main", "ratios": {"train": 0.75, "val": 0.25}, "seed": 1}),
        )
        .await;
    assert_eq!(r.status(), 201);
    let sp: serde_json::Value = r.json().await.unwrap();
    assert_eq!(
        sp["counts"]["train"].as_u64().unwrap() + sp["counts"]["val"].as_u64().unwrap(),
        12
    );
    let r = s
        .post_json(
            &splits,
            json!({"name": "bad", "ratios": {"train": 0.5, "val": 0.2}}),
        )
        .await;
    expect_error(r, 400, "VALIDATION_ERROR").await;
    let r = s
        .post_json(
            &splits,
            json!({"name": "bad", "ratios": {"train": 0.8, "test": 0.2}}),
        )
        .await;
    expect_error(r, 400, "VALIDATION_ERROR").await;

    // Training: an unknown split, then one training at a time.
    let jobs = format!("/api/v1/projects/{p}/jobs");
    let tiny = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/tiny-llama");
    let r = s
        .post_json(
            &jobs,
            json!({"kind": "train", "config": {"split": "nope", "base_model": tiny}}),
        )
        .await;
    expect_error(r, 404, "SPLIT_NOT_FOUND").await;
    let r = s
        .post_json(
            &jobs,
            json!({"kind": "train", "config": {"split": "main", "max_steps": 1, "base_model": tiny}}),
        )
        .await;
    assert_eq!(r.status(), 201);
    let job: serde_json::Value = r.json().await.unwrap();
    let r = s
        .post_json(
            &jobs,
            json!({"kind": "train", "config": {"base_model": tiny}}),
        )
        .await;
    expect_error(r, 409, "TRAINING_ALREADY_RUNNING").await;
    // Cancel it so the test leaves nothing running.
    let id = job["id"].as_str().unwrap();
    let _ = s
        .client
        .post(s.url(&format!("/api/v1/jobs/{id}/cancel")))
        .send()
        .await
        .unwrap();
}

#[tokio::test]
async fn invalid_datasets_are_refused_with_their_line() {
    let s = Server::start_with(Options::default().args(&["--max-dataset-mb", "0.01"])).await;
    let p = s.create_project("bad").await;
    let url = s.url(&format!("/api/v1/projects/{p}/dataset"));
    let post = |body: Vec<u8>| {
        s.client
            .post(&url)
            .header("content-type", "application/jsonl")
            .body(body)
            .send()
    };

    let mut body = alpaca(11);
    body.extend_from_slice(b"{not json}\n");
    let v = expect_error(post(body).await.unwrap(), 400, "DATASET_UPLOAD_INVALID").await;
    assert_eq!(v["context"]["line"], 12);
    let v = expect_error(
        post(alpaca(3)).await.unwrap(),
        400,
        "DATASET_TOO_FEW_EXAMPLES",
    )
    .await;
    assert_eq!(v["context"]["num_examples"], 3);
    expect_error(post(Vec::new()).await.unwrap(), 400, "FILE_EMPTY").await;
    expect_error(post(alpaca(1000)).await.unwrap(), 413, "FILE_TOO_LARGE").await;
    let r = s
        .client
        .post(s.url("/api/v1/projects/prj_0190f6c4e8a87c3b9d0e5f1a2b3c4d5e/dataset"))
        .body(alpaca(10))
        .send()
        .await
        .unwrap();
    expect_error(r, 404, "PROJECT_NOT_FOUND").await;
    // Nothing refused was kept.
    let proj: serde_json::Value = s
        .get(&format!("/api/v1/projects/{p}"))
        .await
        .json()
        .await
        .unwrap();
    assert!(proj["dataset"].is_null());
    let dir = s.data_dir.join("projects").join(&p).join("datasets");
    let left = std::fs::read_dir(&dir).map(|d| d.count()).unwrap_or(0);
    assert_eq!(left, 0);
}
