//! Frozen payloads of older event versions, decoded from old logs and upcast to today's.
//!
//! A payload struct, once released, never changes: when one must, its released form moves
//! here with its version in the name, and `codec.rs` decodes it and upcasts it with the `From`
//! below. Nothing here is ever encoded again.

mod failure_v1;

pub use failure_v1::{FailureV1, JobAttemptFailedV1, JobFailedV1};
