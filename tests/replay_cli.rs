//! The replay tool seen from outside: the built binary on good, missing, foreign, damaged and
//! truncated logs. It must answer clearly with a non-zero exit, never panic, never write.

use std::path::Path;

use redb::ReadableTable;
use std::process::{Command, Output};

use tunewright_events::event::{JobCreated, ProjectCreated};
use tunewright_events::{Event, EventLog};
use tunewright_schemas::{JobId, JobKind, Json, ProjectId};

fn replay(data_dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_tunewright"))
        .arg("replay")
        .arg("--data-dir")
        .arg(data_dir)
        .args(args)
        .output()
        .expect("run tunewright")
}

fn text(o: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

/// A log with a project and a job; returns (project, job).
fn make_log(dir: &Path) -> (ProjectId, JobId) {
    let log = EventLog::open(&dir.join("events.redb")).unwrap();
    let p = ProjectId::new();
    let j = JobId::new();
    log.append_blocking(vec![Event::ProjectCreated(ProjectCreated {
        project_id: p,
        name: "demo".into(),
    })])
    .unwrap();
    log.append_blocking(vec![Event::JobCreated(JobCreated {
        job_id: j,
        project_id: p,
        kind: JobKind::Train,
        config: Json(serde_json::json!({"lora_r": 8})),
        max_retries: 0,
        queue_timeout_ms: 1000,
    })])
    .unwrap();
    log.append_blocking(vec![Event::ProjectCreated(ProjectCreated {
        project_id: ProjectId::new(),
        name: "second".into(),
    })])
    .unwrap();
    log.close().unwrap();
    (p, j)
}

#[test]
fn list_verify_state_and_stats_on_a_good_log() {
    let dir = tempfile::tempdir().unwrap();
    let (p, j) = make_log(dir.path());
    let before = std::fs::read(dir.path().join("events.redb")).unwrap();

    let o = replay(dir.path(), &["list", "--json"]);
    assert!(o.status.success(), "{:?}", text(&o));
    let lines: Vec<serde_json::Value> = text(&o)
        .0
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 3);
    assert_eq!(lines[0]["seq"], 1);
    assert_eq!(lines[0]["type"], "project_created");
    assert_eq!(lines[0]["stream"], p.to_string());
    assert_eq!(lines[1]["data"]["kind"], "train");
    assert!(lines[0]["ts"].as_str().unwrap().ends_with('Z'));

    let o = replay(dir.path(), &["list", "--json", "--stream", &j.to_string()]);
    assert_eq!(text(&o).0.lines().count(), 1);
    let o = replay(
        dir.path(),
        &[
            "list",
            "--json",
            "--type",
            "project_created",
            "--limit",
            "1",
        ],
    );
    assert_eq!(text(&o).0.lines().count(), 1);
    let o = replay(dir.path(), &["list", "--json", "--after", "2"]);
    assert_eq!(text(&o).0.lines().count(), 1);
    let o = replay(dir.path(), &["list", "--since", "2999-01-01T00:00:00Z"]);
    assert!(o.status.success());
    assert_eq!(text(&o).0.lines().count(), 1, "only the header row");
    let o = replay(dir.path(), &["list"]);
    assert!(text(&o).0.contains("job_created"));

    let o = replay(dir.path(), &["verify"]);
    assert!(o.status.success(), "{:?}", text(&o));
    assert!(text(&o).0.contains("3 events"));

    let o = replay(dir.path(), &["state", "--at", "1", "--json"]);
    let state: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(state["projects"].as_object().unwrap().len(), 1);
    assert_eq!(state["jobs"].as_object().unwrap().len(), 0);
    let o = replay(dir.path(), &["state", "--json"]);
    let state: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(state["jobs"][j.to_string()]["status"], "queued");

    let o = replay(dir.path(), &["stats", "--json"]);
    let stats: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(stats["events"], 3);
    assert_eq!(stats["by_type"]["project_created"]["count"], 2);

    assert_eq!(
        std::fs::read(dir.path().join("events.redb")).unwrap(),
        before,
        "replay wrote to the log"
    );
}

#[test]
fn bad_arguments_are_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    make_log(dir.path());
    for (args, needle) in [
        (vec!["list", "--stream", "nonsense"], "not a stream id"),
        (vec!["list", "--type", "no_such_type"], "unknown event type"),
        (vec!["list", "--since", "yesterday"], "not a time"),
        (vec!["state", "--at", "99"], "past the end"),
    ] {
        let o = replay(dir.path(), &args);
        assert_eq!(o.status.code(), Some(1), "{args:?}");
        assert!(text(&o).1.contains(needle), "{args:?}: {}", text(&o).1);
    }
}

