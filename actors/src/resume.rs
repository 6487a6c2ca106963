//! Resuming a training that failed or was cancelled as a new job linked to it (docs/jobs.md,
//! "Resuming a training"): the earlier run's effective config with the chosen changes applied,
//! judged by admission like any submission, starting from one of the earlier run's checkpoints
//! whose files still hash to what was recorded — or from step 0 when it has none, or when a
//! change is one a checkpoint cannot carry (the base model, the adapter's shape).

use std::collections::BTreeSet;

use serde_json::Value;
use tunewright_events::event::ResumeLinked;
use tunewright_events::projection::{CheckpointView, JobView};
use tunewright_schemas::config::train::CHECKPOINT_BOUND_KEYS;
use tunewright_schemas::config::with_changes;
use tunewright_schemas::{ctx, DataLayout, ErrorCode, Failure, JobId, JobKind, JobStatus};

use crate::trainer::checkpoints::verify;

/// What a resume asks for.
#[derive(Debug, Clone, Default)]
pub struct ResumeRequest {
    /// The checkpoint step to start from (`None`: the newest that verifies).
    pub from_step: Option<u64>,
    /// Config keys to change, with their new values.
    pub config_changes: Value,
}

/// The new job's config and its link to the earlier run.
#[derive(Debug, Clone)]
pub struct ResumePlan {
    pub config: Value,
    pub link: ResumeLinked,
}

fn conflict(job: &JobView, why: &str) -> Failure {
    Failure::new(
        ErrorCode::Conflict,
        ctx! {"reason" => format!("job {} {why}", job.id), "job_id" => job.id.to_string()},
    )
}

/// The keys `changes` sets to something other than what `config` has.
fn changed_keys(config: &Value, changes: &Value) -> Result<Vec<String>, Failure> {
    let Some(changes) = changes.as_object() else {
        return Err(Failure::new(
            ErrorCode::ValidationError,
            ctx! {"reason" => "config_changes must be a JSON object", "field" => "config_changes"},
        ));
    };
    Ok(changes
        .iter()
        .filter(|(k, v)| config.get(k.as_str()) != Some(*v))
        .map(|(k, _)| k.clone())
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect())
}

/// The checkpoint to start from: the one at `step`, or the newest good one; it must verify.
fn checkpoint<'a>(
    job: &'a JobView,
    step: Option<u64>,
    layout: &DataLayout,
) -> Result<Option<&'a CheckpointView>, Failure> {
    let mut good = job.checkpoints.iter().filter(|c| c.rejected.is_none());
    let chosen = match step {
        Some(s) => good.rfind(|c| c.step == s),
        None => good.next_back(),
    };
    let Some(c) = chosen else {
        return match step {
            Some(s) => Err(Failure::new(
                ErrorCode::CheckpointNotFound,
                ctx! {"job_id" => job.id.to_string(), "reason" => format!("it recorded no usable checkpoint at step {s}"), "step" => s},
            )),
            None => Ok(None),
        };
    };
    verify(&layout.resolve(&c.dir), c).map_err(|reason| {
        Failure::new(
            ErrorCode::CheckpointNotFound,
            ctx! {"job_id" => job.id.to_string(), "reason" => format!("the checkpoint at step {} fails its check: {reason}", c.step), "step" => c.step},
        )
    })?;
    Ok(Some(c))
}

/// Plan the resume of `job` (the new job's id is `new_id`).
pub fn plan(
    job: &JobView,
    new_id: JobId,
    request: &ResumeRequest,
    layout: &DataLayout,
) -> Result<ResumePlan, Failure> {
    if job.kind != JobKind::Train {
        return Err(conflict(
            job,
            &format!("is a {} job; only trainings resume", job.kind),
        ));
    }
    match job.status {
        JobStatus::Failed | JobStatus::Cancelled => {}
        JobStatus::Success => return Err(conflict(job, "succeeded: there is nothing to resume")),
        _ => return Err(conflict(job, &format!("is still {}", job.status))),
    }
    let changes = if request.config_changes.is_null() {
        Value::Object(Default::default())
    } else {
        request.config_changes.clone()
    };
    let changed = changed_keys(&job.effective_config.0, &changes)?;
    let fresh = changed
        .iter()
        .any(|k| CHECKPOINT_BOUND_KEYS.contains(&k.as_str()));
    let from_step = if fresh {
        None
    } else {
        checkpoint(job, request.from_step, layout)?.map(|c| c.step)
    };
    Ok(ResumePlan {
        config: with_changes(&job.effective_config.0, &changes),
        link: ResumeLinked {
            job_id: new_id,
            from_job: job.id,
            from_step,
            changed_keys: changed,
        },
    })
}
