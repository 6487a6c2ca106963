//! Projections: pure folds of events into the state of projects and jobs.
//!
//! `State::apply` is the only way state changes, live or in replay. It never fails: an event
//! that does not fit the state (which a correct writer never appends) is counted as an
//! anomaly, which `check_invariants` and `replay verify` report.

mod job;
mod project;

pub use job::{CheckpointView, ChunkDoneView, JobView, ProgressView};
pub use project::{DatasetView, FileView, ProjectView, SplitView};

use std::collections::BTreeMap;

use serde::Serialize;
use tunewright_schemas::{JobId, JobKind, JobStatus, ProjectId};

use crate::event::{Event, StoredEvent};

/// Everything the log says, folded.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct State {
    pub projects: BTreeMap<ProjectId, ProjectView>,
    pub jobs: BTreeMap<JobId, JobView>,
    /// Sequence number of the last applied event.
    pub last_seq: u64,
    /// Events that did not fit the state when applied (should stay empty).
    pub anomalies: Vec<String>,
}

impl State {
    pub fn new() -> Self {
        Self::default()
    }

    /// Fold all `events` in order.
    pub fn from_events<'a>(events: impl IntoIterator<Item = &'a StoredEvent>) -> Self {
        let mut s = State::new();
        for e in events {
            s.apply(e);
        }
        s
    }

    /// Apply one committed event.
    pub fn apply(&mut self, stored: &StoredEvent) {
        if stored.seq != self.last_seq + 1 && self.last_seq != 0 {
            self.anomalies.push(format!(
                "seq {} follows {}: gap or reorder",
                stored.seq, self.last_seq
            ));
        }
        self.last_seq = stored.seq;
        let ts = stored.ts_ms;
        let problem = match &stored.event {
            Event::ProjectCreated(_)
            | Event::ProjectDeleted(_)
            | Event::ProjectStatusChanged(_)
            | Event::FileUploaded(_)
            | Event::FileDeleted(_)
            | Event::DatasetImported(_)
            | Event::SplitCreated(_) => project::apply(&mut self.projects, ts, &stored.event),
            Event::JobCreated(e) if !self.projects.contains_key(&e.project_id) => Some(format!(
                "job {} created for unknown project {}",
                e.job_id, e.project_id
            )),
            Event::JobCreated(_)
            | Event::JobAttemptStarted(_)
            | Event::JobAttemptFailed(_)
            | Event::JobRetryScheduled(_)
            | Event::JobSucceeded(_)
            | Event::JobFailed(_)
            | Event::JobCancelled(_)
            | Event::JobCancelRequested(_)
            | Event::JobInterrupted(_)
            | Event::JobProgress(_)
            | Event::JobNote(_)
            | Event::ArtifactRecorded(_)
            | Event::CheckpointSaved(_)
            | Event::CheckpointRejected(_)
            | Event::TrainingResumed(_)
            | Event::TrainingRemediated(_)
            | Event::ResumeLinked(_)
            | Event::GenerationChunkDone(_) => {
                job::apply(&mut self.jobs, stored.seq, ts, &stored.event)
            }
            Event::ServiceStarted(_)
            | Event::ServiceStopped(_)
            | Event::ActorFailed(_)
            | Event::ActorRestarted(_)
            | Event::SupervisorGaveUp(_) => None,
        };
        if let Event::ResumeLinked(e) = &stored.event {
            if let Some(from) = self.jobs.get_mut(&e.from_job) {
                from.resumed_by_jobs.push(e.job_id);
            }
        }
        if let Event::DatasetImported(e) = &stored.event {
            // A dataset a job generated: the job knows it imported it (an attempt after a
            // crash between the import and the outcome must not import it twice).
            let imported = self
                .projects
                .get(&e.project_id)
                .and_then(|p| p.dataset.clone());
            if let (Ok(job_id), Some(d)) = (e.source.parse::<JobId>(), imported) {
                if let Some(job) = self.jobs.get_mut(&job_id) {
                    job.imported_dataset = Some(d);
                }
            }
        }
        if let Event::ProjectDeleted(e) = &stored.event {
            for job in self
                .jobs
                .values_mut()
                .filter(|j| j.project_id == e.project_id)
            {
                job.project_deleted = true;
            }
        }
        if let Some(p) = problem {
            self.anomalies.push(format!("seq {}: {p}", stored.seq));
        }
    }

    /// Jobs of one project, oldest first.
    pub fn jobs_of(&self, project_id: ProjectId) -> impl Iterator<Item = &JobView> {
        self.jobs
            .values()
            .filter(move |j| j.project_id == project_id)
    }

    /// The trainings waiting for the device, first in line first: queued, in the order they
    /// were created (an interrupted training keeps its place).
    pub fn training_queue(&self) -> Vec<&JobView> {
        let mut queue: Vec<&JobView> = self
            .jobs
            .values()
            .filter(|j| j.kind == JobKind::Train && j.status == JobStatus::Queued)
            .collect();
        queue.sort_by_key(|j| j.created_seq);
        queue
    }

    /// A queued training's place in the device's queue (1: next).
    pub fn queue_position(&self, job: JobId) -> Option<usize> {
        self.training_queue()
            .iter()
            .position(|j| j.id == job)
            .map(|i| i + 1)
    }

    /// Check what must always hold; the first problem found, if any.
    pub fn check_invariants(&self) -> Result<(), String> {
        if let Some(a) = self.anomalies.first() {
            return Err(format!("event did not fit the state: {a}"));
        }
        for job in self.jobs.values() {
            if !self.projects.contains_key(&job.project_id) && !job.project_deleted {
                return Err(format!(
                    "job {} belongs to unknown project {}",
                    job.id, job.project_id
                ));
            }
            if job.attempts == 0 && job.status == tunewright_schemas::JobStatus::Running {
                return Err(format!("job {} is running without an attempt", job.id));
            }
            if job.status == tunewright_schemas::JobStatus::Failed && job.error.is_none() {
                return Err(format!("job {} failed without a failure record", job.id));
            }
        }
        Ok(())
    }
}
