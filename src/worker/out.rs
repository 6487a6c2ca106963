//! Writing protocol lines on stdout: one JSON object per line, flushed at once, from any thread.

use std::io::Write;
use std::sync::Mutex;

use tunewright_schemas::worker::WorkerLine;

static STDOUT: Mutex<()> = Mutex::new(());

/// Emit one line. A closed stdout (the actor is gone) is ignored: the worker keeps going until
/// its next control check, where the closed stdin stops it.
pub fn emit(line: &WorkerLine) {
    let _guard = STDOUT.lock();
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{}", line.to_line());
    let _ = out.flush();
}

/// A human log line: on stderr and as a `log` line for the actor's failure tail.
pub fn log(text: impl Into<String>) {
    let text = text.into();
    eprintln!("{text}");
    emit(&WorkerLine::Log { line: text });
}
