//! Restart-on-fault of the whole service, end to end: a real `tunewright serve` trains the
//! tiny Llama fixture on CPU, driven over HTTP only.
//!
//! - kill -9 of the service mid-run: its worker dies with it, a restart on the same data dir
//!   resumes the job from its last recorded checkpoint, and the final adapter equals an
//!   uninterrupted run's bit for bit; `replay list --stream JOB` tells the story.
//! - SIGTERM mid-run: the service checkpoints the running job at the step it stopped at and
//!   exits 0; after a restart the job resumes from exactly that step, loses nothing, and ends
//!   with the uninterrupted run's adapter.
//! - A worker whose service is gone (stdin closed, or for a cluster worker its control file's
//!   lease lapsed) exits at once without writing anything.
//! - A `--worker-bin` that is not there fails the training with its path in the record.

mod support;
mod training;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

use serde_json::{json, Value};
use support::{Options, Server, WORKER_BIN};
use training::*;

/// A server on `dir`; its workers use one intra-op thread (see `training::single_threaded`).
fn opts(dir: &std::path::Path) -> Options {
    single_threaded(Options::default().data_dir(dir))
}

/// Wait (bounded) until the job has recorded a checkpoint while its worker still runs; the
/// worker's pid. Panics if the run ends first (it has many steps left after its first
/// checkpoint, so that means the test's margins are wrong, not that resume is).
async fn worker_after_first_checkpoint(s: &Server, id: &str) -> i32 {
    for _ in 0..6000 {
        let evs = events(s, id).await;
        if !checkpoint_steps(&evs).is_empty() {
            let pids = worker_pids(id);
            let j = job(s, id).await;
            assert_eq!(
                j["status"], "running",
                "the run ended before it could be interrupted: {j}"
            );
            if let [pid] = pids[..] {
                return pid;
            }
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("job {id} recorded no checkpoint: {}", job(s, id).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_of_the_whole_service_mid_training_resumes_after_restart_bit_for_bit() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().to_path_buf();
    let mut s = Server::start_with(opts(&dir)).await;
    let p = project_with_dataset(&s, "resume").await;
    let config = train_config(40, 4);

    // The uninterrupted run.
    let plain = submit_train(&s, &p, config.clone()).await;
    let done = finished(&s, &plain).await;
    assert_eq!(done["status"], "success", "{done}");
    assert_eq!(done["resumed_from_step"], Value::Null);
    let expected = adapter(&dir, &plain);

    // The same run; the whole service is SIGKILLed once a checkpoint is recorded.
    let id = submit_train(&s, &p, config.clone()).await;
    let worker = worker_after_first_checkpoint(&s, &id).await;
    s.kill_hard();
    assert!(
        gone(worker).await,
        "the worker {worker} outlived its SIGKILLed service"
    );
    assert!(worker_pids(&id).is_empty());

    // What the log holds now (read-only; the replay tool recovers a crashed log on a copy).
    let before = replay_events(&dir, &id);
    let last_checkpoint = *checkpoint_steps(&before)
        .last()
        .expect("a recorded checkpoint");
    assert!(
        last_checkpoint >= 4 && last_checkpoint.is_multiple_of(4) && last_checkpoint < 40,
        "{last_checkpoint}"
    );
    assert!(of_type(&before, "job_succeeded").is_empty());
    // The orphan wrote nothing after its service died: the recorded checkpoint is intact.
    assert!(dir
        .join(format!("jobs/{id}/checkpoints/step-{last_checkpoint}"))
        .is_dir());

    // Restart on the same data dir: the job resumes and ends in success.
    let mut s2 = Server::start_with(opts(&dir)).await;
    let done = finished(&s2, &id).await;
    assert_eq!(done["status"], "success", "{done}");
    assert_eq!(done["resumed_from_step"], json!(last_checkpoint), "{done}");
    assert_eq!(done["attempts"], 2, "{done}");
    assert_eq!(done["interruptions"], 1, "{done}");
    let evs = events(&s2, &id).await;
    let resumed = of_type(&evs, "training_resumed");
    assert_eq!(resumed.len(), 1, "{evs:?}");
    assert_eq!(resumed[0]["data"]["resumed_from_step"], last_checkpoint);
    assert_eq!(resumed[0]["data"]["attempt"], 2);
    assert_eq!(
        adapter(&dir, &id),
        expected,
        "the resumed run's adapter equals the uninterrupted run's bit for bit"
    );

    // The replay tool tells the whole story of the job.
    let (ok, table) = replay_list(&dir, &id, &[]);
    assert!(ok, "{table}");
    eprintln!("{table}");
    let attempts = rows(&table, "job_attempt_started");
    assert_eq!(attempts.len(), 2, "{table}");
    assert!(attempts[0].contains("attempt 1 started"), "{table}");
    assert!(attempts[1].contains("attempt 2 started"), "{table}");
    let checkpoints = rows(&table, "checkpoint_saved");
    assert!(
        checkpoints.iter().any(|r| r.contains(&format!(
            "step {last_checkpoint} saved in jobs/{id}/checkpoints/step-{last_checkpoint}"
        ))),
        "{table}"
    );
    assert!(
        checkpoints.len() > checkpoint_steps(&before).len(),
        "{table}"
    );
    let interrupted = rows(&table, "job_interrupted");
    assert_eq!(interrupted.len(), 1, "{table}");
    assert!(
        interrupted[0].contains("attempt 1 interrupted: the process running the job stopped"),
        "{table}"
    );
    let resumed = rows(&table, "training_resumed");
    assert_eq!(resumed.len(), 1, "{table}");
    assert!(
        resumed[0].contains(&format!("attempt 2 resumed from step {last_checkpoint}")),
        "{table}"
    );
    assert_eq!(rows(&table, "job_succeeded").len(), 1, "{table}");
    // In order: attempt 1, checkpoints, the interruption, attempt 2, the resume, success.
    let pos = |t: &str| row_position(&table, t);
    assert!(pos("checkpoint_saved") < pos("job_interrupted"), "{table}");
    assert!(pos("job_interrupted") < pos("training_resumed"), "{table}");
    assert!(pos("training_resumed") < pos("job_succeeded"), "{table}");

    s2.signal("TERM");
    assert!(s2.wait_exit().success());
    let (ok, text) = support::replay_verify(&dir);
    assert!(ok, "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_checkpoints_the_running_job_which_resumes_at_that_step_after_restart() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().to_path_buf();
    let mut s = Server::start_with(opts(&dir).args(&["--drain-secs", "0"])).await;
    let p = project_with_dataset(&s, "graceful").await;
    // No periodic checkpoint: the only one is the one written at the stop.
    let config = train_config(40, 1000);

    let plain = submit_train(&s, &p, config.clone()).await;
    let done = finished(&s, &plain).await;
    assert_eq!(done["status"], "success", "{done}");
    let expected = adapter(&dir, &plain);

    let id = submit_train(&s, &p, config.clone()).await;
    // Stop once training is under way.
    for i in 0.. {
        let j = job(&s, &id).await;
        assert!(j["status"] == "running" || j["status"] == "queued", "{j}");
        if j["progress"]["step"].as_u64().is_some_and(|step| step >= 1) {
            break;
        }
        assert!(i < 6000, "no progress: {j}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let worker = worker_pids(&id);
    assert_eq!(worker.len(), 1);
    s.signal("TERM");
    let status = s.wait_exit();
    assert!(status.success(), "exit status {status:?}");
    // The worker ended with the clean stop; nothing is left running.
    assert!(!alive(worker[0]));

    // The log: a checkpoint at the step the worker stopped at, and the stop recorded.
    let before = replay_events(&dir, &id);
    let steps = checkpoint_steps(&before);
    assert_eq!(
        steps.len(),
        1,
        "one checkpoint, written at the stop: {steps:?}"
    );
    let stopped_at = steps[0];
    assert!((1..40).contains(&stopped_at), "{stopped_at}");
    let notes: Vec<&Value> = of_type(&before, "job_note")
        .into_iter()
        .filter(|e| e["data"]["topic"] == "stopped_for_shutdown")
        .collect();
    assert_eq!(notes.len(), 1, "{before:?}");
    let note = &notes[0]["data"]["data"];
    assert_eq!(note["step"], stopped_at, "{note}");
    assert_eq!(note["checkpointed"], true, "{note}");
    assert_eq!(
        note["last_step"], stopped_at,
        "no step past the checkpoint: {note}"
    );
    let last_progress = of_type(&before, "job_progress")
        .iter()
        .filter_map(|e| e["data"]["step"].as_u64())
        .max()
        .unwrap_or(0);
    assert!(
        last_progress <= stopped_at,
        "{last_progress} > {stopped_at}"
    );
    assert!(of_type(&before, "job_failed").is_empty());
    assert!(of_type(&before, "job_attempt_failed").is_empty());

    // After the restart it resumes from exactly that step and ends like the uninterrupted run.
    let mut s2 = Server::start_with(opts(&dir).args(&["--drain-secs", "0"])).await;
    let done = finished(&s2, &id).await;
    assert_eq!(done["status"], "success", "{done}");
    assert_eq!(done["resumed_from_step"], json!(stopped_at), "{done}");
    assert_eq!(done["attempts"], 2, "{done}");
    assert_eq!(
        adapter(&dir, &id),
        expected,
        "no step lost or repeated: the adapter equals the uninterrupted run's"
    );
    let (ok, table) = replay_list(&dir, &id, &[]);
    assert!(ok, "{table}");
    eprintln!("{table}");
    assert!(
        rows(&table, "job_note")
            .iter()
            .any(|r| r.contains(&format!(
                r#"stopped_for_shutdown: {{"checkpointed":true,"last_step":{stopped_at},"step":{stopped_at}}}"#
            ))),
        "{table}"
    );
    assert!(
        rows(&table, "training_resumed")
            .iter()
            .any(|r| r.contains(&format!("attempt 2 resumed from step {stopped_at}"))),
        "{table}"
    );
    s2.signal("TERM");
    assert!(s2.wait_exit().success());
    let (ok, text) = support::replay_verify(&dir);
    assert!(ok, "{text}");
}

/// The spec of a 400-step run for a worker started by hand in `dir` (checkpoints every 2 steps,
/// 3 kept); its path.
fn long_run_spec(dir: &std::path::Path, job_id: &str) -> std::path::PathBuf {
    let spec = json!({
        "job_id": job_id,
        "config": train_config(400, 2),
        "dataset_path": fixture("sft-sample.jsonl").to_string_lossy(),
        "checkpoint_root": dir.join("checkpoints").to_string_lossy(),
        "output_dir": dir.join("adapter").to_string_lossy(),
        "resume_from": null,
        "checkpoint_every_steps": 2,
        "keep_checkpoints": 3,
    });
    let spec_path = dir.join("spec.json");
    std::fs::write(&spec_path, serde_json::to_vec(&spec).unwrap()).unwrap();
    spec_path
}

/// The worker run directly, as the trainer actor runs it: when its stdin closes (the service
/// is gone) it exits at once with status 4 and writes no further checkpoint, so it can never
/// prune a recorded checkpoint out from under a restarted service.
#[test]
fn a_worker_whose_service_is_gone_exits_without_writing() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let spec_path = long_run_spec(dir, "job_orphan");
    let mut child = Command::new(WORKER_BIN)
        .args(["train", "--spec"])
        .arg(&spec_path)
        .env("OMP_NUM_THREADS", "1")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take();
    let stdout = BufReader::new(child.stdout.take().unwrap());
    let mut reported = Vec::new();
    let mut stopped = false;
    for line in stdout.lines() {
        let Ok(line) = line else { break };
        let Ok(v) = serde_json::from_str::<Value>(&line) else {
            continue;
        };
        match v["type"].as_str() {
            Some("checkpoint") => {
                reported.push(v["step"].as_u64().unwrap());
                // The service dies: its end of the pipe closes.
                stdin.take();
            }
            Some("stopped") => stopped = true,
            _ => {}
        }
    }
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(4), "{status:?}");
    assert!(!stopped, "an orphaned worker must not checkpoint-and-stop");
    assert!(!reported.is_empty());
    assert!(!dir.join("adapter").exists());
    // Every reported checkpoint is still there (nothing pruned them), and at most one more
    // (in flight when stdin closed) was written.
    let on_disk: Vec<u64> = std::fs::read_dir(dir.join("checkpoints"))
        .unwrap()
        .flatten()
        .filter_map(|e| {
            e.file_name()
                .to_string_lossy()
                .strip_prefix("step-")
                .and_then(|s| s.parse().ok())
        })
        .collect();
    let newest = *reported.iter().max().unwrap();
    assert!(on_disk.contains(&newest), "{on_disk:?} vs {reported:?}");
    assert!(
        on_disk.iter().filter(|s| !reported.contains(s)).count() <= 1,
        "{on_disk:?} vs {reported:?}"
    );
}

/// A worker placed on a cluster reads its stop commands from a control file whose modification
/// time the service renews (its lease, docs/launchers.md): with the lease lapsed (the service
/// gone for 30 s), the worker exits with status 4 and writes nothing, as when its stdin closes.
#[test]
fn a_cluster_worker_whose_lease_lapsed_exits_without_writing() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let spec_path = long_run_spec(dir, "job_lease");
    let control = dir.join("spec.control");
    let lapsed = std::fs::File::create(&control).unwrap();
    lapsed
        .set_modified(std::time::SystemTime::now() - Duration::from_secs(60))
        .unwrap();
    let out = Command::new(WORKER_BIN)
        .args(["train", "--spec"])
        .arg(&spec_path)
        .arg("--control-file")
        .arg(&control)
        .env("OMP_NUM_THREADS", "1")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(4), "{:?}", out.status);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(!stdout.contains("\"stopped\""), "{stdout}");
    assert!(!stdout.contains("\"result\""), "{stdout}");
    assert!(!dir.join("adapter").exists());
    assert!(String::from_utf8_lossy(&out.stderr).contains("the service is gone"));
}

/// The service runs the worker binary it is given (`--worker-bin`); one that is not there
/// fails the training with a catalog code whose detail names the path, and the hardware
/// probe says it failed, instead of anything hanging.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_worker_binary_fails_the_training_naming_it() {
    let s = Server::start_with(
        Options::default().args(&["--worker-bin", "/nonexistent/tunewright-worker"]),
    )
    .await;
    let p = project_with_dataset(&s, "no-worker").await;
    let id = submit_train(&s, &p, train_config(4, 1000)).await;
    let done = finished(&s, &id).await;
    assert_eq!(done["status"], "failed", "{done}");
    assert!(
        done["error"]
            .to_string()
            .contains("/nonexistent/tunewright-worker"),
        "{done}"
    );
    let hw = s.get("/api/v1/hardware").await;
    let body = hw.text().await.unwrap();
    assert!(body.contains("GPU_PROBE_FAILED"), "{body}");
}
