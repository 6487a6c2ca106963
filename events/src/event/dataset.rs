//! Events of a project's files and datasets: uploads, deletions, imports, splits.
//!
//! Files on disk are referenced with their sha256, so replay can tell a missing or damaged file.

use serde::Serialize;
use tunewright_schemas::{DatasetId, FileId, ProjectId, SplitId};

/// A document stored (fsynced and renamed into place) before this event was appended.
#[derive(Debug, Clone, PartialEq, Serialize, bincode::Encode, bincode::Decode)]
pub struct FileUploaded {
    pub project_id: ProjectId,
    pub file_id: FileId,
    /// The name the user gave (validated), shown back to them.
    pub name: String,
    /// The type detected from content and name, e.g. `text/markdown`, `application/pdf`.
    pub media_type: String,
    pub size_bytes: u64,
    pub sha256: String,
    /// Path relative to the data dir.
    pub stored_path: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, bincode::Encode, bincode::Decode)]
pub struct FileDeleted {
    pub project_id: ProjectId,
    pub file_id: FileId,
}

/// A validated SFT dataset now belongs to the project (uploaded or generated).
#[derive(Debug, Clone, PartialEq, Serialize, bincode::Encode, bincode::Decode)]
pub struct DatasetImported {
    pub project_id: ProjectId,
    pub dataset_id: DatasetId,
    /// `alpaca`, `messages` or `prompt_completion`.
    pub format: String,
    pub num_examples: u64,
    pub size_bytes: u64,
    pub sha256: String,
    /// Path relative to the data dir.
    pub stored_path: String,
    /// `upload`, or the id of the generating job.
    pub source: String,
}

/// A named split of the project's dataset.
#[derive(Debug, Clone, PartialEq, Serialize, bincode::Encode, bincode::Decode)]
pub struct SplitCreated {
    pub project_id: ProjectId,
    pub split_id: SplitId,
    pub name: String,
    pub dataset_id: DatasetId,
    /// e.g. `[("train", 0.8), ("val", 0.2)]`, in the order given.
    pub ratios: Vec<(String, f64)>,
    pub seed: u64,
    /// Examples per part, e.g. `[("train", 160), ("val", 40)]`.
    pub counts: Vec<(String, u64)>,
}

impl FileUploaded {
    pub const NAME: &'static str = "file_uploaded";
}
impl FileDeleted {
    pub const NAME: &'static str = "file_deleted";
}
impl DatasetImported {
    pub const NAME: &'static str = "dataset_imported";
}
impl SplitCreated {
    pub const NAME: &'static str = "split_created";
}
