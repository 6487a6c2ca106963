//! Helpers for end-to-end training tests against a real `tunewright serve` (see
//! `support::Server`): a project with the bundled SFT dataset, `train` jobs on the tiny Llama
//! fixture, polling a job over HTTP, the worker processes of a job, adapters on disk and the
//! replay tool's view of a job.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::{json, Value};

use crate::support::{Options, Server};

pub fn fixture(p: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(p)
}

/// Workers with one OpenMP/intra-op thread: the tests run two trainings at once on CI's two
/// cores, and libtorch's spinning thread pools thrash when oversubscribed. (Results are bit
/// for bit comparable within one setting, which is all the tests compare.)
pub fn single_threaded(o: Options) -> Options {
    o.env("OMP_NUM_THREADS", "1").env("MKL_NUM_THREADS", "1")
}

/// A CPU training config on the tiny Llama: `max_steps` optimizer steps of 2 x 2 examples,
/// a checkpoint every `checkpoint_every` steps, progress at every step, a fixed seed.
pub fn train_config(max_steps: u64, checkpoint_every: u64) -> Value {
    json!({
        "base_model": fixture("tiny-llama").to_string_lossy(),
        "device": "cpu",
        "max_steps": max_steps,
        "per_device_train_batch_size": 2,
        "gradient_accumulation_steps": 2,
        "max_seq_length": 64,
        "learning_rate": 1e-3,
        "checkpoint_every_steps": checkpoint_every,
        "keep_checkpoints": 3,
        "logging_steps": 1,
        "seed": 7,
    })
}

/// Create a project and upload `tests/fixtures/sft-sample.jsonl` as its dataset (HTTP only).
pub async fn project_with_dataset(s: &Server, name: &str) -> String {
    let p = s.create_project(name).await;
    let data = std::fs::read(fixture("sft-sample.jsonl")).expect("the SFT fixture");
    let r = s
        .client
        .post(s.url(&format!("/api/v1/projects/{p}/dataset")))
        .header("content-type", "application/jsonl")
        .body(data)
        .send()
        .await
        .expect("dataset upload");
    assert_eq!(r.status(), 201, "dataset upload: {:?}", r.text().await);
    p
}

/// The log's last sequence number and the project's job count: what a refused submission
/// must leave as it was.
pub async fn footprint(s: &Server, project: &str) -> (u64, usize) {
    let h: Value = s.get("/ready").await.json().await.expect("ready JSON");
    let jobs: Value = s
        .get(&format!("/api/v1/projects/{project}/jobs"))
        .await
        .json()
        .await
        .expect("jobs JSON");
    (
        h["last_seq"].as_u64().expect("last_seq"),
        jobs["items"].as_array().map(Vec::len).unwrap_or(0),
    )
}

/// Submit a `train` job; its id.
pub async fn submit_train(s: &Server, project: &str, config: Value) -> String {
    let r = s
        .post_json(
            &format!("/api/v1/projects/{project}/jobs"),
            json!({"kind": "train", "config": config}),
        )
        .await;
    let status = r.status();
    let v: Value = r.json().await.expect("job JSON");
    assert_eq!(status, 201, "{v}");
    v["id"].as_str().expect("job id").to_string()
}

pub async fn job(s: &Server, id: &str) -> Value {
    let r = s.get(&format!("/api/v1/jobs/{id}")).await;
    assert_eq!(r.status(), 200);
    r.json().await.expect("job JSON")
}

pub fn is_terminal(job: &Value) -> bool {
    matches!(
        job["status"].as_str(),
        Some("success" | "failed" | "cancelled")
    )
}

/// Poll the job until it ends (bounded: a stuck job fails the test, it never hangs it).
pub async fn finished(s: &Server, id: &str) -> Value {
    for _ in 0..6000 {
        let j = job(s, id).await;
        if is_terminal(&j) {
            return j;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("job {id} never finished: {}", job(s, id).await);
}

/// The job's events as the API serves them (`type`, `data`, ...).
pub async fn events(s: &Server, id: &str) -> Vec<Value> {
    let mut out = Vec::new();
    let mut after = 0;
    loop {
        let r = s
            .get(&format!(
                "/api/v1/events?stream={id}&after={after}&limit=1000"
            ))
            .await;
        assert_eq!(r.status(), 200);
        let v: Value = r.json().await.expect("events JSON");
        out.extend(v["items"].as_array().cloned().unwrap_or_default());
        match v["next"].as_u64() {
            Some(n) => after = n,
            None => return out,
        }
    }
}

pub fn of_type<'a>(events: &'a [Value], t: &str) -> Vec<&'a Value> {
    events.iter().filter(|e| e["type"] == t).collect()
}

/// Steps of the job's `checkpoint_saved` events, in order.
pub fn checkpoint_steps(events: &[Value]) -> Vec<u64> {
    of_type(events, "checkpoint_saved")
        .iter()
        .filter_map(|e| e["data"]["step"].as_u64())
        .collect()
}

/// Pids of live `tunewright-worker train` processes for job `id` (its spec path names it).
pub fn worker_pids(id: &str) -> Vec<i32> {
    let mut out = Vec::new();
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return out;
    };
    for entry in dir.flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        let Ok(cmd) = std::fs::read(entry.path().join("cmdline")) else {
            continue;
        };
        let cmd = String::from_utf8_lossy(&cmd);
        if cmd.contains("tunewright-worker\0train\0") && cmd.contains(id) && alive(pid) {
            out.push(pid);
        }
    }
    out
}

/// Whether `pid` is a live process (a zombie waiting for its reaper counts as dead).
pub fn alive(pid: i32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        // "pid (comm) S ...": the state follows the last ')'.
        Ok(stat) => stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().next())
            .is_some_and(|state| state != "Z" && state != "X"),
        Err(_) => false,
    }
}

/// Wait (bounded) until `pid` is gone; whether it went.
pub async fn gone(pid: i32) -> bool {
    for _ in 0..1500 {
        if !alive(pid) {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    false
}

/// The final PEFT adapter weights of job `id`.
pub fn adapter(data_dir: &Path, id: &str) -> Vec<u8> {
    let p = data_dir
        .join("jobs")
        .join(id)
        .join("adapter/adapter_model.safetensors");
    std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

/// `tunewright replay --data-dir DIR list --stream ID [extra]`: (success, stdout + stderr).
pub fn replay_list(data_dir: &Path, stream: &str, extra: &[&str]) -> (bool, String) {
    let mut args = vec!["list", "--stream", stream];
    args.extend_from_slice(extra);
    crate::support::replay(data_dir, &args)
}

/// `replay list --stream ID --json`, parsed: one object per event.
pub fn replay_events(data_dir: &Path, stream: &str) -> Vec<Value> {
    let (ok, text) = replay_list(data_dir, stream, &["--json"]);
    assert!(ok, "{text}");
    text.lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .collect()
}

/// The rows of the replay table whose TYPE column is `t`.
/// The line number of the first row of event type `t` in a `replay list` table (MAX if none).
pub fn row_position(table: &str, t: &str) -> usize {
    table
        .lines()
        .position(|l| l.split_whitespace().nth(3) == Some(t))
        .unwrap_or(usize::MAX)
}

pub fn rows<'a>(table: &'a str, t: &str) -> Vec<&'a str> {
    table
        .lines()
        .filter(|l| l.split_whitespace().nth(3) == Some(t))
        .collect()
}
