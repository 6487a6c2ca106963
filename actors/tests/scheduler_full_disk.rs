//! The scheduler on a real full disk (a tmpfs the test mounts; without the right to mount, the
//! test says so and passes): an attempt's outcome that cannot be recorded does not crash the
//! scheduler (no restart storm, no `ActorFailed`); it is recorded once space is back, and the
//! log still replays to the live state (docs/storage.md).

mod support;

use std::process::Command;
use std::time::Duration;

use support::*;
use tunewright_events::{Event, StreamId};
use tunewright_schemas::*;

struct Tmpfs(tempfile::TempDir);

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(self.0.path()).status();
    }
}

fn mount(size: &str) -> Option<Tmpfs> {
    let dir = tempfile::tempdir().ok()?;
    let ok = Command::new("mount")
        .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
        .arg(dir.path())
        .status()
        .is_ok_and(|s| s.success());
    if !ok {
        eprintln!("NOTICE: cannot mount a tmpfs here (not root?): full-disk test skipped");
        return None;
    }
    Some(Tmpfs(dir))
}

fn supervision_events(svc: &tunewright_actors::Service) -> usize {
    svc.log()
        .read_stream(StreamId::Service, 0, usize::MAX)
        .unwrap()
        .iter()
        .filter(|e| matches!(e.event, Event::ActorFailed(_) | Event::ActorRestarted(_)))
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_outcome_that_cannot_be_recorded_waits_for_space_without_crashing_the_scheduler() {
    let Some(fs) = mount("8m") else { return };
    let data = fs.0.path().join("data");
    let mut cfg = config(&data);
    cfg.restart.max_restarts = 2;
    cfg.restart.window = Duration::from_secs(600);
    let svc = tunewright_actors::Service::start(cfg, all_kinds())
        .await
        .expect("service starts");
    let p = ready_project(&svc, "p").await;
    let submitted = submit(&svc, p, JobKind::Train, &["sleep:1500"])
        .await
        .unwrap();
    wait_status(&svc, submitted.id, JobStatus::Running).await;

    // Fill the disk while the attempt runs; it ends while nothing can be written.
    let filler = fs.0.path().join("filler");
    {
        use std::io::Write;
        let mut f = std::fs::File::create(&filler).unwrap();
        while f.write_all(&[0xab; 65536]).is_ok() {}
        while f.write_all(&[1]).is_ok() {}
    }
    // Make sure the log itself is full: appends fail from here on.
    let mut full = false;
    for i in 0..2000 {
        if svc.create_project(&format!("q{i}")).await.is_err() {
            full = true;
            break;
        }
    }
    assert!(full, "the log never hit the full disk");
    tokio::time::sleep(Duration::from_secs(4)).await;
    assert_eq!(
        job(&svc, submitted.id).status,
        JobStatus::Running,
        "the outcome is not recorded yet"
    );
    assert!(svc.log().writable().is_err());

    std::fs::remove_file(&filler).unwrap();
    wait_status(&svc, submitted.id, JobStatus::Success).await;
    assert_eq!(supervision_events(&svc), 0, "the scheduler never crashed");
    assert!(svc.is_ready());
    assert_replay_matches(&svc);
}
