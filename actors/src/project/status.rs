//! The project state machine's moves on a job's creation and end (docs/projects.md).

use tunewright_events::event::{Event, ProjectStatusChanged};
use tunewright_events::projection::ProjectView;
use tunewright_schemas::{JobId, JobKind, JobStatus, ProjectStatus};

/// The project status a job's creation moves to.
pub fn on_job_created(kind: JobKind, current: ProjectStatus) -> ProjectStatus {
    match kind {
        JobKind::DatasetGenerate => ProjectStatus::Generating,
        JobKind::Train => ProjectStatus::Training,
        JobKind::DatasetPreview | JobKind::Export | JobKind::Evaluate => current,
    }
}

/// The project status after a job ends: a failed generation stays `generating`
/// (re-runnable); a failed, cancelled or out-of-memory training returns to `ready_to_train`; a
/// failed export stays `completed`.
pub fn on_job_finished(kind: JobKind, outcome: JobStatus, p: &ProjectView) -> ProjectStatus {
    match (kind, outcome) {
        (JobKind::DatasetGenerate, JobStatus::Success) if p.dataset.is_some() => {
            ProjectStatus::ReadyToTrain
        }
        (JobKind::DatasetGenerate, JobStatus::Cancelled) => {
            if p.dataset.is_some() {
                ProjectStatus::ReadyToTrain
            } else {
                ProjectStatus::Created
            }
        }
        (JobKind::Train, JobStatus::Success) => ProjectStatus::Completed,
        (JobKind::Train, _) if p.status == ProjectStatus::Training => ProjectStatus::ReadyToTrain,
        _ => p.status,
    }
}

/// The event moving `p` to `to`, unless it is there already.
pub fn change(
    p: &ProjectView,
    to: ProjectStatus,
    job: Option<JobId>,
    reason: &str,
) -> Option<Event> {
    (p.status != to).then(|| {
        Event::ProjectStatusChanged(ProjectStatusChanged {
            project_id: p.id,
            from: p.status,
            to,
            job_id: job,
            reason: reason.into(),
        })
    })
}
