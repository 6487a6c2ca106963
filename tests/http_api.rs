//! The HTTP API seen from outside: a real `tunewright serve` on 127.0.0.1, driven by reqwest.
//! Every route, and every error code a user's request can provoke, in the catalog's shape.

mod support;

use serde_json::json;
use support::{expect_error, Options, Server};

#[tokio::test]
async fn projects_round_trip_and_paginate() {
    let s = Server::start().await;
    let r = s.get("/health").await;
    assert_eq!(r.status(), 200);
    let r = s.get("/ready").await;
    assert_eq!(r.status(), 200);

    let mut ids = Vec::new();
    for i in 0..5 {
        ids.push(s.create_project(&format!("project {i}")).await);
    }
    let one: serde_json::Value = s
        .get(&format!("/api/v1/projects/{}", ids[2]))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(one["name"], "project 2");
    assert_eq!(one["status"], "created");
    assert!(one["dataset"].is_null());

    // Pages of 2 walk all five, in creation order, and end with next = null.
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let q = match &cursor {
            Some(c) => format!("/api/v1/projects?limit=2&cursor={c}"),
            None => "/api/v1/projects?limit=2".to_string(),
        };
        let page: serde_json::Value = s.get(&q).await.json().await.unwrap();
        for p in page["items"].as_array().unwrap() {
            seen.push(p["id"].as_str().unwrap().to_string());
        }
        match page["next"].as_str() {
            Some(n) => cursor = Some(n.to_string()),
            None => break,
        }
    }
    assert_eq!(seen, ids);

    let r = s
        .client
        .delete(s.url(&format!("/api/v1/projects/{}", ids[0])))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    let r = s.get(&format!("/api/v1/projects/{}", ids[0])).await;
    expect_error(r, 404, "PROJECT_NOT_FOUND").await;
    let r = s
        .client
        .delete(s.url(&format!("/api/v1/projects/{}", ids[0])))
        .send()
        .await
        .unwrap();
    expect_error(r, 404, "PROJECT_NOT_FOUND").await;
}

#[tokio::test]
async fn malformed_requests_are_catalog_errors() {
    let s = Server::start_with(Options::default().args(&["--max-json-kb", "1"])).await;
    // Unknown route and wrong method.
    expect_error(s.get("/api/v1/nothing-here").await, 404, "ROUTE_NOT_FOUND").await;
    let r = s
        .client
        .put(s.url("/api/v1/projects"))
        .send()
        .await
        .unwrap();
    expect_error(r, 405, "METHOD_NOT_ALLOWED").await;
    // Malformed JSON, wrong content type, missing field, wrong type.
    let post = |body: &'static str, ct: &'static str| {
        s.client
            .post(s.url("/api/v1/projects"))
            .header("content-type", ct)
            .body(body)
            .send()
    };
    expect_error(
        post("{\"name\":", "application/json").await.unwrap(),
        400,
        "VALIDATION_ERROR",
    )
    .await;
    expect_error(
        post("{\"name\":\"x\"}", "text/plain").await.unwrap(),
        400,
        "VALIDATION_ERROR",
    )
    .await;
    expect_error(
        post("{}", "application/json").await.unwrap(),
        400,
        "VALIDATION_ERROR",
    )
    .await;
    expect_error(
        post("{\"name\":7}", "application/json").await.unwrap(),
        400,
        "VALIDATION_ERROR",
    )
    .await;
    // Names the domain refuses.
    let r = s.post_json("/api/v1/projects", json!({"name": "  "})).await;
    expect_error(r, 400, "VALIDATION_ERROR").await;
    // A body over the JSON limit.
    let big = "x".repeat(4096);
    let r = s
        .post_json("/api/v1/projects", json!({ "name": big }))
        .await;
    let v = expect_error(r, 413, "REQUEST_TOO_LARGE").await;
    assert_eq!(v["context"]["limit_bytes"], 1024);
    // Bad query parameters.
    expect_error(
        s.get("/api/v1/projects?limit=0").await,
        400,
        "VALIDATION_ERROR",
    )
    .await;
    expect_error(
        s.get("/api/v1/projects?limit=abc").await,
        400,
        "VALIDATION_ERROR",
    )
    .await;
    expect_error(
        s.get("/api/v1/projects?cursor=nope").await,
        400,
        "VALIDATION_ERROR",
    )
    .await;
    expect_error(
        s.get("/api/v1/events?stream=nope").await,
        400,
        "VALIDATION_ERROR",
    )
    .await;
    expect_error(
        s.get("/api/v1/events?after=-1").await,
        400,
        "VALIDATION_ERROR",
    )
    .await;
    // Ids that name nothing.
    expect_error(
        s.get("/api/v1/projects/prj_nope").await,
        404,
        "PROJECT_NOT_FOUND",
    )
    .await;
    expect_error(s.get("/api/v1/jobs/whatever").await, 404, "JOB_NOT_FOUND").await;
    let job = "job_0190f6c4e8a87c3b9d0e5f1a2b3c4d5e";
    expect_error(
        s.get(&format!("/api/v1/jobs/{job}")).await,
        404,
        "JOB_NOT_FOUND",
    )
    .await;
    let r = s
        .client
        .post(s.url(&format!("/api/v1/jobs/{job}/cancel")))
        .send()
        .await
        .unwrap();
    expect_error(r, 404, "JOB_NOT_FOUND").await;
}

