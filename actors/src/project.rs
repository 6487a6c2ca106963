//! Project actors, one per project: the project state machine (docs/projects.md), its files,
//! dataset and splits, and the job commands that change its status.
//!
//! A project's commands are serialised by its actor's mailbox: each is validated against the
//! live state, its events committed in one transaction, and only then answered. `Projects` is
//! the handle that finds (or starts, linked to the supervisor) the actor of a project.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use ractor::{Actor, ActorCell, ActorProcessingErr, ActorRef, RpcReplyPort};
use serde::{Deserialize, Serialize};
use tunewright_events::event::*;
use tunewright_events::projection::{DatasetView, FileView, JobView, ProjectView, SplitView};
use tunewright_events::Event;
use tunewright_schemas::{
    ctx, DatasetId, ErrorCode, Failure, FileId, JobId, JobKind, JobStatus, Json, ProjectId,
    ProjectStatus, SplitId,
};

use crate::ledger::Ledger;
use crate::supervisor::{ChildRegistry, ChildSpec};

/// Limits on what a project may hold.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ProjectLimits {
    pub max_total_file_bytes: u64,
    pub max_name_len: usize,
}

impl Default for ProjectLimits {
    fn default() -> Self {
        ProjectLimits {
            max_total_file_bytes: 500 * 1024 * 1024,
            max_name_len: 100,
        }
    }
}

/// A document already stored on disk by the caller, to be recorded.
#[derive(Debug, Clone)]
pub struct FileRecord {
    pub file_id: FileId,
    pub name: String,
    pub media_type: String,
    pub size_bytes: u64,
    pub sha256: String,
    pub stored_path: String,
}

/// A validated dataset already stored on disk, to be recorded.
#[derive(Debug, Clone)]
pub struct DatasetRecord {
    pub dataset_id: DatasetId,
    pub format: String,
    pub num_examples: u64,
    pub size_bytes: u64,
    pub sha256: String,
    pub stored_path: String,
    pub source: String,
}

/// A job to create, with the retry numbers its kind's policy fixes.
#[derive(Debug, Clone)]
pub struct NewJob {
    pub kind: JobKind,
    pub config: serde_json::Value,
    pub max_retries: u32,
    pub queue_timeout_ms: u64,
}

type Reply<T> = RpcReplyPort<Result<T, Failure>>;

pub enum ProjectMsg {
    RecordFile(FileRecord, Reply<FileView>),
    DeleteFile(FileId, Reply<FileView>),
    ImportDataset(DatasetRecord, Reply<DatasetView>),
    CreateSplit {
        name: String,
        ratios: Vec<(String, f64)>,
        seed: u64,
        reply: Reply<SplitView>,
    },
    CreateJob(NewJob, Reply<JobView>),
    /// Record a job's final events (success, failure, cancellation) with the project status
    /// change they imply, in one transaction.
    FinishJob(JobId, Vec<Event>, Reply<()>),
    Delete(Reply<()>),
}

pub fn not_found(id: ProjectId) -> Failure {
    Failure::new(
        ErrorCode::ProjectNotFound,
        ctx! {"project_id" => id.to_string()},
    )
}

fn invalid_status(p: &ProjectView, operation: &str) -> Failure {
    Failure::new(
        ErrorCode::ProjectInvalidStatus,
        ctx! {"project_id" => p.id.to_string(), "status" => p.status.as_str(), "operation" => operation},
    )
}

fn validation(reason: impl Into<String>) -> Failure {
    Failure::new(ErrorCode::ValidationError, ctx! {"reason" => reason.into()})
}

