//! The data directory's layout: the one place that says where each file of the service lives.
//!
//! ```text
//! DATA_DIR/
//!   events.redb                               the event log
//!   logs/tunewright.YYYY-MM-DD.log            daily log files (unless --log-dir says otherwise)
//!   projects/<project>/files/<file>           uploaded documents
//!   projects/<project>/datasets/<dataset>.jsonl  uploaded datasets
//!   jobs/<job>/                               a job's own files:
//!     checkpoints/step-<n>/                   training checkpoints
//!     adapter/                                the trained adapter
//!     chunks/<index>.json                     finished generation chunks
//!     dataset.jsonl                           a generated dataset
//!     <format>/                               an export
//!     eval-examples.jsonl                     the examples an evaluation scores
//!     generations.jsonl                       an evaluation's greedy answers
//! ```
//!
//! Events record paths relative to the data directory (`rel_*`), so a data directory can move;
//! `DataLayout` turns them into real paths. Computing a path is not I/O: nothing here touches
//! the disk.

use std::path::{Path, PathBuf};

use crate::{DatasetId, FileId, JobId, ProjectId};

/// Where things live under one data directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DataLayout {
    root: PathBuf,
}

/// The event log's file name.
pub const EVENT_LOG_FILE: &str = "events.redb";

impl DataLayout {
    pub fn new(root: impl Into<PathBuf>) -> Self {
        DataLayout { root: root.into() }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// A path recorded relative to the data directory, made real (an absolute one is kept).
    pub fn resolve(&self, recorded: &str) -> PathBuf {
        let p = Path::new(recorded);
        if p.is_absolute() {
            p.to_path_buf()
        } else {
            self.root.join(p)
        }
    }

    /// `path` relative to the data directory when it lies under it, else as given.
    pub fn relative(&self, path: &Path) -> String {
        path.strip_prefix(&self.root)
            .unwrap_or(path)
            .to_string_lossy()
            .into_owned()
    }

    pub fn event_log(&self) -> PathBuf {
        self.root.join(EVENT_LOG_FILE)
    }

    pub fn default_log_dir(&self) -> PathBuf {
        self.root.join("logs")
    }

    pub fn projects_dir(&self) -> PathBuf {
        self.root.join("projects")
    }

    pub fn project_dir(&self, project: ProjectId) -> PathBuf {
        self.projects_dir().join(project.to_string())
    }

    /// The directory of a project's documents, given the project's directory name.
    pub fn files_dir_of(project_dir: &Path) -> PathBuf {
        project_dir.join("files")
    }

    pub fn rel_file(project: ProjectId, file: FileId) -> String {
        format!("projects/{project}/files/{file}")
    }

    pub fn rel_uploaded_dataset(project: ProjectId, dataset: DatasetId) -> String {
        format!("projects/{project}/datasets/{dataset}.jsonl")
    }

    pub fn job_dir(&self, job: JobId) -> PathBuf {
        self.root.join("jobs").join(job.to_string())
    }

    pub fn checkpoints_dir(&self, job: JobId) -> PathBuf {
        self.job_dir(job).join("checkpoints")
    }

    pub fn adapter_dir(&self, job: JobId) -> PathBuf {
        self.job_dir(job).join("adapter")
    }

    /// The trained adapter's directory as events record it (relative to the data directory).
    pub fn rel_adapter_dir(job: JobId) -> String {
        format!("jobs/{job}/adapter")
    }

    pub fn chunk_file(&self, job: JobId, index: u32) -> PathBuf {
        self.job_dir(job)
            .join("chunks")
            .join(format!("{index:06}.json"))
    }

    pub fn rel_generated_dataset(job: JobId) -> String {
        format!("jobs/{job}/dataset.jsonl")
    }

    pub fn export_dir(&self, job: JobId, format: &str) -> PathBuf {
        self.job_dir(job).join(format)
    }

    /// The examples of a split's `part` a training reads (`train`, or `val` for its evaluation).
    pub fn split_part(&self, job: JobId, part: &str) -> PathBuf {
        self.job_dir(job).join(format!("{part}-part.jsonl"))
    }

    /// The examples an `evaluate` job scores (the split's part it reads, one JSON per line).
    pub fn eval_examples(&self, job: JobId) -> PathBuf {
        self.job_dir(job).join("eval-examples.jsonl")
    }

    /// The greedy answers an `evaluate` job writes beside their references.
    pub fn generations(&self, job: JobId) -> PathBuf {
        self.job_dir(job).join("generations.jsonl")
    }

    /// The studio's saved reading of a finished job (a cache: rebuilt from the log when absent).
    pub fn studio_reading(&self, job: JobId) -> PathBuf {
        self.job_dir(job).join("studio-reading.bin")
    }

    /// The spec file a worker run of `job` reads (`name` says which run).
    pub fn worker_spec(&self, job: JobId, name: &str) -> PathBuf {
        self.job_dir(job).join(format!("{name}.json"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recorded_paths_are_relative_and_resolve_under_the_root() {
        let l = DataLayout::new("/srv/tw");
        let (p, f) = (ProjectId::new(), FileId::new());
        let rel = DataLayout::rel_file(p, f);
        assert!(!Path::new(&rel).is_absolute());
        assert_eq!(l.resolve(&rel), Path::new("/srv/tw").join(&rel));
        assert_eq!(l.resolve("/elsewhere/x"), PathBuf::from("/elsewhere/x"));
        assert_eq!(l.relative(&l.resolve(&rel)), rel);
        let j = JobId::new();
        assert!(l.checkpoints_dir(j).starts_with(l.job_dir(j)));
        assert_eq!(l.resolve(&DataLayout::rel_adapter_dir(j)), l.adapter_dir(j));
        assert_eq!(
            l.resolve(&DataLayout::rel_generated_dataset(j)),
            l.job_dir(j).join("dataset.jsonl")
        );
    }
}
