//! `replay verify`: decode every record, check seqs are gapless, fold the projections and check
//! their invariants. The first problem is printed and the exit status is 1.

use std::process::ExitCode;

use tunewright_events::{LogReader, State};

pub fn run(reader: &LogReader) -> Result<ExitCode, String> {
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
