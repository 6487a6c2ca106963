//! The log on a real full disk: a tmpfs of a few MB mounted by the test (we run as root; without
//! the right to mount, the test says so and passes). A failed append fails its whole batch and
//! no seq is spent, reads keep working, `writable` says why appends fail, and once space is
//! back appends work again without reopening the log by hand (docs/storage.md).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use tunewright_events::event::{JobNote, ProjectCreated};
use tunewright_events::{Event, EventLog, LogError};
use tunewright_schemas::{JobId, Json, ProjectId};

/// A tmpfs mounted for one test, unmounted on drop.
struct Tmpfs {
    dir: tempfile::TempDir,
}

impl Tmpfs {
    fn mount(size: &str) -> Option<Tmpfs> {
        let dir = tempfile::tempdir().ok()?;
        let ok = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir.path())
            .status()
            .map(|s| s.success())
            .unwrap_or(false);
        if !ok {
            eprintln!("NOTICE: cannot mount a tmpfs here (not root?): full-disk test skipped");
            return None;
        }
        Some(Tmpfs { dir })
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(self.dir.path()).status();
    }
}

/// Fill the disk with one file until writing fails; returns its path.
fn fill(dir: &Path) -> PathBuf {
    use std::io::Write;
    let path = dir.join("filler");
    let mut f = std::fs::File::create(&path).unwrap();
    let block = vec![0xabu8; 64 * 1024];
    while f.write_all(&block).is_ok() {}
    // Whatever a partial block left: fill byte by byte.
    while f.write_all(&[1]).is_ok() {}
    let _ = f.sync_all();
    path
}

fn note(job: JobId, kb: usize) -> Event {
    Event::JobNote(JobNote {
        job_id: job,
        topic: "progress".into(),
        data: Json(serde_json::json!({"pad": "y".repeat(kb * 1024)})),
    })
}

#[test]
fn a_full_disk_fails_the_batch_and_appends_work_again_once_space_is_back() {
    let Some(fs) = Tmpfs::mount("4m") else { return };
    let path = fs.path().join("events.redb");
    let log = EventLog::open(&path).unwrap();
    let p = ProjectId::new();
    log.append_blocking(vec![Event::ProjectCreated(ProjectCreated {
        project_id: p,
        name: "full".into(),
    })])
    .unwrap();
    let job = JobId::new();
    let filler = fill(fs.path());

    // Appends of a few notes each until one fails: it must be a full disk, named.
    let mut failed = None;
    for _ in 0..200 {
        match log.append_blocking(vec![note(job, 16), note(job, 16), note(job, 16)]) {
            Ok(_) => continue,
            Err(e) => {
                failed = Some(e);
                break;
            }
        }
    }
    let err = failed.expect("the disk never filled");
    match &err {
        LogError::StorageFull {
            path: p,
            free_bytes,
            ..
        } => {
            assert_eq!(p, &path);
            assert!(free_bytes.is_some(), "{err}");
        }
        other => panic!("expected a full disk, got {other}"),
    }
    let last = log.last_seq();
    let reason = log.writable().expect_err("not writable while full");
    assert!(reason.contains("full"), "{reason}");
    assert!(log.unwritable_since().is_some());

    // Reads keep working on the full disk, and the failed batch left nothing.
    let events = log.read_after(0, usize::MAX).unwrap();
    assert_eq!(events.len() as u64, last);
    assert_eq!(events.last().unwrap().seq, last);

    std::fs::remove_file(&filler).unwrap();
    // Appends work again, without a restart; the failed batch spent no seq.
    let stored = log.append_blocking(vec![note(job, 1)]).unwrap();
    assert_eq!(stored[0].seq, last + 1);
    assert!(log.writable().is_ok());
    assert!(log.unwritable_since().is_none());
    log.close().unwrap();
    let again = EventLog::open(&path).unwrap();
    assert_eq!(again.last_seq(), last + 1);
    again.close().unwrap();
}

#[test]
fn an_idle_log_becomes_writable_again_by_itself_once_space_is_back() {
    let Some(fs) = Tmpfs::mount("4m") else { return };
    let path = fs.path().join("events.redb");
    let log = EventLog::open(&path).unwrap();
    let job = JobId::new();
    let filler = fill(fs.path());
    let mut full = false;
    for _ in 0..200 {
        if log.append_blocking(vec![note(job, 32)]).is_err() {
            full = true;
            break;
        }
    }
    assert!(full, "the disk never filled");
    assert!(log.writable().is_err());
    std::fs::remove_file(&filler).unwrap();
    // No append comes: the writer's probe finds the space (what `/ready` reports).
    let deadline = Instant::now() + Duration::from_secs(20);
    while log.writable().is_err() {
        assert!(
            Instant::now() < deadline,
            "still unwritable: {:?}",
            log.writable()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    log.close().unwrap();
}
