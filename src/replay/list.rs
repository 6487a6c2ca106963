//! `replay list`: events as a table or JSON lines, filtered by stream, type, time and seq.
//! The table's DATA column (`row_data`) is also the job's story on the studio's job page.

use std::io::Write;
use std::process::ExitCode;

use clap::Args;
use tunewright_events::{Event, LogReader, StoredEvent, StreamId};
use tunewright_schemas::Failure;

use tunewright_events::event::{event_data, event_json};
use tunewright_events::timestamp::{format_ts, parse_ts};

use super::scan::for_each_event;

#[derive(Debug, Args)]
pub struct ListArgs {
    /// Only this stream: a project id (prj_…), a job id (job_…) or `service`.
    #[arg(long)]
    pub stream: Option<String>,
    /// Only these event types (e.g. job_failed); repeatable.
    #[arg(long = "type")]
    pub types: Vec<String>,
    /// Only events at or after this time (ms since epoch or RFC 3339).
    #[arg(long)]
    pub since: Option<String>,
    /// Only events before this time.
    #[arg(long)]
    pub until: Option<String>,
    /// Only events with seq greater than this.
    #[arg(long, default_value_t = 0)]
    pub after: u64,
    /// At most this many events.
    #[arg(long)]
    pub limit: Option<usize>,
    /// JSON lines (seq, ts, stream, type, data) instead of a table.
    #[arg(long)]
    pub json: bool,
}

pub fn run(reader: &LogReader, a: &ListArgs) -> Result<ExitCode, String> {
    let stream = a
        .stream
        .as_deref()
        .map(str::parse::<StreamId>)
        .transpose()?;
    for t in &a.types {
        if !Event::TYPES.iter().any(|(_, n)| n == t) {
            let known: Vec<&str> = Event::TYPES.iter().map(|(_, n)| *n).collect();
            return Err(format!(
                "unknown event type '{t}' (known: {})",
                known.join(", ")
            ));
        }
    }
    let since = a.since.as_deref().map(parse_ts).transpose()?;
    let until = a.until.as_deref().map(parse_ts).transpose()?;
    let limit = a.limit.unwrap_or(usize::MAX);
    let keep = |e: &StoredEvent| {
        (a.types.is_empty() || a.types.iter().any(|t| t == e.event.type_name()))
            && since.is_none_or(|s| e.ts_ms >= s)
            && until.is_none_or(|u| e.ts_ms < u)
    };
    let out = std::io::stdout();
    let mut out = std::io::BufWriter::new(out.lock());
    let mut shown = 0usize;
    let mut write_err = None;
    let mut emit = |e: &StoredEvent| -> bool {
        if !keep(e) {
            return true;
        }
        let r = if a.json {
            write_json(&mut out, e)
        } else {
            write_row(&mut out, e)
        };
        if let Err(err) = r {
            write_err = Some(err);
            return false;
        }
        shown += 1;
        shown < limit
    };
    if !a.json {
        let _ = writeln!(
            std::io::stdout(),
            "{:>8}  {:<24}  {:<38}  {:<24}  DATA",
            "SEQ",
            "TIME",
            "STREAM",
            "TYPE"
        );
    }
    match stream {
        Some(s) => {
            let mut cursor = a.after;
            'outer: loop {
                let page = reader
                    .read_stream(s, cursor, super::scan::PAGE)
                    .map_err(|e| e.to_string())?;
                let Some(last) = page.last() else { break };
                cursor = last.seq;
                for e in &page {
                    if !emit(e) {
                        break 'outer;
                    }
                }
            }
        }
        None => for_each_event(reader, a.after, &mut emit).map_err(|e| e.to_string())?,
    }
    if let Some(err) = write_err {
        if err.kind() != std::io::ErrorKind::BrokenPipe {
            return Err(format!("writing output: {err}"));
        }
    }
    let _ = out.flush();
    Ok(ExitCode::SUCCESS)
}