fn status_change(
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

/// The project status a job's creation moves to (docs/projects.md).
pub fn status_on_job_created(kind: JobKind, current: ProjectStatus) -> ProjectStatus {
    match kind {
        JobKind::DatasetGenerate => ProjectStatus::Generating,
        JobKind::Train => ProjectStatus::Training,
        JobKind::DatasetPreview | JobKind::Export => current,
    }
}

/// The project status after a job ends (docs/projects.md): a failed generation stays
/// `generating` (re-runnable); a failed, cancelled or OOM training returns to
/// `ready_to_train`; a failed export stays `completed`.
pub fn status_on_job_finished(kind: JobKind, outcome: JobStatus, p: &ProjectView) -> ProjectStatus {
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

/// Validate a job against its project; the events that create it.
fn create_job(
    p: &ProjectView,
    jobs: &[&JobView],
    new: &NewJob,
) -> Result<(JobId, Vec<Event>), Failure> {
    let active = |j: &&&JobView| !j.status.is_terminal();
    match new.kind {
        JobKind::DatasetPreview | JobKind::DatasetGenerate => {
            if p.status == ProjectStatus::Training {
                return Err(invalid_status(p, &format!("start {}", new.kind)));
            }
            if new.kind == JobKind::DatasetGenerate
                && jobs
                    .iter()
                    .filter(active)
                    .any(|j| j.kind == JobKind::DatasetGenerate)
            {
                return Err(Failure::new(
                    ErrorCode::Conflict,
                    ctx! {"reason" => "a dataset_generate job is already queued or running for this project"},
                ));
            }
            if p.files.is_empty() {
                return Err(Failure::new(
                    ErrorCode::DatasetNoDocs,
                    ctx! {"project_id" => p.id.to_string()},
                ));
            }
        }
        JobKind::Train => {
            if let Some(running) = jobs
                .iter()
                .filter(active)
                .find(|j| j.kind == JobKind::Train)
            {
                return Err(Failure::new(
                    ErrorCode::TrainingAlreadyRunning,
                    ctx! {"running_job_id" => running.id.to_string()},
                ));
            }
            if p.dataset.is_none() {
                return Err(Failure::new(
                    ErrorCode::TrainingNoDataset,
                    ctx! {"project_id" => p.id.to_string()},
                ));
            }
            if !matches!(
                p.status,
                ProjectStatus::ReadyToTrain | ProjectStatus::Completed
            ) {
                return Err(invalid_status(p, "start training"));
            }
            if let Some(split) = new.config.get("split").and_then(|v| v.as_str()) {
                if !p.splits.contains_key(split) {
                    return Err(Failure::new(
                        ErrorCode::SplitNotFound,
                        ctx! {"split" => split, "project_id" => p.id.to_string()},
                    ));
                }
            }
        }
        JobKind::Export => {
            let wanted = new.config.get("train_job").and_then(|v| v.as_str());
            let ok = jobs.iter().any(|j| {
                j.kind == JobKind::Train
                    && j.status == JobStatus::Success
                    && wanted.is_none_or(|w| j.id.to_string() == w)
            });
            if !ok {
                let reason = match wanted {
                    Some(w) => format!("job {w} is not a successful training of this project"),
                    None => "the project has no successful training job".to_string(),
                };
                return Err(Failure::new(
                    ErrorCode::ExportNoRun,
                    ctx! {"reason" => reason},
                ));
            }
        }
    }
    let job_id = JobId::new();
    let mut events = vec![Event::JobCreated(JobCreated {
        job_id,
        project_id: p.id,
        kind: new.kind,
        config: Json(new.config.clone()),
        max_retries: new.max_retries,
        queue_timeout_ms: new.queue_timeout_ms,
    })];
    events.extend(status_change(
        p,
        status_on_job_created(new.kind, p.status),
        Some(job_id),
        &format!("{} job created", new.kind),
    ));
    Ok((job_id, events))
}

/// The split rules of docs/projects.md; the examples per part.
pub fn split_counts(ratios: &[(String, f64)], n: u64) -> Result<Vec<(String, u64)>, Failure> {
    if ratios
        .iter()
        .any(|(k, r)| k.trim().is_empty() || !r.is_finite() || *r < 0.0 || *r > 1.0)
    {
        return Err(validation("each ratio must be named and between 0 and 1"));
    }
    let total: f64 = ratios.iter().map(|(_, r)| r).sum();
    if (total - 1.0).abs() > 0.01 {
        return Err(validation(format!("Ratios must sum to 1.0, got {total}")));
    }
    if !ratios.iter().any(|(k, _)| k == "train") || !ratios.iter().any(|(k, _)| k == "val") {
        return Err(validation("Ratios must include 'train' and 'val'"));
    }
    let mut names = std::collections::HashSet::new();
    if !ratios.iter().all(|(k, _)| names.insert(k)) {
        return Err(validation("ratio names must be unique"));
    }
    let mut counts: Vec<(String, u64)> = ratios
        .iter()
        .map(|(k, r)| (k.clone(), (n as f64 * r / total).floor() as u64))
        .collect();
    let assigned: u64 = counts.iter().map(|(_, c)| c).sum();
    if let Some(train) = counts.iter_mut().find(|(k, _)| k == "train") {
        train.1 += n.saturating_sub(assigned);
    }
    Ok(counts)
}

/// The handle to all project actors.
#[derive(Clone)]
pub struct Projects {
    ledger: Ledger,
    limits: ProjectLimits,
    actors: Arc<Mutex<HashMap<ProjectId, ActorRef<ProjectMsg>>>>,
    spawn_lock: Arc<tokio::sync::Mutex<()>>,
    supervisor: Arc<Mutex<Option<(ActorCell, ChildRegistry)>>>,
}

impl Projects {
    pub fn new(ledger: Ledger, limits: ProjectLimits) -> Self {
        Projects {
            ledger,
            limits,
            actors: Default::default(),
            spawn_lock: Default::default(),
            supervisor: Default::default(),
        }
    }

    /// Project actors started from now on are linked to `supervisor`.
    pub fn attach(&self, supervisor: ActorCell, registry: ChildRegistry) {
        if let Ok(mut s) = self.supervisor.lock() {
            *s = Some((supervisor, registry));
        }
    }

    pub fn ledger(&self) -> &Ledger {
        &self.ledger
    }

    /// Create a project (no actor needed: the id is new).
    pub async fn create(&self, name: &str) -> Result<ProjectView, Failure> {
        let name = name.trim();
        if name.is_empty()
            || name.chars().count() > self.limits.max_name_len
            || name.chars().any(char::is_control)
        {
            return Err(validation(format!(
                "a project name must be 1 to {} printable characters",
                self.limits.max_name_len
            )));
        }
        let id = ProjectId::new();
        self.ledger
            .commit(vec![Event::ProjectCreated(ProjectCreated {
                project_id: id,
                name: name.into(),
            })])
            .await?;
        self.ledger
            .read(|s| s.projects.get(&id).cloned())
            .ok_or_else(|| not_found(id))
    }

    /// The actor of `id`, started if needed; `PROJECT_NOT_FOUND` for an unknown project.
    pub async fn actor(&self, id: ProjectId) -> Result<ActorRef<ProjectMsg>, Failure> {
        if !self.ledger.read(|s| s.projects.contains_key(&id)) {
            return Err(not_found(id));
        }
        if let Some(a) = self.actors.lock().ok().and_then(|m| m.get(&id).cloned()) {
            if a.get_status() == ractor::ActorStatus::Running {
                return Ok(a);
            }
        }
        self.spawn(id).await
    }

    /// Boxed so the restart spec, which calls it again, has a nameable `Send` future.
    fn spawn(
        &self,
        id: ProjectId,
    ) -> std::pin::Pin<
        Box<dyn std::future::Future<Output = Result<ActorRef<ProjectMsg>, Failure>> + Send + '_>,
    > {
        Box::pin(self.spawn_inner(id))
    }

    async fn spawn_inner(&self, id: ProjectId) -> Result<ActorRef<ProjectMsg>, Failure> {
        let _guard = self.spawn_lock.lock().await;
        if let Some(a) = self.actors.lock().ok().and_then(|m| m.get(&id).cloned()) {
            if a.get_status() == ractor::ActorStatus::Running {
                return Ok(a);
            }
        }
        let name = format!("project:{id}");
        let actor = ProjectActor {
            id,
            ledger: self.ledger.clone(),
            limits: self.limits.clone(),
        };
        let sup = self.supervisor.lock().ok().and_then(|s| s.clone());
        let spawned = match &sup {
            Some((cell, registry)) => {
                let projects = self.clone();
                registry.register(ChildSpec::new(name.clone(), move |_sup| {
                    let p = projects.clone();
                    Box::pin(async move {
                        let spawned = p.spawn(id).await;
                        spawned.map(|a| a.get_cell()).map_err(|f| f.detail)
                    })
                }));
                Actor::spawn_linked(Some(name), actor, (), cell.clone()).await
            }
            None => Actor::spawn(Some(name), actor, ()).await,
        };
        let (a, _) = spawned.map_err(|e| {
            Failure::new(ErrorCode::InternalError, ctx! {})
                .caused_by(format!("starting project actor {id}: {e}"))
        })?;
        if let Ok(mut m) = self.actors.lock() {
            m.insert(id, a.clone());
        }
        Ok(a)
    }

    async fn call<T: Send + 'static>(
        &self,
        id: ProjectId,
        msg: impl FnOnce(Reply<T>) -> ProjectMsg,
    ) -> Result<T, Failure> {
        let actor = self.actor(id).await?;
        match actor.call(msg, None).await {
            Ok(ractor::rpc::CallResult::Success(r)) => r,
            Ok(_) | Err(_) => Err(Failure::new(ErrorCode::InternalError, ctx! {})
                .caused_by(format!("project actor {id} stopped before answering"))),
        }
    }

    pub async fn record_file(&self, id: ProjectId, f: FileRecord) -> Result<FileView, Failure> {
        self.call(id, |r| ProjectMsg::RecordFile(f, r)).await
    }

    pub async fn delete_file(&self, id: ProjectId, file: FileId) -> Result<FileView, Failure> {
        self.call(id, |r| ProjectMsg::DeleteFile(file, r)).await
    }

    pub async fn import_dataset(
        &self,
        id: ProjectId,
        d: DatasetRecord,
    ) -> Result<DatasetView, Failure> {
        self.call(id, |r| ProjectMsg::ImportDataset(d, r)).await
    }

    pub async fn create_split(
        &self,
        id: ProjectId,
        name: String,
        ratios: Vec<(String, f64)>,
        seed: u64,
    ) -> Result<SplitView, Failure> {
        self.call(id, |reply| ProjectMsg::CreateSplit {
            name,
            ratios,
            seed,
            reply,
        })
        .await
    }

    pub async fn create_job(&self, id: ProjectId, job: NewJob) -> Result<JobView, Failure> {
        self.call(id, |r| ProjectMsg::CreateJob(job, r)).await
    }

    pub async fn finish_job(
        &self,
        id: ProjectId,
        job: JobId,
        events: Vec<Event>,
    ) -> Result<(), Failure> {
        self.call(id, |r| ProjectMsg::FinishJob(job, events, r))
            .await
    }

    pub async fn delete(&self, id: ProjectId) -> Result<(), Failure> {
        let r = self.call(id, ProjectMsg::Delete).await;
        if r.is_ok() {
            if let Some(a) = self.actors.lock().ok().and_then(|mut m| m.remove(&id)) {
                a.stop(Some("project deleted".into()));
            }
        }
        r
    }
}

/// The actor of one project.
pub struct ProjectActor {
    id: ProjectId,
    ledger: Ledger,
    limits: ProjectLimits,
}

impl ProjectActor {
    fn project(&self) -> Result<ProjectView, Failure> {
        self.ledger
            .read(|s| s.projects.get(&self.id).cloned())
            .ok_or_else(|| not_found(self.id))
    }

    async fn commit_then<T>(
        &self,
        events: Vec<Event>,
        read: impl FnOnce(&tunewright_events::State) -> Option<T>,
    ) -> Result<T, Failure> {
        self.ledger.commit(events).await?;
        self.ledger.read(read).ok_or_else(|| not_found(self.id))
    }

    async fn handle_msg(&self, msg: ProjectMsg) {
        match msg {
            ProjectMsg::RecordFile(f, reply) => {
                let _ = reply.send(self.record_file(f).await);
            }
            ProjectMsg::DeleteFile(file, reply) => {
                let _ = reply.send(self.delete_file(file).await);
            }
            ProjectMsg::ImportDataset(d, reply) => {
                let _ = reply.send(self.import_dataset(d).await);
            }
            ProjectMsg::CreateSplit {
                name,
                ratios,
                seed,
                reply,
            } => {
                let _ = reply.send(self.create_split(name, ratios, seed).await);
            }
            ProjectMsg::CreateJob(job, reply) => {
                let _ = reply.send(self.create_job(job).await);
            }
            ProjectMsg::FinishJob(job, events, reply) => {
                let _ = reply.send(self.finish_job(job, events).await);
            }
            ProjectMsg::Delete(reply) => {
                let _ = reply.send(self.delete().await);
            }
        }
    }

    async fn record_file(&self, f: FileRecord) -> Result<FileView, Failure> {
        let p = self.project()?;
        let total = p.files_total_bytes() + f.size_bytes;
        if total > self.limits.max_total_file_bytes {
            let mb = |b: u64| (b as f64 / 1_048_576.0 * 10.0).round() / 10.0;
            return Err(Failure::new(
                ErrorCode::FileTotalLimit,
                ctx! {"total_mb" => mb(total), "max_total_mb" => mb(self.limits.max_total_file_bytes), "filename" => f.name},
            ));
        }
        let file_id = f.file_id;
        let ev = Event::FileUploaded(FileUploaded {
            project_id: self.id,
            file_id: f.file_id,
            name: f.name,
            media_type: f.media_type,
            size_bytes: f.size_bytes,
            sha256: f.sha256,
            stored_path: f.stored_path,
        });
        self.commit_then(vec![ev], |s| {
            s.projects.get(&self.id)?.files.get(&file_id).cloned()
        })
        .await
    }

    async fn delete_file(&self, file: FileId) -> Result<FileView, Failure> {
        let p = self.project()?;
        let Some(f) = p.files.get(&file).cloned() else {
            return Err(Failure::new(
                ErrorCode::FileNotFound,
                ctx! {"file_id" => file.to_string(), "project_id" => self.id.to_string()},
            ));
        };
        let busy = self.ledger.read(|s| {
            s.jobs_of(self.id).any(|j| {
                !j.status.is_terminal()
                    && matches!(j.kind, JobKind::DatasetGenerate | JobKind::DatasetPreview)
            })
        });
        if busy {
            return Err(invalid_status(
                &p,
                "delete a document while a dataset job reads the documents",
            ));
        }
        self.ledger
            .commit(vec![Event::FileDeleted(FileDeleted {
                project_id: self.id,
                file_id: file,
            })])
            .await?;
        Ok(f)
    }

    async fn import_dataset(&self, d: DatasetRecord) -> Result<DatasetView, Failure> {
        let p = self.project()?;
        if p.status == ProjectStatus::Training {
            return Err(invalid_status(&p, "replace the dataset while training"));
        }
        let mut events = vec![Event::DatasetImported(DatasetImported {
            project_id: self.id,
            dataset_id: d.dataset_id,
            format: d.format,
            num_examples: d.num_examples,
            size_bytes: d.size_bytes,
            sha256: d.sha256,
            stored_path: d.stored_path,
            source: d.source,
        })];
        events.extend(status_change(
            &p,
            ProjectStatus::ReadyToTrain,
            None,
            "dataset imported",
        ));
        self.commit_then(events, |s| s.projects.get(&self.id)?.dataset.clone())
            .await
    }

    async fn create_split(
        &self,
        name: String,
        ratios: Vec<(String, f64)>,
        seed: u64,
    ) -> Result<SplitView, Failure> {
        let p = self.project()?;
        let name = name.trim().to_string();
        if name.is_empty()
            || name.len() > 64
            || !name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        {
            return Err(validation(
                "a split name must be 1 to 64 letters, digits, '-' or '_'",
            ));
        }
        let Some(ds) = p.dataset.as_ref() else {
            return Err(Failure::new(
                ErrorCode::DatasetNotImported,
                ctx! {"project_id" => self.id.to_string()},
            ));
        };
        let counts = split_counts(&ratios, ds.num_examples)?;
        let ev = Event::SplitCreated(SplitCreated {
            project_id: self.id,
            split_id: SplitId::new(),
            name: name.clone(),
            dataset_id: ds.id,
            ratios,
            seed,
            counts,
        });
        self.commit_then(vec![ev], |s| {
            s.projects.get(&self.id)?.splits.get(&name).cloned()
        })
        .await
    }

    async fn create_job(&self, new: NewJob) -> Result<JobView, Failure> {
        let p = self.project()?;
        // This project's jobs, plus every active training (one device: one training at a time).
        let (job_id, events) = self.ledger.read(|s| {
            let relevant: Vec<&JobView> = s
                .jobs
                .values()
                .filter(|j| {
                    j.project_id == self.id || (j.kind == JobKind::Train && !j.status.is_terminal())
                })
                .collect();
            create_job(&p, &relevant, &new)
        })?;
        self.commit_then(events, |s| s.jobs.get(&job_id).cloned())
            .await
    }

    async fn finish_job(&self, job_id: JobId, mut events: Vec<Event>) -> Result<(), Failure> {
        let p = self.project()?;
        let Some(job) = self.ledger.read(|s| s.jobs.get(&job_id).cloned()) else {
            return Err(Failure::new(
                ErrorCode::JobNotFound,
                ctx! {"job_id" => job_id.to_string()},
            ));
        };
        if job.status.is_terminal() {
            return Err(Failure::new(
                ErrorCode::JobAlreadyFinished,
                ctx! {"job_id" => job_id.to_string(), "status" => job.status.as_str()},
            ));
        }
        let outcome = events.iter().rev().find_map(|e| match e {
            Event::JobSucceeded(_) => Some(JobStatus::Success),
            Event::JobFailed(_) => Some(JobStatus::Failed),
            Event::JobCancelled(_) => Some(JobStatus::Cancelled),
            _ => None,
        });
        if let Some(outcome) = outcome {
            let to = status_on_job_finished(job.kind, outcome, &p);
            events.extend(status_change(
                &p,
                to,
                Some(job_id),
                &format!("{} job {}", job.kind, outcome),
            ));
        }
        self.ledger.commit(events).await.map(|_| ())
    }

    async fn delete(&self) -> Result<(), Failure> {
        let _ = self.project()?;
        let active = self.ledger.read(|s| {
            s.jobs_of(self.id)
                .filter(|j| !j.status.is_terminal())
                .count()
        });
        if active > 0 {
            return Err(Failure::new(
                ErrorCode::ProjectDeleteRunning,
                ctx! {"project_id" => self.id.to_string(), "active_jobs" => active},
            ));
        }
        self.ledger
            .commit(vec![Event::ProjectDeleted(ProjectDeleted {
                project_id: self.id,
            })])
            .await
            .map(|_| ())
    }
}

impl Actor for ProjectActor {
    type Msg = ProjectMsg;
    type State = ();
    type Arguments = ();

    async fn pre_start(&self, _me: ActorRef<Self::Msg>, _: ()) -> Result<(), ActorProcessingErr> {
        Ok(())
    }

    async fn handle(
        &self,
        _me: ActorRef<Self::Msg>,
        msg: Self::Msg,
        _: &mut (),
    ) -> Result<(), ActorProcessingErr> {
        self.handle_msg(msg).await;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_validation_follows_seed_002() {
        let r = |v: &[(&str, f64)]| {
            v.iter()
                .map(|(k, r)| (k.to_string(), *r))
                .collect::<Vec<_>>()
        };
        assert_eq!(
            split_counts(&r(&[("train", 0.8), ("val", 0.2)]), 101).unwrap(),
            vec![("train".into(), 81), ("val".into(), 20)]
        );
        assert!(split_counts(&r(&[("train", 0.8), ("val", 0.1)]), 10)
            .unwrap_err()
            .detail
            .contains("sum to 1.0"));
        assert!(split_counts(&r(&[("train", 0.8), ("test", 0.2)]), 10)
            .unwrap_err()
            .detail
            .contains("'train' and 'val'"));
        assert!(
            split_counts(&r(&[("train", 0.805), ("val", 0.2)]), 10).is_ok(),
            "within 0.01"
        );
        assert!(split_counts(&r(&[("train", f64::NAN), ("val", 0.2)]), 10).is_err());
    }
}
