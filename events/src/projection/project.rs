//! The project read model and how project, file and dataset events change it.

use std::collections::BTreeMap;

use serde::Serialize;
use tunewright_schemas::{DatasetId, FileId, ProjectId, ProjectStatus, SplitId};

use crate::event::Event;

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FileView {
    pub id: FileId,
    pub name: String,
    pub media_type: String,
    pub size_bytes: u64,
    pub sha256: String,
    pub stored_path: String,
    pub uploaded_at_ms: i64,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DatasetView {
    pub id: DatasetId,
    pub format: String,
    pub num_examples: u64,
    pub size_bytes: u64,
    pub sha256: String,
    pub stored_path: String,
    pub source: String,
    pub imported_at_ms: i64,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SplitView {
    pub id: SplitId,
    pub name: String,
    pub dataset_id: DatasetId,
    pub ratios: Vec<(String, f64)>,
    pub seed: u64,
    pub counts: Vec<(String, u64)>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ProjectView {
    pub id: ProjectId,
    pub name: String,
    pub status: ProjectStatus,
    pub created_at_ms: i64,
    pub updated_at_ms: i64,
    pub files: BTreeMap<FileId, FileView>,
    pub dataset: Option<DatasetView>,
    pub splits: BTreeMap<String, SplitView>,
}

impl ProjectView {
    pub fn files_total_bytes(&self) -> u64 {
        self.files.values().map(|f| f.size_bytes).sum()
    }
}

/// Apply a project-stream event; `Some(problem)` if it does not fit.
pub(super) fn apply(
    projects: &mut BTreeMap<ProjectId, ProjectView>,
    ts: i64,
    event: &Event,
) -> Option<String> {
    match event {
        Event::ProjectCreated(e) => {
            if projects.contains_key(&e.project_id) {
                return Some(format!("project {} created twice", e.project_id));
            }
            projects.insert(
                e.project_id,
                ProjectView {
                    id: e.project_id,
                    name: e.name.clone(),
                    status: ProjectStatus::Created,
                    created_at_ms: ts,
                    updated_at_ms: ts,
                    files: BTreeMap::new(),
                    dataset: None,
                    splits: BTreeMap::new(),
                },
            );
            None
        }
        Event::ProjectDeleted(e) => match projects.remove(&e.project_id) {
            Some(_) => None,
            None => Some(format!("unknown project {} deleted", e.project_id)),
        },
        Event::ProjectStatusChanged(e) => with_project(projects, e.project_id, ts, |p| {
            if p.status != e.from {
                return Some(format!(
                    "project {} went {} -> {} but was {}",
                    p.id, e.from, e.to, p.status
                ));
            }
            p.status = e.to;
            None
        }),
        Event::FileUploaded(e) => with_project(projects, e.project_id, ts, |p| {
            p.files.insert(
                e.file_id,
                FileView {
                    id: e.file_id,
                    name: e.name.clone(),
                    media_type: e.media_type.clone(),
                    size_bytes: e.size_bytes,
                    sha256: e.sha256.clone(),
                    stored_path: e.stored_path.clone(),
                    uploaded_at_ms: ts,
                },
            );
            None
        }),
        Event::FileDeleted(e) => with_project(projects, e.project_id, ts, |p| {
            match p.files.remove(&e.file_id) {
                Some(_) => None,
                None => Some(format!("unknown file {} deleted", e.file_id)),
            }
        }),
        Event::DatasetImported(e) => with_project(projects, e.project_id, ts, |p| {
            p.dataset = Some(DatasetView {
                id: e.dataset_id,
                format: e.format.clone(),
                num_examples: e.num_examples,
                size_bytes: e.size_bytes,
                sha256: e.sha256.clone(),
                stored_path: e.stored_path.clone(),
                source: e.source.clone(),
                imported_at_ms: ts,
            });
            // Splits belong to a dataset: a new dataset invalidates them.
            p.splits.retain(|_, s| s.dataset_id == e.dataset_id);
            None
        }),
        Event::SplitCreated(e) => with_project(projects, e.project_id, ts, |p| {
            p.splits.insert(
                e.name.clone(),
                SplitView {
                    id: e.split_id,
                    name: e.name.clone(),
                    dataset_id: e.dataset_id,
                    ratios: e.ratios.clone(),
                    seed: e.seed,
                    counts: e.counts.clone(),
                },
            );
            None
        }),
        _ => Some(format!("{} is not a project event", event.type_name())),
    }
}

fn with_project(
    projects: &mut BTreeMap<ProjectId, ProjectView>,
    id: ProjectId,
    ts: i64,
    f: impl FnOnce(&mut ProjectView) -> Option<String>,
) -> Option<String> {
    match projects.get_mut(&id) {
        Some(p) => {
            p.updated_at_ms = ts;
            f(p)
        }
        None => Some(format!("event for unknown project {id}")),
    }
}
