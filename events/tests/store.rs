//! The event store against a real redb file: durability, order, streams, subscription,
//! observer, concurrency and damaged input.

use std::sync::{Arc, Mutex};

use tunewright_events::event::{JobCreated, ProjectCreated, ProjectStatusChanged};
use tunewright_events::{Event, EventLog, LogError, LogReader, State, StreamId};
use tunewright_schemas::{JobId, JobKind, Json, ProjectId, ProjectStatus};

fn project(name: &str) -> (ProjectId, Event) {
    let id = ProjectId::new();
    (
        id,
        Event::ProjectCreated(ProjectCreated {
            project_id: id,
            name: name.into(),
        }),
    )
}

#[tokio::test]
async fn appends_are_numbered_from_one_and_survive_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("events.redb");
    let log = EventLog::open(&path).unwrap();
    let (p, e1) = project("a");
    let stored = log.append(vec![e1.clone()]).await.unwrap();
    assert_eq!(stored[0].seq, 1);
    let job = JobId::new();
    let stored = log
        .append(vec![
            Event::JobCreated(JobCreated {
                job_id: job,
                project_id: p,
                kind: JobKind::Train,
                config: Json::object(),
                max_retries: 0,
                queue_timeout_ms: 1000,
            }),
            Event::ProjectStatusChanged(ProjectStatusChanged {
                project_id: p,
                from: ProjectStatus::Created,
                to: ProjectStatus::Training,
                job_id: Some(job),
                reason: "train".into(),
            }),
        ])
        .await
        .unwrap();
    assert_eq!(stored.iter().map(|e| e.seq).collect::<Vec<_>>(), vec![2, 3]);
    assert_eq!(
        stored[0].ts_ms, stored[1].ts_ms,
        "one append is one transaction"
    );
    log.close().unwrap();
    assert!(matches!(
        log.append(vec![project("late").1]).await,
        Err(LogError::Closed)
    ));
    drop(log);

    let log = EventLog::open(&path).unwrap();
    assert_eq!(log.last_seq(), 3);
    let all = log.read_after(0, 100).unwrap();
    assert_eq!(all.len(), 3);
    assert_eq!(all[0].event, e1);
    let by_project = log.read_stream(StreamId::Project(p), 0, 100).unwrap();
    assert_eq!(
        by_project.iter().map(|e| e.seq).collect::<Vec<_>>(),
        vec![1, 3]
    );
    let by_job = log.read_stream(StreamId::Job(job), 0, 100).unwrap();
    assert_eq!(by_job.len(), 1);
    assert_eq!(log.read_after(1, 1).unwrap()[0].seq, 2);
    let next = log.append(vec![project("b").1]).await.unwrap();
    assert_eq!(next[0].seq, 4);
}

#[tokio::test]
async fn observer_and_subscribers_see_every_commit_in_order_before_the_answer() {
    let dir = tempfile::tempdir().unwrap();
    let log = EventLog::open(&dir.path().join("events.redb")).unwrap();
    let state = Arc::new(Mutex::new(State::new()));
    let s2 = state.clone();
    log.set_commit_observer(Box::new(move |batch| {
        let mut s = s2.lock().unwrap();
        for e in batch {
            s.apply(e);
        }
    }));
    let mut sub = log.subscribe();
    let mut tasks = Vec::new();
    for i in 0..32 {
        let log = log.clone();
        let state = state.clone();
        tasks.push(tokio::spawn(async move {
            let stored = log.append(vec![project(&format!("p{i}")).1]).await.unwrap();
            // Applied before we were answered.
            assert!(state.lock().unwrap().last_seq >= stored[0].seq);
            stored[0].seq
        }));
    }
    let mut seqs = Vec::new();
    for t in tasks {
        seqs.push(t.await.unwrap());
    }
    seqs.sort();
    assert_eq!(seqs, (1..=32).collect::<Vec<_>>());
    for want in 1..=32 {
        assert_eq!(sub.recv().await.unwrap().seq, want);
    }
    let s = state.lock().unwrap();
    assert_eq!(s.projects.len(), 32);
    assert!(s.check_invariants().is_ok());
}

