//! The `slurm` launcher against a real one-node Slurm (`script/slurm-up`, run by the test-tools
//! script; docs/slurm.md): a real `tunewright serve --launcher slurm` places each training run
//! as a batch job through `sbatch`, follows it through the output file Slurm writes and
//! `scontrol`, and records the batch job's id.
//!
//! - A training placed through Slurm succeeds with the same adapter bits as on the `local`
//!   launcher, and its placement (the Slurm job id) is in its story.
//! - `scancel` of the batch job from outside, after a checkpoint: the run is recorded as
//!   interrupted with Slurm's state, resumed from that checkpoint as a new batch job, and ends
//!   with the uninterrupted run's adapter.
//! - kill -9 of the service while a batch job runs: the batch job is left running (its worker
//!   is not the service's child); the restarted service cancels it before it places the
//!   resumed run, so two workers never train the job at once; the job succeeds with the
//!   uninterrupted run's adapter and `replay verify` passes.
//! - Cancelling the job in tunewright stops its batch job; the node set DOWN under a running
//!   batch job: Slurm ends it `NODE_FAIL`, and the run resumes as a new batch job once the node
//!   is back, to the uninterrupted run's adapter.
//! - A batch job Slurm keeps pending past `--slurm-pending-timeout-secs` is cancelled and the
//!   job fails `JOB_TIMEOUT` with Slurm's reason and an analysis.
//! - A batch job `sbatch` refuses (an unknown partition) fails the training with Slurm's words.
//! - Two projects' trainings: the second waits in the queue while the first's batch job runs,
//!   then runs.

mod support;
mod training;

use std::process::Command;
use std::time::Duration;

use support::{Options, Server};
use training::*;

/// The tests share one Slurm node. Setting it DOWN ends every batch job on it, so that test
/// holds the node alone; the others share it.
static NODE: tokio::sync::RwLock<()> = tokio::sync::RwLock::const_new(());

fn slurm(dir: &std::path::Path) -> Options {
    single_threaded(Options::default().data_dir(dir)).args(&[
        "--launcher",
        "slurm",
        "--slurm-partition",
        "debug",
        "--slurm-option=--cpus-per-task=1",
    ])
}

/// The Slurm job ids the job's placements recorded, in order.
async fn placements(s: &Server, id: &str) -> Vec<String> {
    events(s, id)
        .await
        .iter()
        .filter(|e| e["type"] == "job_note" && e["data"]["topic"] == "placement")
        .map(|e| {
            assert_eq!(e["data"]["data"]["launcher"], "slurm", "{e}");
            e["data"]["data"]["slurm_job_id"]
                .as_str()
                .expect("a Slurm job id")
                .to_string()
        })
        .collect()
}

/// `JobState` of a Slurm job as `scontrol` reports it.
fn slurm_state(slurm_id: &str) -> String {
    let out = Command::new("scontrol")
        .args(["show", "job", "-o", slurm_id])
        .output()
        .expect("scontrol runs (is Slurm up? script/slurm-up)");
    let text = String::from_utf8_lossy(&out.stdout);
    text.split_whitespace()
        .find_map(|kv| kv.strip_prefix("JobState="))
        .unwrap_or("")
        .to_string()
}

