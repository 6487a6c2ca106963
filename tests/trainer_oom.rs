//! Out of memory during training, end to end on CPU, against a real `tunewright serve`.
//!
//! A CPU run of the tiny test model never runs out of memory, so the worker is started with
//! `TUNEWRIGHT_FAULT_OOM_AT_STEP` (see `tunewright_trainer::train::fault`): the forward pass of
//! that step asks libtorch for a tensor no machine can hold, libtorch's allocator refuses with
//! its own "not enough memory" error, and from there the failure takes the path of any OOM:
//! classification (`TRAINING_OOM`), the failure event, the analyzer's config-specific
//! suggestions, opt-in remediation. The service keeps serving throughout.

mod support;
mod training;

use serde_json::{json, Value};
use support::{Options, Server};
use training::*;
use tunewright_schemas::config::TrainConfig;

fn reason_has_frames(err: &Value) -> bool {
    err["context"]["reason"]
        .as_str()
        .is_some_and(|r| r.contains("frame #"))
}

/// The log's last sequence number (from `/ready`).
async fn last_seq(s: &Server) -> u64 {
    let v: Value = s.get("/ready").await.json().await.unwrap();
    v["last_seq"].as_u64().expect("last_seq")
}

fn with(mut config: Value, changes: &Value) -> Value {
    if let (Some(c), Some(ch)) = (config.as_object_mut(), changes.as_object()) {
        for (k, v) in ch {
            c.insert(k.clone(), v.clone());
        }
    }
    config
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_allocation_the_machine_cannot_give_ends_training_oom_and_the_service_keeps_serving() {
    let mut s = Server::start_with(
        single_threaded(Options::default()).env("TUNEWRIGHT_FAULT_OOM_AT_STEP", "3"),
    )
    .await;
    let p = project_with_dataset(&s, "oom").await;
    let mut config = train_config(8, 4);
    config["per_device_train_batch_size"] = json!(8);
    config["max_seq_length"] = json!(512);
    config["lora_r"] = json!(16);
    config["lora_alpha"] = json!(32.0);
    let id = submit_train(&s, &p, config.clone()).await;
    let done = finished(&s, &id).await;

    assert_eq!(done["status"], "failed", "{done}");
    let err = &done["error"];
    assert_eq!(err["error_code"], "TRAINING_OOM", "{err}");
    assert_eq!(err["context"]["phase"], "forward", "{err}");
    // The model's size and the memory levers, for "load_in_4bit would save X GiB".
    let c = &err["context"];
    assert_eq!(c["load_in_4bit"], false, "{err}");
    assert_eq!(c["gradient_checkpointing"], false, "{err}");
    let params = c["base_model_parameters"].as_u64().unwrap_or(0);
    assert!(params > 100_000, "{err}");
    // The tiny Llama trains in f32 on the CPU: 4 bytes a parameter, fewer in 4 bits.
    assert_eq!(c["base_weights_bytes"].as_u64(), Some(params * 4), "{err}");
    assert!(
        c["base_weights_bytes_4bit"].as_u64().unwrap_or(u64::MAX) < params * 4,
        "{err}"
    );
    assert!(
        !reason_has_frames(err),
        "no C++ stack trace in the message: {err}"
    );
    let reason = err["context"]["reason"].as_str().unwrap_or_default();
    assert!(
        reason.contains("DefaultCPUAllocator: can't allocate memory")
            || reason.contains("DefaultCPUAllocator: not enough memory"),
        "libtorch's allocator message: {reason}"
    );
    assert_eq!(done["attempts"], 1, "an OOM is not retried as is: {done}");
    // Progress stopped before the step that could not allocate.
    assert!(
        done["progress"]["step"].as_u64().unwrap_or(0) <= 2,
        "{done}"
    );

    // The analysis, with suggestions computed from this job's config.
    let r = s.get(&format!("/api/v1/jobs/{id}/analysis")).await;
    assert_eq!(r.status(), 200);
    let a: Value = r.json().await.unwrap();
    assert_eq!(a["error_code"], "TRAINING_OOM", "{a}");
    assert_eq!(a["confidence"], "high", "{a}");
    let suggestions = a["suggestions"].as_array().cloned().unwrap_or_default();
    let changes: Vec<&Value> = suggestions.iter().map(|s| &s["config_changes"]).collect();
    assert!(
        changes.contains(
            &&json!({"per_device_train_batch_size": 4, "gradient_accumulation_steps": 4})
        ),
        "half the micro-batch, double the accumulation (same effective batch 16): {a}"
    );
    assert!(changes.contains(&&json!({"max_seq_length": 256})), "{a}");
    assert!(changes.contains(&&json!({"lora_r": 8})), "{a}");
    assert!(changes.contains(&&json!({"load_in_4bit": true})), "{a}");
    assert!(
        changes.contains(&&json!({"gradient_checkpointing": true})),
        "{a}"
    );
    // Every suggested change applies to this job: the config it gives is a valid train config.
    for c in &changes {
        let next = with(config.clone(), c);
        assert!(
            TrainConfig::from_json(&next).is_ok(),
            "suggestion {c} gives an invalid config: {a}"
        );
    }
    // The same analysis is in the failure event.
    assert_eq!(err["analysis"]["error_code"], "TRAINING_OOM", "{err}");

    // The service keeps serving: health, a new project, and a training that fits.
    assert_eq!(s.get("/health").await.status(), 200);
    assert_eq!(s.get("/ready").await.status(), 200);
    let q = project_with_dataset(&s, "after-oom").await;
    let ok = submit_train(&s, &q, train_config(2, 4)).await;
    let done_ok = finished(&s, &ok).await;
    assert_eq!(done_ok["status"], "success", "{done_ok}");

    // The replay tool's story of the failed job: its attempt and the failure with its code.
    let (ok, table) = replay_list(&s.data_dir, &id, &[]);
    assert!(ok, "{table}");
    eprintln!("{table}");
    assert_eq!(rows(&table, "job_attempt_started").len(), 1, "{table}");
    let failed = rows(&table, "job_attempt_failed");
    assert_eq!(failed.len(), 1, "{table}");
    assert!(
        failed[0]
            .contains("attempt 1 failed (no retry): TRAINING_OOM: Out of memory during forward"),
        "{table}"
    );
    assert!(failed[0].contains("| analysis: "), "{table}");
    assert!(
        failed[0].contains(r#"{"gradient_accumulation_steps":4,"per_device_train_batch_size":4}"#),
        "{table}"
    );
    let final_row = rows(&table, "job_failed");
    assert_eq!(final_row.len(), 1, "{table}");
    assert!(final_row[0].contains("TRAINING_OOM"), "{table}");
    let evs = replay_events(&s.data_dir, &id);
    let f = &of_type(&evs, "job_failed")[0]["data"]["failure"];
    assert_eq!(f["error_code"], "TRAINING_OOM");
    assert!(
        !f["analysis"]["suggestions"]
            .as_array()
            .map(Vec::is_empty)
            .unwrap_or(true),
        "{f}"
    );

    s.signal("TERM");
    assert!(s.wait_exit().success());
    let (ok, text) = support::replay_verify(&s.data_dir);
    assert!(ok, "{text}");
}

/// Opt-in OOM remediation: the run that ran out of memory at step 6 is resumed from its
/// checkpoint at step 4 with half the micro-batch and double the accumulation, and succeeds.
/// `replay list --stream JOB` tells that whole story: the attempt, the OOM with its code and
/// the remedy, the checkpoints, the resume and the success.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oom_remediation_resumes_from_the_last_checkpoint_with_half_the_micro_batch() {
    let mut s = Server::start_with(
        single_threaded(Options::default()).env("TUNEWRIGHT_FAULT_OOM_AT_STEP", "6"),
    )
    .await;
    let p = project_with_dataset(&s, "remedy").await;
    let mut config = train_config(12, 4);
    config["remediate_oom"] = json!(true);
    let id = submit_train(&s, &p, config).await;
    let done = finished(&s, &id).await;
    assert_eq!(done["status"], "success", "{done}");
    assert_eq!(done["resumed_from_step"], 4, "{done}");
    assert_eq!(done["attempts"], 1, "{done}");

    let (ok, table) = replay_list(&s.data_dir, &id, &[]);
    assert!(ok, "{table}");
    eprintln!("{table}");
    assert_eq!(rows(&table, "job_attempt_started").len(), 1, "{table}");
    let remedied = rows(&table, "training_remediated");
    assert_eq!(remedied.len(), 1, "{table}");
    assert!(remedied[0].contains("TRAINING_OOM"), "{table}");
    let evs = replay_events(&s.data_dir, &id);
    let r = &of_type(&evs, "training_remediated")[0]["data"];
    assert_eq!(r["cause"], "TRAINING_OOM", "{r}");
    assert_eq!(
        r["config_changes"],
        json!({"per_device_train_batch_size": 1, "gradient_accumulation_steps": 4}),
        "{r}"
    );
    let steps = checkpoint_steps(&evs);
    assert_eq!(steps.first(), Some(&4), "{steps:?}");
    assert!(steps.contains(&8), "{steps:?}");
    let resumed = rows(&table, "training_resumed");
    assert_eq!(resumed.len(), 1, "{table}");
    assert!(resumed[0].contains("resumed from step 4"), "{table}");
    assert_eq!(rows(&table, "job_succeeded").len(), 1, "{table}");
    let pos = |t: &str| row_position(&table, t);
    assert!(
        pos("checkpoint_saved") < pos("training_remediated"),
        "{table}"
    );
    assert!(
        pos("training_remediated") < pos("training_resumed"),
        "{table}"
    );
    assert!(pos("training_resumed") < pos("job_succeeded"), "{table}");

    s.signal("TERM");
    assert!(s.wait_exit().success());
}

/// A remedy outlives the process that applied it: when the service is SIGKILLed after an OOM
/// remediation and restarted, the job resumes with the remediated config (the one its later
/// checkpoints were written with), so it ends with the adapter of a run that was never
/// interrupted, bit for bit.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_remedy_survives_a_service_restart() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().to_path_buf();
    let opts = || {
        single_threaded(Options::default().data_dir(&dir)).env("TUNEWRIGHT_FAULT_OOM_AT_STEP", "6")
    };
    let mut s = Server::start_with(opts()).await;
    let p = project_with_dataset(&s, "remedy-restart").await;
    let mut config = train_config(24, 4);
    config["remediate_oom"] = json!(true);

    let plain = submit_train(&s, &p, config.clone()).await;
    let done = finished(&s, &plain).await;
    assert_eq!(done["status"], "success", "{done}");
    let expected = adapter(&dir, &plain);

    let id = submit_train(&s, &p, config).await;
    // Kill the service once the remediated run has recorded a checkpoint of its own.
    let mut worker = None;
    for _ in 0..6000 {
        let evs = events(&s, &id).await;
        if !of_type(&evs, "training_remediated").is_empty()
            && checkpoint_steps(&evs).iter().any(|s| *s >= 8)
        {
            let j = job(&s, &id).await;
            assert_eq!(j["status"], "running", "the run ended too soon: {j}");
            if let [pid] = worker_pids(&id)[..] {
                worker = Some(pid);
                break;
            }
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    let worker = worker.expect("the remediated run was seen after a checkpoint");
    s.kill_hard();
    assert!(gone(worker).await, "the worker outlived its service");

    let mut s2 = Server::start_with(opts()).await;
    let done = finished(&s2, &id).await;
    assert_eq!(done["status"], "success", "{done}");
    assert!(
        done["resumed_from_step"].as_u64().unwrap_or(0) >= 8,
        "{done}"
    );
    assert_eq!(done["attempts"], 2, "{done}");
    // The attempt after the restart ran with the remedy (its worker spec says so).
    let spec: Value = serde_json::from_slice(
        &std::fs::read(dir.join(format!("jobs/{id}/worker-2-1.json"))).unwrap(),
    )
    .unwrap();
    assert_eq!(spec["config"]["per_device_train_batch_size"], 1, "{spec}");
    assert_eq!(spec["config"]["gradient_accumulation_steps"], 4, "{spec}");
    assert_eq!(
        adapter(&dir, &id),
        expected,
        "the same adapter as the run that was not interrupted"
    );
    s2.signal("TERM");
    assert!(s2.wait_exit().success());
}

/// The failed run continued by hand (`POST /api/v1/jobs/{id}/resume`): a new training linked
/// to it, from its checkpoint, with the analysis's first suggestion applied, succeeds; a change
/// a checkpoint cannot carry starts from step 0; what cannot be resumed is refused with its
/// code and writes nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_training_is_resumed_as_a_linked_job_with_a_suggestion_applied() {
    let mut s = Server::start_with(
        single_threaded(Options::default()).env("TUNEWRIGHT_FAULT_OOM_AT_STEP", "6"),
    )
    .await;
    let p = project_with_dataset(&s, "resume").await;
    let id = submit_train(&s, &p, train_config(12, 4)).await;
    let failed = finished(&s, &id).await;
    assert_eq!(failed["error"]["error_code"], "TRAINING_OOM", "{failed}");
    let a: Value = s
        .get(&format!("/api/v1/jobs/{id}/analysis"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(a["job_id"], id.as_str(), "{a}");
    let first = a["suggestions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["config_changes"].clone())
        .find(|c| c.get("per_device_train_batch_size").is_some())
        .expect("a smaller micro-batch is suggested");
    assert_eq!(
        first,
        json!({"per_device_train_batch_size": 1, "gradient_accumulation_steps": 4}),
        "{a}"
    );
    let resume = |body: Value| {
        let url = format!("/api/v1/jobs/{id}/resume");
        let s = &s;
        async move { s.post_json(&url, body).await }
    };

    // What cannot be resumed: refused, nothing written.
    let before = last_seq(&s).await;
    support::expect_error(
        resume(json!({"from_step": 3})).await,
        404,
        "CHECKPOINT_NOT_FOUND",
    )
    .await;
    support::expect_error(
        resume(json!({"config_changes": {"lora_r": 0}})).await,
        400,
        "VALIDATION_ERROR",
    )
    .await;
    support::expect_error(
        resume(json!({"config_changes": [1]})).await,
        400,
        "VALIDATION_ERROR",
    )
    .await;
    let r = s
        .post_json(
            "/api/v1/jobs/job_0190f6c4e8a87c3b9d0e5f1a2b3c4d5e/resume",
            json!({}),
        )
        .await;
    support::expect_error(r, 404, "JOB_NOT_FOUND").await;
    assert_eq!(last_seq(&s).await, before, "refused resumes wrote nothing");

    // From the checkpoint at step 4, with the suggestion applied.
    let r = resume(json!({"from_step": 4, "config_changes": first})).await;
    assert_eq!(r.status(), 201);
    let next: Value = r.json().await.unwrap();
    let next_id = next["id"].as_str().unwrap().to_string();
    assert_eq!(next["resumed_from_job"], id.as_str(), "{next}");
    assert_eq!(next["resume_from_step"], 4, "{next}");
    assert_eq!(next["config"]["per_device_train_batch_size"], 1, "{next}");
    let done = finished(&s, &next_id).await;
    assert_eq!(done["status"], "success", "{done}");
    assert_eq!(
        done["resumed_from_step"], 4,
        "it started from the checkpoint: {done}"
    );
    let evs = events(&s, &next_id).await;
    assert_eq!(of_type(&evs, "resume_linked").len(), 1);
    assert!(
        checkpoint_steps(&evs).iter().all(|step| *step > 4),
        "its own checkpoints come after step 4: {evs:?}"
    );
    let old = job(&s, &id).await;
    assert_eq!(old["resumed_by_jobs"], json!([next_id]), "{old}");
    // A finished run is not resumed.
    let r = s
        .post_json(&format!("/api/v1/jobs/{next_id}/resume"), json!({}))
        .await;
    support::expect_error(r, 409, "CONFLICT").await;

    // A change of the adapter's shape starts from step 0, and the job says so.
    let r = resume(json!({"config_changes": {"lora_r": 4}, "from_step": 4})).await;
    assert_eq!(r.status(), 201);
    let fresh: Value = r.json().await.unwrap();
    assert_eq!(fresh["resume_from_step"], Value::Null, "{fresh}");
    let fresh_id = fresh["id"].as_str().unwrap().to_string();
    let done = finished(&s, &fresh_id).await;
    // It really started from step 0: only a run that did not resume meets the injected fault.
    assert_eq!(done["error"]["error_code"], "TRAINING_OOM", "{done}");
    assert_eq!(done["resumed_from_step"], Value::Null, "{done}");

    s.signal("TERM");
    assert!(s.wait_exit().success());
    let (ok, text) = support::replay_verify(&s.data_dir);
    assert!(ok, "{text}");
}