#[test]
fn blocking_appends_from_many_threads_get_distinct_gapless_seqs() {
    let dir = tempfile::tempdir().unwrap();
    let log = EventLog::open(&dir.path().join("events.redb")).unwrap();
    let handles: Vec<_> = (0..8)
        .map(|_| {
            let log = log.clone();
            std::thread::spawn(move || {
                (0..25)
                    .map(|_| log.append_blocking(vec![project("x").1]).unwrap()[0].seq)
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    let mut all: Vec<u64> = handles
        .into_iter()
        .flat_map(|h| h.join().unwrap())
        .collect();
    all.sort();
    assert_eq!(all, (1..=200).collect::<Vec<_>>());
}

#[test]
fn reader_opens_while_the_writer_is_live_and_sees_its_commits() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("events.redb");
    let log = EventLog::open(&path).unwrap();
    log.append_blocking(vec![project("a").1]).unwrap();
    let reader = LogReader::open(&path).unwrap();
    assert_eq!(reader.read_after(0, 10).unwrap().len(), 1);
    log.append_blocking(vec![project("b").1]).unwrap();
    assert_eq!(reader.last_seq().unwrap(), 2);
}

#[test]
fn missing_and_foreign_files_are_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nope.redb");
    assert!(matches!(
        LogReader::open(&missing),
        Err(LogError::Missing { .. })
    ));
    assert!(!missing.exists(), "a reader never creates a log");

    let text = dir.path().join("text.redb");
    std::fs::write(&text, "this is not a database, just text\n".repeat(200)).unwrap();
    let err = LogReader::open(&text).err().expect("text is not a log");
    assert!(matches!(err, LogError::NotALog { .. }), "{err}");
    let err = EventLog::open(&text).err().expect("text is not a log");
    assert!(matches!(err, LogError::NotALog { .. }), "{err}");

    // A redb file of someone else's.
    let other = dir.path().join("other.redb");
    {
        let db = redb::Database::create(&other).unwrap();
        let t = db.begin_write().unwrap();
        t.open_table(redb::TableDefinition::<u64, u64>::new("x"))
            .unwrap();
        t.commit().unwrap();
    }
    let err = LogReader::open(&other).err().expect("not ours");
    assert!(
        err.to_string().contains("not a tunewright event log"),
        "{err}"
    );
}

#[tokio::test]
async fn close_releases_the_file_for_a_new_open_in_the_same_process() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("events.redb");
    let log = EventLog::open(&path).unwrap();
    log.append(vec![project("a").1]).await.unwrap();
    let _clone = log.clone(); // handles may outlive the close
    log.close().unwrap();
    assert!(matches!(log.read_after(0, 10), Err(LogError::Closed)));
    let again = EventLog::open(&path).unwrap();
    assert_eq!(again.last_seq(), 1);
    let err = EventLog::open(&path)
        .err()
        .expect("a second writer is refused");
    assert!(matches!(err, LogError::InUse { .. }), "{err}");
}

/// A stream read in pages gives exactly its events in order, however they interleave with
/// other streams' (runs of neighbours, long gaps, a stream alone at the end), the same as
/// filtering a read of the whole log.
#[test]
fn stream_reads_match_a_filtered_read_of_the_whole_log() {
    use rand::{Rng, SeedableRng};
    let dir = tempfile::tempdir().unwrap();
    let log = EventLog::open(&dir.path().join("events.redb")).unwrap();
    let ids: Vec<ProjectId> = (0..4).map(|_| ProjectId::new()).collect();
    let mut rng = rand::rngs::StdRng::seed_from_u64(7);
    let mut batch = Vec::new();
    for i in 0..3000 {
        // Stream 0 in long runs, stream 3 only now and then (gaps far over a scan's step).
        let who = match i {
            0..=799 => 0,
            2900.. => 3,
            _ if rng.random_range(0..100) < 2 => 3,
            _ => rng.random_range(0..3),
        };
        batch.push(Event::ProjectCreated(ProjectCreated {
            project_id: ids[who],
            name: format!("e{i}"),
        }));
    }
    log.append_blocking(batch).unwrap();
    let all = log.read_after(0, 10_000).unwrap();
    for (who, id) in ids.iter().enumerate() {
        let expected: Vec<u64> = all
            .iter()
            .filter(|e| e.event.stream() == StreamId::Project(*id))
            .map(|e| e.seq)
            .collect();
        for page in [1, 7, 100, 10_000] {
            let mut got = Vec::new();
            let mut after = 0;
            loop {
                let events = log
                    .read_stream(StreamId::Project(*id), after, page)
                    .unwrap();
                for e in &events {
                    assert_eq!(e.event.stream(), StreamId::Project(*id));
                }
                got.extend(events.iter().map(|e| e.seq));
                match events.last() {
                    Some(e) if events.len() == page => after = e.seq,
                    _ => break,
                }
            }
            assert_eq!(got, expected, "stream {who}, pages of {page}");
        }
    }
}
