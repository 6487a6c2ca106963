//! tunewright-actors: the supervised actor system.
//!
//! The supervisor, one actor per project, the job scheduler, the trainer (which supervises a
//! worker process that owns the torch device), the failure analyzer, the dataset generator
//! and the exporter. Actors validate commands against state folded from the event log,
//! append events, and only then apply them.
