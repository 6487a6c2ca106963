//! The `tunewright` binary: CLI, HTTP admin endpoint, wiring and shutdown.
fn main() {}
