//! Events of a project's own stream: creation, deletion, status changes.

use serde::Serialize;
use tunewright_schemas::{JobId, ProjectId, ProjectStatus};

#[derive(Debug, Clone, PartialEq, Serialize, bincode::Encode, bincode::Decode)]
pub struct ProjectCreated {
    pub project_id: ProjectId,
    pub name: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, bincode::Encode, bincode::Decode)]
pub struct ProjectDeleted {
    pub project_id: ProjectId,
}

/// A transition of the project state machine, with what caused it.
#[derive(Debug, Clone, PartialEq, Serialize, bincode::Encode, bincode::Decode)]
pub struct ProjectStatusChanged {
    pub project_id: ProjectId,
    pub from: ProjectStatus,
    pub to: ProjectStatus,
    /// The job whose start or outcome caused the transition, if any.
    pub job_id: Option<JobId>,
    pub reason: String,
}

impl ProjectCreated {
    pub const NAME: &'static str = "project_created";
}
impl ProjectDeleted {
    pub const NAME: &'static str = "project_deleted";
}
impl ProjectStatusChanged {
    pub const NAME: &'static str = "project_status_changed";
}
