//! `replay verify`: first the check `serve` runs before it opens the log for writing (the same
//! open, read-only; every record; the stream index: what it refuses, verify reports), then
//! check seqs are gapless, fold the projections and check their invariants. The first problem
//! is printed and the exit status is 1.

use std::process::ExitCode;

use std::path::Path;

use tunewright_events::{check, LogError, LogReader, State};

pub fn run(path: &Path) -> Result<ExitCode, String> {
    let in_use = match check(path) {
        Ok(_) => false,
        // A running service holds the log: it opened it, so check what a reader sees.
        Err(LogError::InUse { .. }) => true,
        Err(e @ LogError::Missing { .. }) => return Err(e.to_string()),
        Err(e) => {
            eprintln!("verify FAILED: {e}");
            return Ok(ExitCode::from(1));
        }
    };
    let reader = LogReader::open(path).map_err(|e| e.to_string())?;
    let reader = &reader;
    if in_use {
        if let Err(e) = reader.check() {
            eprintln!("verify FAILED: {e}");
            return Ok(ExitCode::from(1));
        }
    }
    let mut state = State::new();
    let mut expected = 1u64;
    let mut problem: Option<String> = None;
    reader
        .scan(|seq, _size, decoded| {
            if seq != expected {
                problem = Some(format!(
                    "sequence gap: expected seq {expected}, found {seq}"
                ));
                return false;
            }
            expected += 1;
            match decoded {
                Ok(e) => {
                    state.apply(&e);
                    true
                }
                Err(e) => {
                    problem = Some(e.to_string());
                    false
                }
            }
        })
        .map_err(|e| e.to_string())?;
    if problem.is_none() {
        if let Err(p) = state.check_invariants() {
            problem = Some(p);
        }
    }
    match problem {
        Some(p) => {
            eprintln!("verify FAILED: {p}");
            Ok(ExitCode::from(1))
        }
        None => {
            println!(
                "verify OK: {} events, seq 1..={} without gaps, {} projects, {} jobs, invariants hold",
                expected - 1,
                expected - 1,
                state.projects.len(),
                state.jobs.len()
            );
            Ok(ExitCode::SUCCESS)
        }
    }
}