/// An uninterrupted run of `config` in project `p`: its adapter's bytes.
async fn uninterrupted(
    s: &Server,
    dir: &std::path::Path,
    p: &str,
    config: &serde_json::Value,
) -> Vec<u8> {
    let plain = submit_train(s, p, config.clone()).await;
    let done = finished(s, &plain).await;
    assert_eq!(done["status"], "success", "{done}");
    adapter(dir, &plain)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_training_placed_through_slurm_has_the_local_runs_adapter_bits() {
    let _node = NODE.read().await;
    let config = train_config(12, 4);
    let local_dir = tempfile::tempdir().unwrap();
    let local = Server::start_with(single_threaded(
        Options::default().data_dir(local_dir.path()),
    ))
    .await;
    let p = project_with_dataset(&local, "local").await;
    let id = submit_train(&local, &p, config.clone()).await;
    let done = finished(&local, &id).await;
    assert_eq!(done["status"], "success", "{done}");
    let expected = adapter(local_dir.path(), &id);
    let hw: serde_json::Value = local.get("/api/v1/hardware").await.json().await.unwrap();
    assert_eq!(hw["launcher"]["kind"], "local", "{hw}");
    drop(local);

    let dir = tempfile::tempdir().unwrap();
    let s = Server::start_with(slurm(dir.path())).await;
    let p = project_with_dataset(&s, "slurm").await;
    let id = submit_train(&s, &p, config).await;
    let done = finished(&s, &id).await;
    assert_eq!(done["status"], "success", "{done}");
    assert_eq!(done["attempts"], 1, "{done}");
    let placed = placements(&s, &id).await;
    assert_eq!(placed.len(), 1, "{placed:?}");
    assert_eq!(slurm_state(&placed[0]), "COMPLETED");
    assert_eq!(
        adapter(dir.path(), &id),
        expected,
        "the adapter trained through Slurm equals the local one bit for bit"
    );
    let (ok, story) = replay_list(dir.path(), &id, &[]);
    assert!(ok, "{story}");
    assert!(story.contains(&placed[0]), "{story}");

    // Where workers run, and what the launcher did, for operators.
    let hw: serde_json::Value = s.get("/api/v1/hardware").await.json().await.unwrap();
    assert_eq!(hw["launcher"]["kind"], "slurm", "{hw}");
    assert_eq!(hw["launcher"]["partition"], "debug", "{hw}");
    let metrics = s.get("/metrics").await.text().await.unwrap();
    for line in [
        "tunewright_slurm_batch_jobs_submitted_total 1",
        "tunewright_slurm_batch_jobs_ended_total{state=\"COMPLETED\"} 1",
        "tunewright_slurm_batch_jobs_followed 0",
    ] {
        assert!(metrics.lines().any(|l| l == line), "{line} in\n{metrics}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scancel_from_outside_resumes_from_the_checkpoint_as_a_new_batch_job() {
    let _node = NODE.read().await;
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start_with(slurm(dir.path())).await;
    let p = project_with_dataset(&s, "scancel").await;
    let config = train_config(40, 4);
    let expected = uninterrupted(&s, dir.path(), &p, &config).await;

    let id = submit_train(&s, &p, config).await;
    // Once a checkpoint is recorded while the batch job runs, cancel it behind the service's back.
    let slurm_id = placed_after_first_checkpoint(&s, &id).await;
    let checkpoint = *checkpoint_steps(&events(&s, &id).await)
        .first()
        .expect("a checkpoint");
    assert!(Command::new("scancel")
        .arg(&slurm_id)
        .status()
        .unwrap()
        .success());

    let done = finished(&s, &id).await;
    assert_eq!(done["status"], "success", "{done}");
    let resumed = done["resumed_from_step"].as_u64().expect("resumed");
    assert!(resumed >= checkpoint, "{done}");
    let placed = placements(&s, &id).await;
    assert_eq!(
        placed.len(),
        2,
        "one new batch job after the cancel: {placed:?}"
    );
    assert_eq!(placed[0], slurm_id);
    assert_ne!(placed[1], slurm_id);
    assert_eq!(slurm_state(&slurm_id), "CANCELLED");
    let evs = events(&s, &id).await;
    let restarted = evs
        .iter()
        .find(|e| e["type"] == "job_note" && e["data"]["topic"] == "worker_restarted")
        .expect("the interruption is recorded");
    let status = restarted["data"]["data"]["status"].as_str().unwrap_or("");
    assert!(
        status.starts_with(&format!("Slurm batch job {slurm_id} ended CANCELLED")),
        "Slurm's state is in the record: {restarted}"
    );
    assert_eq!(
        adapter(dir.path(), &id),
        expected,
        "the resumed run's adapter equals the uninterrupted run's bit for bit"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_training_waits_for_the_first_batch_job_then_runs() {
    let _node = NODE.read().await;
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start_with(slurm(dir.path())).await;
    let (p1, p2) = (
        project_with_dataset(&s, "first").await,
        project_with_dataset(&s, "second").await,
    );
    let first = submit_train(&s, &p1, train_config(24, 1000)).await;
    let second = submit_train(&s, &p2, train_config(4, 1000)).await;
    let mut saw_queued = false;
    for _ in 0..3000 {
        let (a, b) = (job(&s, &first).await, job(&s, &second).await);
        if a["status"] == "running" && b["status"] == "queued" {
            saw_queued = true;
        }
        if is_terminal(&a) {
            break;
        }
        assert_ne!(b["status"], "running", "both ran at once: {a} {b}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(saw_queued, "the second training never waited");
    for id in [&first, &second] {
        let done = finished(&s, id).await;
        assert_eq!(done["status"], "success", "{done}");
        assert_eq!(placements(&s, id).await.len(), 1);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_of_the_service_cancels_the_left_batch_job_and_resumes_once() {
    let _node = NODE.read().await;
    let dir = tempfile::tempdir().unwrap();
    let mut s = Server::start_with(slurm(dir.path())).await;
    let p = project_with_dataset(&s, "kill").await;
    let config = train_config(60, 4);
    let expected = uninterrupted(&s, dir.path(), &p, &config).await;

    let id = submit_train(&s, &p, config).await;
    let left = placed_after_first_checkpoint(&s, &id).await;
    s.kill_hard();
    assert_eq!(
        slurm_state(&left),
        "RUNNING",
        "the batch job outlives the service"
    );

    let s2 = Server::start_with(slurm(dir.path())).await;
    let done = finished(&s2, &id).await;
    assert_eq!(done["status"], "success", "{done}");
    let placed = placements(&s2, &id).await;
    assert_eq!(placed.len(), 2, "{placed:?}");
    assert_eq!(placed[0], left);
    assert_eq!(slurm_state(&left), "CANCELLED");
    assert_eq!(
        adapter(dir.path(), &id),
        expected,
        "the resumed run's adapter equals the uninterrupted run's bit for bit"
    );
    let (ok, report) = s2.replay_verify();
    assert!(ok, "{report}");
}

/// Wait (bounded) until the job has recorded a checkpoint while its batch job runs; that
/// batch job's id.
async fn placed_after_first_checkpoint(s: &Server, id: &str) -> String {
    for _ in 0..6000 {
        let evs = events(s, id).await;
        if !checkpoint_steps(&evs).is_empty() {
            let j = job(s, id).await;
            assert_eq!(j["status"], "running", "the run ended too early: {j}");
            return placements(s, id).await.last().expect("placed").clone();
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("job {id} recorded no checkpoint: {}", job(s, id).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancelling_the_job_ends_its_batch_job() {
    let _node = NODE.read().await;
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start_with(slurm(dir.path())).await;
    let p = project_with_dataset(&s, "cancel").await;
    let id = submit_train(&s, &p, train_config(400, 4)).await;
    let slurm_id = placed_after_first_checkpoint(&s, &id).await;
    let r = reqwest::Client::new()
        .post(s.url(&format!("/api/v1/jobs/{id}/cancel")))
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "{}", r.status());
    let done = finished(&s, &id).await;
    assert_eq!(done["status"], "cancelled", "{done}");
    let state = slurm_state(&slurm_id);
    assert!(
        matches!(state.as_str(), "COMPLETED" | "FAILED" | "CANCELLED"),
        "the batch job has ended: {state}"
    );
    assert_eq!(placements(&s, &id).await.len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_set_down_mid_run_resumes_as_a_new_batch_job() {
    let _node = NODE.write().await;
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start_with(slurm(dir.path())).await;
    let p = project_with_dataset(&s, "down").await;
    let config = train_config(60, 4);
    let expected = uninterrupted(&s, dir.path(), &p, &config).await;

    let id = submit_train(&s, &p, config).await;
    let slurm_id = placed_after_first_checkpoint(&s, &id).await;
    let node =
        String::from_utf8(Command::new("hostname").arg("-s").output().unwrap().stdout).unwrap();
    let down = Command::new("scontrol")
        .args([
            "update",
            &format!("nodename={}", node.trim()),
            "state=down",
            "reason=tunewright-test",
        ])
        .status()
        .unwrap();
    assert!(down.success());
    let done = finished(&s, &id).await;
    // The node returns by itself once its slurmd registers again (ReturnToService=2); make sure.
    let _ = Command::new("scontrol")
        .args([
            "update",
            &format!("nodename={}", node.trim()),
            "state=resume",
        ])
        .status();
    assert_eq!(done["status"], "success", "{done}");
    assert_eq!(slurm_state(&slurm_id), "NODE_FAIL");
    let placed = placements(&s, &id).await;
    assert_eq!(placed.len(), 2, "{placed:?}");
    let evs = events(&s, &id).await;
    let restarted = evs
        .iter()
        .find(|e| e["type"] == "job_note" && e["data"]["topic"] == "worker_restarted")
        .expect("the interruption is recorded");
    assert!(
        restarted["data"]["data"]["status"]
            .as_str()
            .unwrap_or("")
            .contains("NODE_FAIL"),
        "{restarted}"
    );
    assert_eq!(adapter(dir.path(), &id), expected);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_job_pending_too_long_fails_job_timeout_with_slurms_reason() {
    let _node = NODE.read().await;
    let dir = tempfile::tempdir().unwrap();
    // Held back by `--begin`: Slurm's reason is `BeginTime`.
    let s = Server::start_with(slurm(dir.path()).args(&[
        "--slurm-option=--begin=now+3600",
        "--slurm-pending-timeout-secs",
        "3",
    ]))
    .await;
    let p = project_with_dataset(&s, "pending").await;
    let id = submit_train(&s, &p, train_config(4, 1000)).await;
    let done = finished(&s, &id).await;
    assert_eq!(done["status"], "failed", "{done}");
    let error = &done["error"];
    assert_eq!(error["error_code"], "JOB_TIMEOUT", "{done}");
    assert_eq!(error["context"]["slurm_reason"], "BeginTime", "{done}");
    assert!(error["analysis"]["description"].is_string(), "{done}");
    let placed = placements(&s, &id).await;
    assert_eq!(placed.len(), 1, "{placed:?}");
    assert_eq!(slurm_state(&placed[0]), "CANCELLED");
}

/// A partition Slurm does not have: `sbatch` refuses the batch job, and the training fails
/// with a catalog code whose detail carries Slurm's own words, with nothing placed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_job_sbatch_refuses_fails_the_training_with_slurms_words() {
    let _node = NODE.read().await;
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start_with(
        single_threaded(Options::default().data_dir(dir.path())).args(&[
            "--launcher",
            "slurm",
            "--slurm-partition",
            "no-such-partition",
        ]),
    )
    .await;
    let p = project_with_dataset(&s, "refused").await;
    let id = submit_train(&s, &p, train_config(4, 1000)).await;
    let done = finished(&s, &id).await;
    assert_eq!(done["status"], "failed", "{done}");
    let error = done["error"].to_string();
    assert!(error.contains("sbatch refused the job"), "{done}");
    assert!(error.to_lowercase().contains("partition"), "{done}");
    assert!(placements(&s, &id).await.is_empty());
}