#[test]
fn missing_dir_and_missing_log() {
    let dir = tempfile::tempdir().unwrap();
    let o = replay(&dir.path().join("absent"), &["verify"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(text(&o).1.contains("does not exist"), "{}", text(&o).1);
    let o = replay(dir.path(), &["list"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(text(&o).1.contains("no event log"), "{}", text(&o).1);
    assert!(
        !dir.path().join("events.redb").exists(),
        "replay created a log"
    );
}

#[test]
fn a_file_that_is_not_a_log() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("events.redb"),
        b"{\"just\": \"json\"}\n".repeat(1000),
    )
    .unwrap();
    let o = replay(dir.path(), &["verify"]);
    assert_eq!(o.status.code(), Some(1));
    let (_, err) = text(&o);
    assert!(err.contains("not a tunewright event log"), "{err}");
    assert!(!err.contains("panicked"), "{err}");
}

#[test]
fn a_damaged_record_is_named_by_its_seq() {
    let dir = tempfile::tempdir().unwrap();
    make_log(dir.path());
    {
        // Flip one payload byte of seq 2 behind the log's back.
        let db = redb::Database::builder()
            .set_concurrency_mode(redb::ConcurrencyMode::SingleWriter)
            .open(dir.path().join("events.redb"))
            .unwrap();
        let t = db.begin_write().unwrap();
        {
            let mut table = t
                .open_table(redb::TableDefinition::<u64, &[u8]>::new("events"))
                .unwrap();
            let mut bytes = table.get(2).unwrap().unwrap().value().to_vec();
            let mid = bytes.len() / 2;
            bytes[mid] ^= 0xff;
            table.insert(2, bytes.as_slice()).unwrap();
        }
        t.commit().unwrap();
    }
    let o = replay(dir.path(), &["verify"]);
    assert_eq!(o.status.code(), Some(1));
    let (_, err) = text(&o);
    assert!(err.contains("seq 2"), "{err}");
    let o = replay(dir.path(), &["list", "--json"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(text(&o).1.contains("seq 2"));
}

/// Flip one payload byte of seq 2 behind the log's back (redb's structure stays intact).
fn damage_seq_2(dir: &Path) {
    let db = redb::Database::builder()
        .set_concurrency_mode(redb::ConcurrencyMode::SingleWriter)
        .open(dir.join("events.redb"))
        .unwrap();
    let t = db.begin_write().unwrap();
    {
        let mut table = t
            .open_table(redb::TableDefinition::<u64, &[u8]>::new("events"))
            .unwrap();
        let mut bytes = table.get(2).unwrap().unwrap().value().to_vec();
        let mid = bytes.len() / 2;
        bytes[mid] ^= 0xff;
        table.insert(2, bytes.as_slice()).unwrap();
    }
    t.commit().unwrap();
}

#[test]
fn serve_and_verify_refuse_a_damaged_log_alike_and_salvage_is_the_way_out() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    std::fs::create_dir_all(&data).unwrap();
    make_log(&data);
    damage_seq_2(&data);
    let log = data.join("events.redb");
    let before = std::fs::read(&log).unwrap();

    let o = replay(&data, &["verify"]);
    assert_eq!(o.status.code(), Some(1));
    let verify_err = text(&o).1;
    assert!(verify_err.contains("seq 2"), "{verify_err}");
    assert!(verify_err.contains("replay salvage"), "{verify_err}");

    // serve refuses the same log with EVENT_LOG_ERROR and the same next step, writing nothing.
    let o = Command::new(env!("CARGO_BIN_EXE_tunewright"))
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(&data)
        .arg("--log-dir")
        .arg(dir.path().join("logs"))
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1), "{:?}", text(&o));
    let serve_err = text(&o).1;
    assert!(serve_err.contains("EVENT_LOG_ERROR"), "{serve_err}");
    assert!(serve_err.contains("seq 2"), "{serve_err}");
    assert!(serve_err.contains("replay salvage"), "{serve_err}");
    assert!(!serve_err.contains("panicked"), "{serve_err}");
    assert_eq!(
        std::fs::read(&log).unwrap(),
        before,
        "a refused start wrote to the log"
    );

    let fresh = dir.path().join("fresh");
    let o = replay(&data, &["salvage", "--to", fresh.to_str().unwrap()]);
    assert!(o.status.success(), "{:?}", text(&o));
    let out = text(&o).0;
    assert!(out.contains("skipped: seq 2:"), "{out}");
    assert!(out.contains("salvaged 2 events"), "{out}");
    let o = replay(&fresh, &["verify"]);
    assert!(o.status.success(), "{:?}", text(&o));
    assert!(text(&o).0.contains("2 events"), "{:?}", text(&o));
    assert_eq!(std::fs::read(&log).unwrap(), before, "salvage only reads");

    let o = replay(&data, &["salvage", "--to", fresh.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        text(&o).1.contains("already holds an event log"),
        "{:?}",
        text(&o)
    );
}

#[test]
fn a_truncated_file_gives_a_message_not_a_panic() {
    let dir = tempfile::tempdir().unwrap();
    make_log(dir.path());
    let path = dir.path().join("events.redb");
    let len = std::fs::metadata(&path).unwrap().len();
    for keep in [0, 100, len / 2] {
        let f = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
        f.set_len(keep).unwrap();
        drop(f);
        let o = replay(dir.path(), &["verify"]);
        assert_eq!(o.status.code(), Some(1), "truncated to {keep}");
        let (_, err) = text(&o);
        assert!(
            err.starts_with("tunewright replay: ") || err.starts_with("verify FAILED: "),
            "truncated to {keep}: {err}"
        );
        assert!(!err.contains("RUST_BACKTRACE"), "{err}");
    }
}

#[test]
fn a_reader_that_goes_away_is_not_a_damaged_log() {
    // `tunewright replay stats | head -3`: the pipe closes before the tool is done writing.
    let dir = tempfile::tempdir().unwrap();
    make_log(dir.path());
    let mut child = Command::new(env!("CARGO_BIN_EXE_tunewright"))
        .args(["replay", "--data-dir"])
        .arg(dir.path())
        .arg("stats")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(!err.contains("damaged"), "{err}");
}