fn write_json(out: &mut impl Write, e: &StoredEvent) -> std::io::Result<()> {
    writeln!(out, "{}", event_json(e))
}

/// A failure on one line: its code and message, then the analyzer's reading and the fixes it
/// suggests (with their config changes), so the table shows why and what to do.
fn failure_line(f: &Failure) -> String {
    let mut s = format!("{}: {}", f.error_code.as_str(), f.detail);
    if let Some(a) = &f.analysis {
        s.push_str(&format!(
            " | analysis: {} ({}): {}",
            a.error_type.as_str(),
            a.confidence.as_str(),
            a.description
        ));
        let tries: Vec<String> = a
            .suggestions
            .iter()
            .map(
                |t| match t.config_changes.0.as_object().filter(|c| !c.is_empty()) {
                    Some(c) => format!("{} {}", t.action, serde_json::Value::Object(c.clone())),
                    None => t.action.clone(),
                },
            )
            .collect();
        if !tries.is_empty() {
            s.push_str(&format!(" | suggestions: {}", tries.join("; ")));
        }
    }
    s.replace('\n', " ")
}

/// The table's DATA for the events that tell a job's story (attempts, failures with their
/// code and analysis, checkpoints, interruptions, resumes, remedies), in words; `None` for the
/// rest, which show their JSON.
fn summary(e: &StoredEvent) -> Option<String> {
    Some(match &e.event {
        Event::JobAttemptStarted(a) => format!("attempt {} started", a.attempt),
        Event::JobAttemptFailed(a) => format!(
            "attempt {} failed ({}): {}",
            a.attempt,
            if a.will_retry {
                "will retry"
            } else {
                "no retry"
            },
            failure_line(&a.failure)
        ),
        Event::JobFailed(f) => format!("failed: {}", failure_line(&f.failure)),
        Event::JobSucceeded(s) => format!("succeeded in attempt {}", s.attempt),
        Event::JobInterrupted(i) => format!("attempt {} interrupted: {}", i.attempt, i.reason),
        Event::JobRetryScheduled(r) => format!(
            "attempt {} in {} ms (after {})",
            r.next_attempt,
            r.delay_ms,
            r.reason.as_str()
        ),
        Event::CheckpointSaved(c) => format!(
            "step {} saved in {} ({} files, {} bytes)",
            c.step,
            c.dir,
            c.files.len(),
            c.files.iter().map(|f| f.size_bytes).sum::<u64>()
        ),
        Event::CheckpointRejected(c) => format!("step {} rejected: {}", c.step, c.reason),
        Event::TrainingResumed(r) => format!(
            "attempt {} resumed from step {}",
            r.attempt, r.resumed_from_step
        ),
        Event::TrainingRemediated(r) => format!(
            "after {}: {} {}",
            r.cause.as_str(),
            r.action,
            r.config_changes.0
        ),
        Event::JobNote(n) => {
            let mut data = n.data.0.to_string();
            truncate(&mut data, 160);
            format!("{}: {data}", n.topic)
        }
        _ => return None,
    })
}

/// Cut `s` to at most `max` bytes (on a char boundary), marking the cut with `…`.
fn truncate(s: &mut String, max: usize) {
    if s.len() > max {
        let cut = (0..=max.saturating_sub(3))
            .rev()
            .find(|i| s.is_char_boundary(*i))
            .unwrap_or(0);
        s.truncate(cut);
        s.push('…');
    }
}

/// The table's DATA for one event: the story's words, else the event's JSON (cut).
pub fn row_data(e: &StoredEvent) -> String {
    summary(e).unwrap_or_else(|| {
        let mut data = event_data(e).to_string();
        truncate(&mut data, 160);
        data
    })
}

fn write_row(out: &mut impl Write, e: &StoredEvent) -> std::io::Result<()> {
    let data = row_data(e);
    writeln!(
        out,
        "{:>8}  {:<24}  {:<38}  {:<24}  {data}",
        e.seq,
        format_ts(e.ts_ms),
        e.stream.to_string(),
        e.event.type_name()
    )
}
