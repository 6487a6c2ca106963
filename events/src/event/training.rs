//! Events of training jobs: checkpoints, resumes, remediation, and of generation jobs.

use serde::Serialize;
use tunewright_schemas::{ErrorCode, JobId, Json};

/// A file of a checkpoint or export with its content hash.
#[derive(Debug, Clone, PartialEq, Serialize, bincode::Encode, bincode::Decode)]
pub struct FileDigest {
    pub name: String,
    pub sha256: String,
    pub size_bytes: u64,
}

/// A checkpoint was written atomically (temp dir, fsync, rename) before this event.
#[derive(Debug, Clone, PartialEq, Serialize, bincode::Encode, bincode::Decode)]
pub struct CheckpointSaved {
    pub job_id: JobId,
    pub step: u64,
    /// Directory relative to the data dir.
    pub dir: String,
    pub files: Vec<FileDigest>,
}

/// A checkpoint failed its hash check (or is gone) and will not be resumed from.
#[derive(Debug, Clone, PartialEq, Serialize, bincode::Encode, bincode::Decode)]
pub struct CheckpointRejected {
    pub job_id: JobId,
    pub step: u64,
    pub reason: String,
}

/// A new attempt continues from a checkpoint.
#[derive(Debug, Clone, PartialEq, Serialize, bincode::Encode, bincode::Decode)]
pub struct TrainingResumed {
    pub job_id: JobId,
    pub attempt: u32,
    pub resumed_from_step: u64,
}

/// An opt-in remediation changed the config for the next attempt (e.g. after an OOM).
#[derive(Debug, Clone, PartialEq, Serialize, bincode::Encode, bincode::Decode)]
pub struct TrainingRemediated {
    pub job_id: JobId,
    pub cause: ErrorCode,
    /// What was done, e.g. "halved micro-batch, doubled gradient accumulation".
    pub action: String,
    pub config_changes: Json,
}

/// A new training continues an earlier one that failed or was cancelled: from the earlier
/// run's checkpoint at `from_step`, or from step 0 (`None`: no verified checkpoint, or a
/// config change a checkpoint cannot carry). Recorded with the new job's creation.
#[derive(Debug, Clone, PartialEq, Serialize, bincode::Encode, bincode::Decode)]
pub struct ResumeLinked {
    pub job_id: JobId,
    pub from_job: JobId,
    pub from_step: Option<u64>,
    /// The config keys changed from the earlier run's effective config.
    pub changed_keys: Vec<String>,
}

/// One document chunk was turned into examples (or given up on) by a generation job.
#[derive(Debug, Clone, PartialEq, Serialize, bincode::Encode, bincode::Decode)]
pub struct GenerationChunkDone {
    pub job_id: JobId,
    pub chunk_index: u32,
    pub examples: u32,
    /// Which step of the JSON repair pipeline succeeded (`strict`, `strip_fences`,
    /// `extract`, `fix_common`, `llm_repair`) or `rejected`.
    pub repair_step: String,
}

impl CheckpointSaved {
    pub const NAME: &'static str = "checkpoint_saved";
}
impl CheckpointRejected {
    pub const NAME: &'static str = "checkpoint_rejected";
}
impl TrainingResumed {
    pub const NAME: &'static str = "training_resumed";
}
impl TrainingRemediated {
    pub const NAME: &'static str = "training_remediated";
}
impl ResumeLinked {
    pub const NAME: &'static str = "resume_linked";
}
impl GenerationChunkDone {
    pub const NAME: &'static str = "generation_chunk_done";
}
