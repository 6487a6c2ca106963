//! Version 1 of the failure record (before it carried its phase) and of the two job events
//! that embed it, `job_attempt_failed` and `job_failed`.
//!
//! Upcast: the phase of a v1 failure is read from its context's `phase` field where the code
//! that failed wrote one (the trainer did for out-of-memory and libtorch failures), else none.

use tunewright_schemas::{Analysis, ErrorCode, ErrorPhase, Failure, JobId, Json};

#[derive(Debug, Clone, PartialEq, bincode::Encode, bincode::Decode)]
pub struct FailureV1 {
    pub error_code: ErrorCode,
    pub detail: String,
    pub context: Json,
    pub cause_chain: Vec<String>,
    pub log_tail: Vec<String>,
    pub analysis: Option<Analysis>,
}

#[derive(Debug, Clone, PartialEq, bincode::Encode, bincode::Decode)]
pub struct JobAttemptFailedV1 {
    pub job_id: JobId,
    pub attempt: u32,
    pub failure: FailureV1,
    pub will_retry: bool,
}

#[derive(Debug, Clone, PartialEq, bincode::Encode, bincode::Decode)]
pub struct JobFailedV1 {
    pub job_id: JobId,
    pub failure: FailureV1,
}

/// The phase words v1 failures carried in their context.
fn recorded_phase(context: &Json) -> Option<ErrorPhase> {
    let word = context.0.get("phase")?.as_str()?;
    match word {
        "forward" | "backward" | "optimizer" => Some(ErrorPhase::Training),
        "model load" => Some(ErrorPhase::ModelLoad),
        other => other.parse().ok(),
    }
}

impl From<FailureV1> for Failure {
    fn from(v1: FailureV1) -> Failure {
        Failure {
            phase: recorded_phase(&v1.context),
            error_code: v1.error_code,
            detail: v1.detail,
            context: v1.context,
            cause_chain: v1.cause_chain,
            log_tail: v1.log_tail,
            analysis: v1.analysis,
        }
    }
}

impl From<JobAttemptFailedV1> for crate::event::JobAttemptFailed {
    fn from(v1: JobAttemptFailedV1) -> Self {
        crate::event::JobAttemptFailed {
            job_id: v1.job_id,
            attempt: v1.attempt,
            failure: v1.failure.into(),
            will_retry: v1.will_retry,
        }
    }
}

impl From<JobFailedV1> for crate::event::JobFailed {
    fn from(v1: JobFailedV1) -> Self {
        crate::event::JobFailed {
            job_id: v1.job_id,
            failure: v1.failure.into(),
        }
    }
}
