//! Crash safety: a child process appends from several threads and prints each acknowledged
//! seq; it is SIGKILLed at random moments, many times. After each kill the log must hold every
//! acknowledged event, without gaps, and fold into a state whose invariants hold.

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::time::Duration;

use rand::Rng;
use tunewright_events::event::ProjectCreated;
use tunewright_events::{Event, EventLog, State};
use tunewright_schemas::ProjectId;

const CHILD_ENV: &str = "TUNEWRIGHT_CRASH_CHILD_LOG";

/// Runs only inside the child process: append forever, print every acknowledged seq.
#[test]
fn crash_child_writer() {
    let Ok(path) = std::env::var(CHILD_ENV) else {
        return;
    };
    let log = EventLog::open(std::path::Path::new(&path)).expect("child opens the log");
    let threads: Vec<_> = (0..4)
        .map(|t| {
            let log = log.clone();
            std::thread::spawn(move || {
                let stdout = std::io::stdout();
                for i in 0u64.. {
                    let n = 1 + (i % 3) as usize;
                    let events = (0..n)
                        .map(|k| {
                            Event::ProjectCreated(ProjectCreated {
                                project_id: ProjectId::new(),
                                name: format!("t{t}-{i}-{k}"),
                            })
                        })
                        .collect();
                    let stored = log.append_blocking(events).expect("append");
                    let mut out = stdout.lock();
                    for e in stored {
                        writeln!(out, "ack {}", e.seq).expect("stdout");
                    }
                    out.flush().expect("flush");
                }
            })
        })
        .collect();
    for t in threads {
        let _ = t.join();
    }
}

#[test]
fn acknowledged_appends_survive_sigkill() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("events.redb");
    let exe = std::env::current_exe().unwrap();
    let mut acked = BTreeSet::new();
    let mut rng = rand::rng();
    let rounds = 25;
    for round in 0..rounds {
        let mut child = Command::new(&exe)
            .args([
                "--exact",
                "crash_child_writer",
                "--nocapture",
                "--test-threads",
                "1",
            ])
            .env(CHILD_ENV, &path)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let reader = std::thread::spawn(move || {
            let mut seen = Vec::new();
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if let Some(n) = line.strip_prefix("ack ") {
                    if let Ok(n) = n.trim().parse::<u64>() {
                        seen.push(n);
                    }
                }
            }
            seen
        });
        std::thread::sleep(Duration::from_millis(rng.random_range(30..250)));
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        let seen = reader.join().unwrap();
        acked.extend(seen);

        let log = EventLog::open(&path)
            .unwrap_or_else(|e| panic!("round {round}: reopen after SIGKILL: {e}"));
        let all = log.read_after(0, usize::MAX).unwrap();
        let seqs: Vec<u64> = all.iter().map(|e| e.seq).collect();
        assert_eq!(
            seqs,
            (1..=seqs.len() as u64).collect::<Vec<_>>(),
            "round {round}: gap in the log"
        );
        let present: BTreeSet<u64> = seqs.iter().copied().collect();
        let lost: Vec<&u64> = acked.difference(&present).collect();
        assert!(
            lost.is_empty(),
            "round {round}: acknowledged but missing: {lost:?}"
        );
        let state = State::from_events(&all);
        state
            .check_invariants()
            .unwrap_or_else(|p| panic!("round {round}: {p}"));
        log.close().unwrap();
    }
    assert!(
        acked.len() > rounds,
        "the children acknowledged too few appends ({}) to prove anything",
        acked.len()
    );
}
