//! tunewright-actors: the supervised actor system.
//!
//! - `admission`: a submitted job judged before anything is written (docs/jobs.md).
//! - `ledger`: the event log plus the live state folded from it (append, apply, answer).
//! - `lifecycle`: the job lifecycle lines operators read in the logs.
//! - `supervisor`: restarts failed actors with backoff, escalates after too many.
//! - `project`: one actor per project, the project state machine (docs/projects.md).
//! - `scheduler`: the job queue and job state machine (docs/jobs.md), retries, recovery.
//! - `policy`: per-kind retry policies and backoff (docs/jobs.md).
//! - `executor`: the protocol job executors implement (generation, training, export).
//! - `evaluate`: the `evaluate` executor (a training's checkpoint scored on a split).
//! - `analyzer`: failure text -> `{error_type, error_phase, description, confidence, suggestions}`.
//! - `hardware`: the cached hardware probe (devices, memory, versions).
//! - `resume`: a failed or cancelled training continued as a new, linked job.
//! - `service`: the facade the HTTP layer and the CLI use.

// `Failure` is the domain's error record (code, detail, context, analysis) and is returned by
// value on purpose; boxing it everywhere would only add noise.
#![allow(clippy::result_large_err)]

pub mod admission;
pub mod analyzer;
pub mod evaluate;
pub mod executor;
pub mod export;
pub mod generation;
pub mod hardware;
pub mod ledger;
pub mod lifecycle;
pub mod policy;
pub mod project;
pub mod resume;
pub mod scheduler;
pub mod service;
pub mod supervisor;
pub mod trainer;

pub use executor::{EventSink, Executors, JobContext, JobExecutor, StopRequest, StopSignal};
pub use ledger::Ledger;
pub use service::{Service, ServiceConfig};