#[tokio::test]
async fn htmx_requests_get_an_escaped_toast() {
    let s = Server::start().await;
    let r = s
        .client
        .get(s.url("/api/v1/projects/%3Cscript%3Ealert(1)%3C%2Fscript%3E"))
        .header("HX-Request", "true")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    let ct = r.headers()["content-type"].to_str().unwrap().to_string();
    assert!(ct.starts_with("text/html"), "{ct}");
    let html = r.text().await.unwrap();
    assert!(html.contains("PROJECT_NOT_FOUND"), "{html}");
    assert!(!html.contains("<script>"), "{html}");
    assert!(html.contains("&lt;script&gt;"), "{html}");
}

#[tokio::test]
async fn jobs_splits_and_their_errors() {
    // An LLM server that accepts connections and never answers keeps the generation job
    // active for as long as this test needs it (its request timeout is 120 s).
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let silent_url = format!("http://{}/v1", silent.local_addr().unwrap());
    let s = Server::start_with(
        Options::default()
            .env("TUNEWRIGHT_LLM_BASE_URL", &silent_url)
            .env("TUNEWRIGHT_LLM_MODEL", "m")
            .env("TUNEWRIGHT_LLM_API_KEY", "k"),
    )
    .await;
    let p = s.create_project("jobs").await;
    // Jobs the project's state refuses.
    let jobs_path = format!("/api/v1/projects/{p}/jobs");
    let submit = |kind: &'static str, config: serde_json::Value| {
        s.post_json(&jobs_path, json!({"kind": kind, "config": config}))
    };
    let tiny = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/tiny-llama");
    expect_error(
        submit("train", json!({"base_model": tiny})).await,
        400,
        "TRAINING_NO_DATASET",
    )
    .await;
    expect_error(
        submit("dataset_generate", json!({})).await,
        400,
        "DATASET_NO_DOCS",
    )
    .await;
    expect_error(submit("export", json!({})).await, 400, "EXPORT_NO_RUN").await;
    expect_error(submit("fly", json!({})).await, 400, "VALIDATION_ERROR").await;
    let r = s
        .post_json(
            &format!("/api/v1/projects/{p}/jobs"),
            json!({"kind": "train", "config": [1]}),
        )
        .await;
    expect_error(r, 400, "VALIDATION_ERROR").await;
    let r = s
        .post_json(
            "/api/v1/projects/prj_0190f6c4e8a87c3b9d0e5f1a2b3c4d5e/jobs",
            json!({"kind": "train"}),
        )
        .await;
    expect_error(r, 404, "PROJECT_NOT_FOUND").await;
    // A split needs a dataset.
    let r = s
        .post_json(
            &format!("/api/v1/projects/{p}/splits"),
            json!({"name": "main", "ratios": {"train": 0.8, "val": 0.2}}),
        )
        .await;
    expect_error(r, 422, "DATASET_NOT_IMPORTED").await;

    // A generation job over a document: active while its LLM call hangs.
    let r = s
        .upload(&p, "doc.md", b"# Title\n\nSome text.".to_vec())
        .await;
    assert_eq!(r.status(), 201);
    let file: serde_json::Value = r.json().await.unwrap();
    // A config with a misspelt field is refused at submission, naming the field.
    let bad = expect_error(
        submit("dataset_generate", json!({"model": "m"})).await,
        400,
        "VALIDATION_ERROR",
    )
    .await;
    assert!(bad["detail"].as_str().unwrap().contains("model"), "{bad}");
    let r = submit("dataset_generate", json!({"llm_model": "m"})).await;
    assert_eq!(r.status(), 201);
    let job: serde_json::Value = r.json().await.unwrap();
    let job_id = job["id"].as_str().unwrap().to_string();
    assert_eq!(job["kind"], "dataset_generate");
    assert_eq!(job["project_id"], p.as_str());
    assert_eq!(job["config"]["llm_model"], "m");
    assert!(job["attempts"].is_u64());
    assert!(["queued", "running", "retrying"].contains(&job["status"].as_str().unwrap()));
    // A second generation conflicts; the project now says generating.
    expect_error(submit("dataset_generate", json!({})).await, 409, "CONFLICT").await;
    let proj: serde_json::Value = s
        .get(&format!("/api/v1/projects/{p}"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(proj["status"], "generating");
    // While it is active, the documents and the project stay.
    let r = s
        .client
        .delete(s.url(&format!(
            "/api/v1/projects/{p}/files/{}",
            file["id"].as_str().unwrap()
        )))
        .send()
        .await
        .unwrap();
    expect_error(r, 409, "PROJECT_INVALID_STATUS").await;
    let r = s
        .client
        .delete(s.url(&format!("/api/v1/projects/{p}")))
        .send()
        .await
        .unwrap();
    expect_error(r, 409, "PROJECT_DELETE_RUNNING").await;
    // Listing, showing, analysis of a job that has not failed.
    let page: serde_json::Value = s
        .get(&format!("/api/v1/projects/{p}/jobs"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(page["items"][0]["id"], job_id.as_str());
    assert!(page["next"].is_null());
    let shown: serde_json::Value = s
        .get(&format!("/api/v1/jobs/{job_id}"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(shown["id"], job_id.as_str());
    expect_error(
        s.get(&format!("/api/v1/jobs/{job_id}/analysis")).await,
        404,
        "NOT_FOUND",
    )
    .await;
    let arts: serde_json::Value = s
        .get(&format!("/api/v1/jobs/{job_id}/artifacts"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(arts["items"], json!([]));
    // Cancel, then cancel again.
    let r = s
        .client
        .post(s.url(&format!("/api/v1/jobs/{job_id}/cancel")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let cancelled: serde_json::Value = r.json().await.unwrap();
    // A running attempt answers `cancelling` until its worker is gone.
    let mut status = cancelled["status"].as_str().unwrap_or_default().to_string();
    assert!(
        ["cancelled", "cancelling"].contains(&status.as_str()),
        "{cancelled}"
    );
    let t0 = std::time::Instant::now();
    while status == "cancelling" && t0.elapsed() < std::time::Duration::from_secs(30) {
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        let shown: serde_json::Value = s
            .get(&format!("/api/v1/jobs/{job_id}"))
            .await
            .json()
            .await
            .unwrap();
        status = shown["status"].as_str().unwrap_or_default().to_string();
    }
    assert_eq!(status, "cancelled");
    let r = s
        .client
        .post(s.url(&format!("/api/v1/jobs/{job_id}/cancel")))
        .send()
        .await
        .unwrap();
    expect_error(r, 409, "JOB_ALREADY_FINISHED").await;
    // Now the project can go.
    let r = s
        .client
        .delete(s.url(&format!("/api/v1/projects/{p}")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    assert!(!s.data_dir.join("projects").join(&p).exists());
}

#[tokio::test]
async fn a_token_guards_the_api() {
    let dir = tempfile::tempdir().unwrap();
    let token_file = dir.path().join("token");
    std::fs::write(&token_file, "s3cret-token\n").unwrap();
    let s = Server::start_with(
        Options::default().args(&["--token-file", token_file.to_str().unwrap()]),
    )
    .await;
    // Open: health, readiness, metrics.
    assert_eq!(s.get("/health").await.status(), 200);
    assert_eq!(s.get("/metrics").await.status(), 200);
    // Guarded: every /api route.
    let r = s.get("/api/v1/projects").await;
    assert_eq!(r.headers()["www-authenticate"], "Bearer");
    expect_error(r, 401, "UNAUTHORIZED").await;
    let r = s
        .client
        .get(s.url("/api/v1/projects"))
        .bearer_auth("wrong")
        .send()
        .await
        .unwrap();
    expect_error(r, 401, "UNAUTHORIZED").await;
    let r = s
        .client
        .post(s.url("/api/v1/projects"))
        .json(&json!({"name": "x"}))
        .send()
        .await
        .unwrap();
    expect_error(r, 401, "UNAUTHORIZED").await;
    let r = s
        .client
        .get(s.url("/api/v1/projects"))
        .bearer_auth("s3cret-token")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
}

#[tokio::test]
async fn refuses_a_public_address_without_a_token() {
    let out = std::process::Command::new(support::BIN)
        .args(["serve", "--listen", "0.0.0.0:0", "--data-dir"])
        .arg(tempfile::tempdir().unwrap().path())
        .env_remove("TUNEWRIGHT_TOKEN")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("UNAUTHORIZED"), "{err}");
}

#[tokio::test]
async fn hardware_answers_with_facts() {
    let s = Server::start().await;
    let r = s.get("/api/v1/hardware").await;
    let status = r.status().as_u16();
    let v: serde_json::Value = r.json().await.unwrap();
    if status == 200 {
        assert!(v["gpu_available"].is_boolean(), "{v}");
        assert!(v["devices"].is_array(), "{v}");
        if v["gpu_available"] == false {
            assert_eq!(v["error_code"], "GPU_NOT_AVAILABLE", "{v}");
        }
    } else {
        // The probe itself failed: the catalog code says so.
        assert_eq!(
            (status, v["error_code"].as_str()),
            (500, Some("GPU_PROBE_FAILED")),
            "{v}"
        );
    }
}

#[tokio::test]
async fn openapi_document_lists_every_route() {
    let s = Server::start().await;
    let doc: serde_json::Value = s.get("/api/v1/openapi.json").await.json().await.unwrap();
    let paths = doc["paths"].as_object().unwrap();
    for p in [
        "/health",
        "/ready",
        "/metrics",
        "/api/v1/projects",
        "/api/v1/projects/{id}",
        "/api/v1/projects/{id}/files",
        "/api/v1/projects/{id}/files/{file_id}",
        "/api/v1/projects/{id}/splits",
        "/api/v1/projects/{id}/jobs",
        "/api/v1/projects/{id}/evaluations",
        "/api/v1/jobs/{id}",
        "/api/v1/jobs/{id}/cancel",
        "/api/v1/jobs/{id}/analysis",
        "/api/v1/jobs/{id}/artifacts",
        "/api/v1/events",
        "/api/v1/events/stream",
        "/api/v1/hardware",
    ] {
        assert!(
            paths.contains_key(p),
            "{p} missing from the OpenAPI document"
        );
    }
}
