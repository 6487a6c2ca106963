//! `evaluate` jobs end to end (docs/jobs.md, "Evaluate"): a real `tunewright serve` trains the
//! tiny Llama fixture on CPU, then evaluates its checkpoints and final adapter in worker
//! processes, driven over HTTP.
//!
//! - The figures of an evaluation equal `tunewright_trainer::evaluate` run here on the same
//!   checkpoint and examples; its generations are an artifact whose sha256 is the file's; the
//!   project's evaluations are listed side by side (API and studio page).
//! - Doomed evaluations are refused at submission with their code and write nothing: an
//!   unknown field, a training that is not one of the project's, a checkpoint step never
//!   recorded, a checkpoint or final adapter whose files changed, a split that does not exist.
//!   One whose dataset file is gone fails as `EVALUATION_FAILED` after its retries.

mod support;
mod training;

use std::path::Path;

use serde_json::{json, Value};
use support::{expect_error, Options, Server};
use training::*;
use tunewright_schemas::config::TrainConfig;
use tunewright_trainer::evaluate::{evaluate, load_checkpoint_model, Device, EvalSpec};
use tunewright_trainer::train::setup::lora_settings;

fn opts(dir: &Path) -> Options {
    single_threaded(Options::default().data_dir(dir))
}

/// A project with the SFT fixture and a finished 6-step training checkpointed at steps 2
/// and 4; (project, training job).
async fn trained(s: &Server, name: &str) -> (String, String) {
    let p = project_with_dataset(s, name).await;
    let t = submit_train(s, &p, train_config(6, 2)).await;
    let done = finished(s, &t).await;
    assert_eq!(done["status"], "success", "{done}");
    assert_eq!(checkpoint_steps(&events(s, &t).await), vec![2, 4]);
    (p, t)
}

async fn submit_evaluate(s: &Server, project: &str, config: Value) -> reqwest::Response {
    s.post_json(
        &format!("/api/v1/projects/{project}/jobs"),
        json!({"kind": "evaluate", "config": config}),
    )
    .await
}

/// Submit an evaluation that must be admitted and succeed; the finished job.
async fn evaluated(s: &Server, project: &str, config: Value) -> Value {
    let r = submit_evaluate(s, project, config).await;
    let status = r.status();
    let v: Value = r.json().await.expect("job JSON");
    assert_eq!(status, 201, "{v}");
    let done = finished(s, v["id"].as_str().expect("job id")).await;
    assert_eq!(done["status"], "success", "{done}");
    done
}

