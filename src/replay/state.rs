//! `replay state --at SEQ`: the projects and jobs as they were after event SEQ.

use std::process::ExitCode;

use clap::Args;
use tunewright_events::{LogReader, State};

use tunewright_events::timestamp::format_ts;

use super::scan::for_each_event;

#[derive(Debug, Args)]
pub struct StateArgs {
    /// Fold events up to and including this seq (default: all).
    #[arg(long)]
    pub at: Option<u64>,
    /// Print the state as JSON.
    #[arg(long)]
    pub json: bool,
}

/// Fold the log up to `at` (inclusive), or all of it.
pub fn fold(reader: &LogReader, at: Option<u64>) -> Result<State, String> {
    let mut state = State::new();
    let stop = at.unwrap_or(u64::MAX);
    for_each_event(reader, 0, |e| {
        if e.seq > stop {
            return false;
        }
        state.apply(e);
        true
    })
    .map_err(|e| e.to_string())?;
    Ok(state)
}

pub fn run(reader: &LogReader, a: &StateArgs) -> Result<ExitCode, String> {
    if let Some(at) = a.at {
        let last = reader.last_seq().map_err(|e| e.to_string())?;
        if at > last {
            return Err(format!(
                "--at {at} is past the end of the log (last seq {last})"
            ));
        }
    }
    let state = fold(reader, a.at)?;
    if a.json {
        let text = serde_json::to_string_pretty(&state).map_err(|e| e.to_string())?;
        println!("{text}");
        return Ok(ExitCode::SUCCESS);
    }
    println!("state after seq {}", state.last_seq);
    println!("projects ({}):", state.projects.len());
    for p in state.projects.values() {
        let ds = p
            .dataset
            .as_ref()
            .map(|d| format!("{} examples ({})", d.num_examples, d.format));
        println!(
            "  {}  {:<16} {:<15} files={} dataset={} updated={}",
            p.id,
            p.name,
            p.status.as_str(),
            p.files.len(),
            ds.unwrap_or_else(|| "-".into()),
            format_ts(p.updated_at_ms)
        );
    }
    println!("jobs ({}):", state.jobs.len());
    for j in state.jobs.values() {
        let err = j
            .error
            .as_ref()
            .map(|f| format!(" error={}", f.error_code))
            .unwrap_or_default();
        println!(
            "  {}  {}  {:<16} {:<10} attempts={}{err}",
            j.id,
            j.project_id,
            j.kind.as_str(),
            j.status.as_str(),
            j.attempts
        );
    }
    Ok(ExitCode::SUCCESS)
}
