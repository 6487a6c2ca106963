//! The device's training queue, end to end (docs/jobs.md, "The training queue"): a real
//! `tunewright serve` trains the tiny Llama on CPU; a second project's training is admitted and
//! waits `queued` (position 1) while the first runs, starts when the device frees, and both
//! succeed — also when the whole service is killed with -9 while the second waits.

mod support;
mod training;

use std::time::Duration;

use serde_json::Value;
use support::{Options, Server};
use training::*;

/// The seq of the job's first event of type `t`.
fn first_seq(events: &[Value], t: &str) -> u64 {
    of_type(events, t)
        .first()
        .and_then(|e| e["seq"].as_u64())
        .unwrap_or_else(|| panic!("no {t} event"))
}

/// Wait (bounded) until `id` is running.
async fn running(s: &Server, id: &str) {
    for _ in 0..3000 {
        if job(s, id).await["status"] == "running" {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("job {id} never ran: {}", job(s, id).await);
}

/// Two projects with the sample dataset; a running training in the first and a second one
/// waiting for the device: `(first, second)`.
async fn first_running_second_waiting(s: &Server, first_steps: u64) -> (String, String) {
    let a = project_with_dataset(s, "first").await;
    let b = project_with_dataset(s, "second").await;
    let first = submit_train(s, &a, train_config(first_steps, 4)).await;
    running(s, &first).await;
    let second = submit_train(s, &b, train_config(4, 2)).await;
    let waiting = job(s, &second).await;
    assert_eq!(waiting["status"], "queued", "{waiting}");
    assert_eq!(waiting["queue_position"], 1, "{waiting}");
    assert_eq!(job(s, &first).await["queue_position"], Value::Null);
    (first, second)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_projects_training_waits_its_turn_then_runs() {
    let s = Server::start_with(single_threaded(Options::default())).await;
    let (first, second) = first_running_second_waiting(&s, 8).await;
    let a = finished(&s, &first).await;
    assert_eq!(a["status"], "success", "{a}");
    let b = finished(&s, &second).await;
    assert_eq!(b["status"], "success", "{b}");
    assert_eq!(b["attempts"], 1);
    // The second started only once the first had ended.
    let (ea, eb) = (events(&s, &first).await, events(&s, &second).await);
    assert!(first_seq(&eb, "job_attempt_started") > first_seq(&ea, "job_succeeded"));
    let (ok, text) = s.replay_verify();
    assert!(ok, "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_queue_survives_a_kill_9_of_the_service() {
    let tmp = tempfile::tempdir().unwrap();
    let opts = || single_threaded(Options::default().data_dir(tmp.path()));
    let mut s = Server::start_with(opts()).await;
    let (first, second) = first_running_second_waiting(&s, 12).await;
    s.kill_hard();

    let s = Server::start_with(opts()).await;
    // The interrupted first training keeps its place at the head of the queue.
    let a = finished(&s, &first).await;
    assert_eq!(a["status"], "success", "{a}");
    assert_eq!(a["interruptions"], 1, "{a}");
    let b = finished(&s, &second).await;
    assert_eq!(b["status"], "success", "{b}");
    assert_eq!(b["attempts"], 1, "the waiting training ran once: {b}");
    let (ea, eb) = (events(&s, &first).await, events(&s, &second).await);
    assert!(first_seq(&eb, "job_attempt_started") > first_seq(&ea, "job_succeeded"));
    let (ok, text) = s.replay_verify();
    assert!(ok, "{text}");
}