/// Submit, expect `status`/`code`, and check that nothing was written.
async fn refused(s: &Server, project: &str, config: Value, status: u16, code: &str) -> Value {
    let before = footprint(s, project).await;
    let jobs_dir: Vec<_> = std::fs::read_dir(s.data_dir.join("jobs"))
        .map(|d| d.flatten().map(|e| e.file_name()).collect())
        .unwrap_or_default();
    let body = expect_error(submit_evaluate(s, project, config).await, status, code).await;
    assert_eq!(
        footprint(s, project).await,
        before,
        "a refused evaluation ({code}) wrote to the log: {body}"
    );
    let after: Vec<_> = std::fs::read_dir(s.data_dir.join("jobs"))
        .map(|d| d.flatten().map(|e| e.file_name()).collect())
        .unwrap_or_default();
    assert_eq!(
        after.len(),
        jobs_dir.len(),
        "a refused evaluation made a job directory"
    );
    body
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn evaluations_equal_the_trainers_and_are_listed_side_by_side() {
    let tmp = tempfile::tempdir().unwrap();
    let s = Server::start_with(opts(tmp.path())).await;
    let (p, t) = trained(&s, "evaluate").await;

    let two = evaluated(
        &s,
        &p,
        json!({"train_job": t, "checkpoint_step": 2, "max_examples": 24, "prompts": 2, "max_new_tokens": 8}),
    )
    .await;
    let four = evaluated(
        &s,
        &p,
        json!({"train_job": t, "checkpoint_step": 4, "max_examples": 24}),
    )
    .await;
    let last = evaluated(&s, &p, json!({"train_job": t, "max_examples": 24})).await;
    assert_eq!(last["config"]["checkpoint_step"], "final");

    // The same figures as the trainer's own evaluation of the checkpoint at step 2, here.
    let r2 = &two["result"];
    let train = TrainConfig::from_json(&train_config(6, 2)).unwrap();
    let spec = EvalSpec {
        model_dir: fixture("tiny-llama"),
        adapter_dir: None,
        data: fixture("sft-sample.jsonl"),
        max_examples: 24,
        max_seq_length: train.max_seq_length as usize,
        prompts: 2,
        max_new_tokens: 8,
    };
    let checkpoint = s.data_dir.join("jobs").join(&t).join("checkpoints/step-2");
    let model = load_checkpoint_model(
        &spec,
        &checkpoint,
        &lora_settings(&train),
        None,
        Device::Cpu,
    )
    .unwrap();
    let want = evaluate(&model, &spec).unwrap();
    assert_eq!(r2["examples"].as_u64(), Some(want.examples as u64), "{r2}");
    assert_eq!(
        r2["answer_tokens"].as_i64(),
        Some(want.answer_tokens),
        "{r2}"
    );
    let close = |got: &Value, want: f64| {
        got.as_f64()
            .is_some_and(|g| (g - want).abs() <= 1e-9 * want.abs().max(1.0))
    };
    assert!(close(&r2["loss"], want.loss), "{r2} vs {want:?}");
    assert!(
        close(&r2["perplexity"], want.perplexity),
        "{r2} vs {want:?}"
    );
    assert!(
        close(&r2["token_accuracy"], want.token_accuracy),
        "{r2} vs {want:?}"
    );
    assert_ne!(
        r2["loss"], four["result"]["loss"],
        "two checkpoints of a learning run score differently"
    );

    // The generations: an artifact, the file its sha256 names, one line per prompt.
    let g = &r2["generations"];
    let path = s.data_dir.join(g["path"].as_str().unwrap());
    let text = std::fs::read_to_string(&path).unwrap();
    let lines: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 2);
    for (line, want) in lines.iter().zip(&want.generations) {
        assert_eq!(line["output"], want.output.as_str());
        assert_eq!(line["reference"], want.reference.as_str());
    }
    assert_eq!(
        g["sha256"].as_str().unwrap(),
        tunewright_trainer::export::files::sha256_file(&path).unwrap()
    );
    let arts: Value = s
        .get(&format!(
            "/api/v1/jobs/{}/artifacts",
            two["id"].as_str().unwrap()
        ))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(arts["items"][0]["name"], "generations.jsonl", "{arts}");
    assert_eq!(arts["items"][0]["sha256"], g["sha256"]);

    // Side by side: one row per evaluation, oldest first.
    let r = s.get(&format!("/api/v1/projects/{p}/evaluations")).await;
    assert_eq!(r.status(), 200);
    let list: Value = r.json().await.unwrap();
    let rows = list["items"].as_array().unwrap();
    assert_eq!(rows.len(), 3, "{list}");
    let steps: Vec<Value> = rows.iter().map(|r| r["checkpoint_step"].clone()).collect();
    assert_eq!(steps, vec![json!(2), json!(4), Value::Null]);
    for (row, job) in rows.iter().zip([&two, &four, &last]) {
        assert_eq!(row["job_id"], job["id"]);
        assert_eq!(row["train_job"], t.as_str());
        assert_eq!(row["status"], "success");
        assert_eq!(row["loss"], job["result"]["loss"]);
        assert_eq!(row["token_accuracy"], job["result"]["token_accuracy"]);
        assert_eq!(row["examples"], 24);
        assert_eq!(row["split"], Value::Null);
    }

    // The studio's project page shows the same rows in a table with headers.
    let r = s
        .client
        .get(s.url(&format!("/projects/{p}")))
        .header("accept", "text/html")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let page = r.text().await.unwrap();
    assert!(
        page.contains(r#"<h2 id="evaluations-h">Evaluations</h2>"#),
        "{page}"
    );
    assert!(page.contains(r#"<th scope="col">Token accuracy</th>"#));
    assert!(page.contains("step 2") && page.contains("step 4") && page.contains(">final<"));
    let loss = format!("{:.4}", r2["loss"].as_f64().unwrap());
    assert!(page.contains(&loss), "the page shows the loss {loss}");

    // A split: its `val` part is scored.
    split_3_to_1(&s, &p).await;
    let v = evaluated(
        &s,
        &p,
        json!({"train_job": t, "split": "main", "max_examples": 100000}),
    )
    .await;
    let val = (273.0_f64 * 0.25).floor() as u64;
    assert_eq!(v["result"]["examples_available"], val, "{}", v["result"]);
    assert_eq!(v["result"]["split"], "main");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn doomed_evaluations_are_refused_at_the_door_and_write_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let s = Server::start_with(opts(tmp.path())).await;
    let (p, t) = trained(&s, "refusals").await;

    let b = refused(
        &s,
        &p,
        json!({"train_job": t, "temperature": 0.7}),
        400,
        "VALIDATION_ERROR",
    )
    .await;
    assert!(b["detail"].as_str().unwrap().contains("temperature"), "{b}");
    refused(
        &s,
        &p,
        json!({"train_job": t, "prompts": "two"}),
        400,
        "VALIDATION_ERROR",
    )
    .await;
    refused(&s, &p, json!({}), 400, "VALIDATION_ERROR").await;

    // A training that is not one of this project's.
    let other = s.create_project("other").await;
    refused(
        &s,
        &other,
        json!({"train_job": t}),
        400,
        "EVALUATION_NO_RUN",
    )
    .await;
    let b = refused(
        &s,
        &p,
        json!({"train_job": p.replace("prj_", "job_")}),
        400,
        "EVALUATION_NO_RUN",
    )
    .await;
    assert!(
        b["detail"].as_str().unwrap().contains("not a training"),
        "{b}"
    );

    // A step the training never checkpointed.
    let b = refused(
        &s,
        &p,
        json!({"train_job": t, "checkpoint_step": 3}),
        404,
        "CHECKPOINT_NOT_FOUND",
    )
    .await;
    assert!(b["detail"].as_str().unwrap().contains("step 3"), "{b}");
    assert!(
        b["detail"].as_str().unwrap().contains("recorded: 2, 4"),
        "{b}"
    );

    refused(
        &s,
        &p,
        json!({"train_job": t, "split": "nope"}),
        404,
        "SPLIT_NOT_FOUND",
    )
    .await;

    // A checkpoint whose weights changed since the training recorded them.
    let lora = s
        .data_dir
        .join("jobs")
        .join(&t)
        .join("checkpoints/step-4/lora.safetensors");
    let mut bytes = std::fs::read(&lora).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 0x01;
    std::fs::write(&lora, &bytes).unwrap();
    let b = refused(
        &s,
        &p,
        json!({"train_job": t, "checkpoint_step": 4}),
        404,
        "CHECKPOINT_NOT_FOUND",
    )
    .await;
    let detail = b["detail"].as_str().unwrap();
    assert!(detail.contains("fails its check"), "{b}");
    assert!(detail.contains("lora.safetensors"), "{b}");

    // The final adapter likewise.
    let adapter = training::adapter(&s.data_dir, &t);
    let path = s
        .data_dir
        .join("jobs")
        .join(&t)
        .join("adapter/adapter_model.safetensors");
    let mut changed = adapter.clone();
    let last = changed.len() - 1;
    changed[last] ^= 0x01;
    std::fs::write(&path, &changed).unwrap();
    let b = refused(&s, &p, json!({"train_job": t}), 404, "CHECKPOINT_NOT_FOUND").await;
    assert!(
        b["detail"]
            .as_str()
            .unwrap()
            .contains("final adapter fails its check"),
        "{b}"
    );
    // Put back, the same evaluation is admitted.
    std::fs::write(&path, &adapter).unwrap();
    evaluated(&s, &p, json!({"train_job": t, "max_examples": 2})).await;

    // What only the run can find: the dataset's file gone. EVALUATION_FAILED, retried by the
    // kind's policy, then failed, analysed in the evaluation phase.
    let datasets = s.data_dir.join("projects").join(&p).join("datasets");
    for f in std::fs::read_dir(&datasets).unwrap().flatten() {
        std::fs::remove_file(f.path()).unwrap();
    }
    let r = submit_evaluate(&s, &p, json!({"train_job": t})).await;
    assert_eq!(r.status(), 201);
    let id = r.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let done = finished(&s, &id).await;
    assert_eq!(done["status"], "failed", "{done}");
    assert_eq!(done["error"]["error_code"], "EVALUATION_FAILED", "{done}");
    assert_eq!(done["attempts"], 3, "two retries: {done}");
    let a: Value = s
        .get(&format!("/api/v1/jobs/{id}/analysis"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(a["error_phase"], "evaluation", "{a}");
    let rows: Value = s
        .get(&format!("/api/v1/projects/{p}/evaluations"))
        .await
        .json()
        .await
        .unwrap();
    let last = rows["items"].as_array().unwrap().last().unwrap().clone();
    assert_eq!(last["status"], "failed");
    assert_eq!(last["error_code"], "EVALUATION_FAILED");
    assert_eq!(last["loss"], Value::Null);
}

/// A training with a split trains on its `train` part and evaluates on its `val` part; an
/// evaluation of that run scores the same `val` part, so none of what it scores was trained on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_split_training_holds_its_val_part_out_and_the_evaluation_scores_it() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start_with(opts(dir.path())).await;
    let p = project_with_dataset(&s, "held-out").await;
    split_3_to_1(&s, &p).await;
    let mut cfg = train_config(4, 2);
    cfg["split"] = json!("main");
    cfg["eval_steps"] = json!(2);
    let t = submit_train(&s, &p, cfg).await;
    let done = finished(&s, &t).await;
    assert_eq!(done["status"], "success", "{done}");

    let job_dir = dir.path().join("jobs").join(&t);
    let lines = |path: &Path| -> Vec<String> {
        std::fs::read_to_string(path)
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
            .lines()
            .map(str::to_string)
            .collect()
    };
    let (train, val) = (
        lines(&job_dir.join("train-part.jsonl")),
        lines(&job_dir.join("val-part.jsonl")),
    );
    let n_val = (273.0_f64 * 0.25).floor() as usize;
    assert_eq!((train.len(), val.len()), (273 - n_val, n_val));
    assert!(
        val.iter().all(|l| !train.contains(l)),
        "the val part is held out"
    );
    let evs = events(&s, &t).await;
    let notes = of_type(&evs, "job_note");
    let preflight = notes
        .iter()
        .find(|n| n["data"]["topic"] == "preflight")
        .expect("a pre-flight note");
    let kept = preflight["data"]["data"]["examples_kept"].as_u64().unwrap();
    let dropped = preflight["data"]["data"]["dropped"]
        .as_object()
        .map(|d| d.values().filter_map(Value::as_u64).sum::<u64>())
        .unwrap_or(0);
    assert_eq!(kept + dropped, train.len() as u64, "{preflight}");
    assert!(
        notes.iter().any(|n| n["data"]["topic"] == "evaluation"),
        "the val part is evaluated during training: {notes:?}"
    );
    assert!(
        done["result"]["training"]["eval_loss"].is_f64(),
        "and at its end: {done}"
    );

    // The evaluation takes the run's split and scores exactly its val part.
    let e = evaluated(&s, &p, json!({"train_job": t, "max_examples": 100000})).await;
    assert_eq!(e["result"]["split"], "main");
    assert_eq!(e["result"]["examples_available"], n_val as u64);
    let scored = lines(
        &dir.path()
            .join("jobs")
            .join(e["id"].as_str().unwrap())
            .join("eval-examples.jsonl"),
    );
    assert_eq!(scored, val);
}

/// Split project `p`'s dataset as `main`: 3/4 train, 1/4 val, seed 3.
async fn split_3_to_1(s: &Server, p: &str) {
    let r = s
        .post_json(
            &format!("/api/v1/projects/{p}/splits"),
            json!({"name": "main", "ratios": {"train": 0.75, "val": 0.25}, "seed": 3}),
        )
        .await;
    assert_eq!(r.status(), 201, "{:?}", r.text().await);
}
