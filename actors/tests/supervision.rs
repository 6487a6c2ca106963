//! The supervisor: a crashing scheduler is restarted with exponential backoff and keeps its
//! work; too many crashes in the window make the supervisor give up and escalate. Each step is
//! an event.

mod support;

use std::time::Duration;

use support::*;
use tunewright_actors::scheduler::SchedulerMsg;
use tunewright_events::{Event, StreamId};
use tunewright_schemas::*;

fn service_events(svc: &tunewright_actors::Service) -> Vec<Event> {
    svc.log()
        .read_stream(StreamId::Service, 0, usize::MAX)
        .unwrap()
        .into_iter()
        .map(|e| e.event)
        .collect()
}

/// Wait until the supervisor has recorded `n` restarts, then return the running scheduler.
async fn restarted(svc: &tunewright_actors::Service, n: usize) -> ractor::ActorRef<SchedulerMsg> {
    for _ in 0..2_000 {
        let count = service_events(svc)
            .iter()
            .filter(|e| matches!(e, Event::ActorRestarted(_)))
            .count();
        if count >= n {
            return scheduler_up(svc).await;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    panic!("the supervisor never recorded restart {n}");
}

async fn scheduler_up(svc: &tunewright_actors::Service) -> ractor::ActorRef<SchedulerMsg> {
    for _ in 0..10_000 {
        if let Ok(s) = svc.scheduler() {
            if s.get_status() == ractor::ActorStatus::Running {
                return s;
            }
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    panic!("the scheduler never came back");
}

// Real time: the log's writer is another thread, and a paused clock would jump over the
// supervisor's restart window while the test waits on it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panicking_scheduler_is_restarted_with_backoff_then_the_supervisor_gives_up() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = config(dir.path());
    cfg.restart.max_restarts = 3;
    cfg.restart.window = Duration::from_secs(600);
    cfg.restart.base_backoff = Duration::from_millis(100);
    let svc = tunewright_actors::Service::start(cfg, all_kinds())
        .await
        .unwrap();
    let p = ready_project(&svc, "sup").await;
    // A job in flight survives the scheduler's crash: the restarted scheduler adopts it.
    let running = submit(&svc, p, JobKind::Train, &["sleep:300"])
        .await
        .unwrap();
    wait_status(&svc, running.id, JobStatus::Running).await;

    let t0 = tokio::time::Instant::now();
    scheduler_up(&svc)
        .await
        .send_message(SchedulerMsg::Crash("injected fault 1".into()))
        .unwrap();
    let s = restarted(&svc, 1).await;
    assert!(
        t0.elapsed() >= Duration::from_millis(100),
        "restarted only after its backoff"
    );
    let done = wait_status(&svc, running.id, JobStatus::Success).await;
    assert_eq!(done.attempts, 1, "adopted, not restarted");
    // And it still schedules new work.
    let j = submit(&svc, p, JobKind::DatasetPreview, &["ok"])
        .await
        .unwrap();
    wait_status(&svc, j.id, JobStatus::Success).await;

    s.send_message(SchedulerMsg::Crash("injected fault 2".into()))
        .unwrap();
    restarted(&svc, 2)
        .await
        .send_message(SchedulerMsg::Crash("injected fault 3".into()))
        .unwrap();
    restarted(&svc, 3)
        .await
        .send_message(SchedulerMsg::Crash("injected fault 4".into()))
        .unwrap();
    let reason = match tokio::time::timeout(Duration::from_secs(60), svc.escalated()).await {
        Ok(r) => r,
        Err(_) => panic!(
            "did not escalate; service events: {:#?}",
            service_events(&svc)
        ),
    };
    assert!(reason.contains("giving up"), "{reason}");

    let events = service_events(&svc);
    let failed: Vec<_> = events
        .iter()
        .filter_map(|e| {
            if let Event::ActorFailed(f) = e {
                Some(f)
            } else {
                None
            }
        })
        .collect();
    let restarted: Vec<_> = events
        .iter()
        .filter_map(|e| {
            if let Event::ActorRestarted(r) = e {
                Some(r)
            } else {
                None
            }
        })
        .collect();
    assert_eq!(failed.len(), 4);
    assert!(failed[0].error.contains("injected fault 1"));
    assert_eq!(
        restarted.iter().map(|r| r.backoff_ms).collect::<Vec<_>>(),
        vec![100, 200, 400],
        "exponential backoff"
    );
    assert!(events
        .iter()
        .any(|e| matches!(e, Event::SupervisorGaveUp(g) if g.restarts == 3)));
    assert_replay_matches(&svc);
}
