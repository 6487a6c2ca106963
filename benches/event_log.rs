//! Event-log benchmark, one run, printed as a comparison:
//!
//! 1. durable appends/s with one redb transaction per event (the baseline),
//! 2. the group-committed `EventLog` at 1, 16 and 64 concurrent appenders, with p50/p99
//!    append latency,
//! 3. replay (read + decode + fold into `State`) events/s over a log of >= 1,000,000 events.
//!
//! `cargo bench --bench event_log`. Sizes: `BENCH_APPENDS` (per appender
//! count, default 4000), `BENCH_REPLAY_EVENTS` (default 1,000,000).

use std::time::{Duration, Instant};

use tunewright_events::event::{JobCreated, JobProgress, ProjectCreated};
use tunewright_events::{Event, EventLog, LogOptions, State};
use tunewright_schemas::{JobId, JobKind, Json, ProjectId};

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn progress(job: JobId, step: u64) -> Event {
    Event::JobProgress(JobProgress {
        job_id: job,
        phase: "training".into(),
        step,
        total_steps: 1_000_000,
        loss: Some(2.0 / (1.0 + step as f64)),
        learning_rate: Some(2e-4),
        grad_norm: Some(0.8),
        tokens_per_sec: Some(12_345.0),
        memory_bytes: Some(1 << 30),
        extra: Json::null(),
    })
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

/// Raw redb, one durable transaction per event, payload only (no framing, no index).
fn raw_redb_one_txn_per_event(n: usize) -> f64 {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = redb::Database::create(dir.path().join("baseline.redb")).expect("create");
    let table: redb::TableDefinition<u64, &[u8]> = redb::TableDefinition::new("events");
    let job = JobId::new();
    let start = Instant::now();
    for i in 0..n {
        let (_, _, payload) =
            tunewright_events::event::encode_payload(&progress(job, i as u64)).expect("encode");
        let t = db.begin_write().expect("txn");
        {
            let mut tab = t.open_table(table).expect("table");
            tab.insert(i as u64, payload.as_slice()).expect("insert");
        }
        t.commit().expect("commit");
    }
    n as f64 / start.elapsed().as_secs_f64()
}

/// The group-committed log with `appenders` concurrent appenders, each appending `per` events.
fn appends(appenders: usize, per: usize, max_batch_events: usize) -> (f64, Duration, Duration) {
    let dir = tempfile::tempdir().expect("tempdir");
    let log = EventLog::open_with(
        &dir.path().join("events.redb"),
        LogOptions { max_batch_events },
    )
    .expect("open");
    let start = Instant::now();
    let handles: Vec<_> = (0..appenders)
        .map(|_| {
            let log = log.clone();
            std::thread::spawn(move || {
                let job = JobId::new();
                let mut lat = Vec::with_capacity(per);
                for i in 0..per {
                    let t = Instant::now();
                    log.append_blocking(vec![progress(job, i as u64)])
                        .expect("append");
                    lat.push(t.elapsed());
                }
                lat
            })
        })
        .collect();
    let mut lat: Vec<Duration> = handles
        .into_iter()
        .flat_map(|h| h.join().expect("join"))
        .collect();
    let rate = lat.len() as f64 / start.elapsed().as_secs_f64();
    lat.sort();
    log.close().expect("close");
    (rate, percentile(&lat, 0.50), percentile(&lat, 0.99))
}

/// Write `n` events in large batches, then time the start-up check (docs/storage.md: redb's
/// open over an in-memory overlay, every record, the index) and, beside it, reading, decoding
/// and folding all of them: `(fold events/s, bytes/event, check s, fold s)`.
fn replay(n: usize) -> (f64, f64, f64, f64) {
    let dir = tempfile::tempdir().expect("tempdir");
    let log = EventLog::open(&dir.path().join("events.redb")).expect("open");
    let project = ProjectId::new();
    let jobs: Vec<JobId> = (0..100).map(|_| JobId::new()).collect();
    let mut setup = vec![Event::ProjectCreated(ProjectCreated {
        project_id: project,
        name: "bench".into(),
    })];
    for j in &jobs {
        setup.push(Event::JobCreated(JobCreated {
            job_id: *j,
            project_id: project,
            kind: JobKind::Train,
            config: Json::object(),
            max_retries: 0,
            queue_timeout_ms: 1,
        }));
    }
    log.append_blocking(setup).expect("setup");
    let mut written = 101;
    let mut step = 0u64;
    while written < n {
        let batch: Vec<Event> = (0..20_000.min(n - written))
            .map(|i| {
                step += 1;
                progress(jobs[i % jobs.len()], step)
            })
            .collect();
        written += batch.len();
        log.append_blocking(batch).expect("append");
    }
    log.close().expect("close");
    drop(log);

    let checked = Instant::now();
    tunewright_events::check(&dir.path().join("events.redb")).expect("check");
    let check_secs = checked.elapsed().as_secs_f64();
    let log = EventLog::open(&dir.path().join("events.redb")).expect("reopen");
    let start = Instant::now();
    let mut state = State::new();
    let mut cursor = 0;
    let mut count = 0usize;
    loop {
        let page = log.read_after(cursor, 16_384).expect("read");
        let Some(last) = page.last() else { break };
        cursor = last.seq;
        count += page.len();
        for e in &page {
            state.apply(e);
        }
    }
    let secs = start.elapsed().as_secs_f64();
    assert_eq!(count, written);
    assert!(state.check_invariants().is_ok());
    let size = std::fs::metadata(dir.path().join("events.redb"))
        .map(|m| m.len())
        .unwrap_or(0);
    (
        count as f64 / secs,
        size as f64 / count as f64,
        check_secs,
        secs,
    )
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let per = env_usize("BENCH_APPENDS", 8000);
    let replay_n = env_usize("BENCH_REPLAY_EVENTS", 1_000_000);
    println!(
        "event log benchmark ({} CPUs)",
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1)
    );
    println!(
        "\n{:<52} {:>10} {:>10} {:>10} {:>8}",
        "durable appends", "events/s", "p50", "p99", "vs base"
    );
    let raw_n = (per / 4).max(200);
    let raw = raw_redb_one_txn_per_event(raw_n);
    println!(
        "{:<52} {:>10.0} {:>10} {:>10} {:>8}",
        format!("raw redb, 1 txn per event, no index ({raw_n})"),
        raw,
        "-",
        "-",
        ""
    );
    let mut rows = Vec::new();
    for appenders in [1usize, 16, 64] {
        let each = (per / appenders).max(100);
        let base = appends(appenders, each / 4 + 25, 1);
        let group = appends(appenders, each, 8192);
        rows.push((appenders, base, group));
    }
    for (appenders, base, group) in &rows {
        println!(
            "{:<52} {:>10.0} {:>10} {:>10} {:>8}",
            format!("log, 1 txn per event (baseline), {appenders} appenders"),
            base.0,
            format!("{:.2?}", base.1),
            format!("{:.2?}", base.2),
            "1.0x"
        );
        println!(
            "{:<52} {:>10.0} {:>10} {:>10} {:>7.1}x",
            format!("log, group commit, {appenders} appenders"),
            group.0,
            format!("{:.2?}", group.1),
            format!("{:.2?}", group.2),
            group.0 / base.0
        );
    }
    let base1 = rows[0].1 .0;
    let at64 = rows[2].2 .0;
    let (replay_rate, bytes_per_event, check_secs, fold_secs) = replay(replay_n);
    println!(
        "\n{:<52} {:>10.0} events/s ({:.0} bytes/event on disk)",
        format!("replay (read+decode+fold) of {replay_n}"),
        replay_rate,
        bytes_per_event
    );
    println!(
        "{:<52} {:>10.2} s (the fold: {:.2} s; start-up pays both)",
        format!("start-up check before writing, {replay_n}"),
        check_secs,
        fold_secs
    );
    println!("\ntargets: group commit at 64 appenders vs one txn per event >= 10x: {:.1}x (vs the 1-appender baseline {:.1}x) {}; replay >= 1,000,000 events/s: {}",
        at64 / rows[2].1 .0,
        at64 / base1,
        if at64 / rows[2].1 .0 >= 10.0 { "MET" } else { "NOT MET" },
        if replay_rate >= 1_000_000.0 { "MET" } else { "NOT MET" });
}
