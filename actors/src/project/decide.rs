//! The project's decisions: each command, judged against the state, gives the events that
//! carry it out, or the failure that refuses it. Pure: no I/O, no clock, no randomness (new
//! ids come in the command), so every rule here is tested without actors and serves the API,
//! the CLI and the studio alike. The project actor commits what these return.

use tunewright_events::event::*;
use tunewright_events::projection::{JobView, ProjectView};
use tunewright_events::{Event, State};
use tunewright_schemas::config::JobConfig;
use tunewright_schemas::{
    ctx, DatasetId, ErrorCode, Failure, FileId, JobId, JobKind, JobStatus, Json, ProjectId,
    ProjectStatus, SplitId,
};

use super::split::split_counts;
use super::status;

/// Limits on what a project may hold.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
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

/// An admitted job to create, with the retry numbers its kind's policy fixes.
#[derive(Debug, Clone)]
pub struct NewJob {
    pub id: JobId,
    pub config: JobConfig,
    /// The config as it is recorded (admission may have pinned a model revision).
    pub recorded: serde_json::Value,
    pub max_retries: u32,
    pub queue_timeout_ms: u64,
    /// The earlier training this one continues, when it does.
    pub resumes: Option<ResumeLinked>,
}

/// What can be asked of an existing project.
#[derive(Debug, Clone)]
pub enum Command {
    RecordFile(FileRecord),
    DeleteFile(FileId),
    ImportDataset(DatasetRecord),
    CreateSplit {
        split_id: SplitId,
        name: String,
        ratios: Vec<(String, f64)>,
        seed: u64,
    },
    CreateJob(Box<NewJob>),
    /// Record a job's final events (success, failure, cancellation) with the project status
    /// change they imply.
    FinishJob(JobId, Vec<Event>),
    Delete,
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

pub fn validation(reason: impl Into<String>) -> Failure {
    Failure::new(ErrorCode::ValidationError, ctx! {"reason" => reason.into()})
}

/// Creating a project: the name is 1 to `max_name_len` printable characters.
pub fn create_project(
    id: ProjectId,
    name: &str,
    limits: &ProjectLimits,
) -> Result<Vec<Event>, Failure> {
    let name = name.trim();
    if name.is_empty()
        || name.chars().count() > limits.max_name_len
        || name.chars().any(char::is_control)
    {
        return Err(validation(format!(
            "a project name must be 1 to {} printable characters",
            limits.max_name_len
        )));
    }
    Ok(vec![Event::ProjectCreated(ProjectCreated {
        project_id: id,
        name: name.into(),
    })])
}

/// Judge `command` on project `id`.
pub fn decide(
    state: &State,
    id: ProjectId,
    limits: &ProjectLimits,
    command: &Command,
) -> Result<Vec<Event>, Failure> {
    let p = state.projects.get(&id).ok_or_else(|| not_found(id))?;
    match command {
        Command::RecordFile(f) => record_file(p, limits, f),
        Command::DeleteFile(file) => delete_file(state, p, *file),
        Command::ImportDataset(d) => import_dataset(p, d),
        Command::CreateSplit {
            split_id,
            name,
            ratios,
            seed,
        } => create_split(p, *split_id, name, ratios, *seed),
        Command::CreateJob(new) => create_job(state, p, new),
        Command::FinishJob(job, events) => finish_job(state, p, *job, events),
        Command::Delete => delete(state, p),
    }
}

fn record_file(
    p: &ProjectView,
    limits: &ProjectLimits,
    f: &FileRecord,
) -> Result<Vec<Event>, Failure> {
    let total = p.files_total_bytes() + f.size_bytes;
    if total > limits.max_total_file_bytes {
        let mb = |b: u64| (b as f64 / 1_048_576.0 * 10.0).round() / 10.0;
        return Err(Failure::new(
            ErrorCode::FileTotalLimit,
            ctx! {"total_mb" => mb(total), "max_total_mb" => mb(limits.max_total_file_bytes), "filename" => f.name.clone()},
        ));
    }
    Ok(vec![Event::FileUploaded(FileUploaded {
        project_id: p.id,
        file_id: f.file_id,
        name: f.name.clone(),
        media_type: f.media_type.clone(),
        size_bytes: f.size_bytes,
        sha256: f.sha256.clone(),
        stored_path: f.stored_path.clone(),
    })])
}

fn active<'a>(state: &'a State, p: &ProjectView) -> impl Iterator<Item = &'a JobView> {
    state.jobs_of(p.id).filter(|j| !j.status.is_terminal())
}

fn delete_file(state: &State, p: &ProjectView, file: FileId) -> Result<Vec<Event>, Failure> {
    if !p.files.contains_key(&file) {
        return Err(Failure::new(
            ErrorCode::FileNotFound,
            ctx! {"file_id" => file.to_string(), "project_id" => p.id.to_string()},
        ));
    }
    if active(state, p)
        .any(|j| matches!(j.kind, JobKind::DatasetGenerate | JobKind::DatasetPreview))
    {
        return Err(invalid_status(
            p,
            "delete a document while a dataset job reads the documents",
        ));
    }
    Ok(vec![Event::FileDeleted(FileDeleted {
        project_id: p.id,
        file_id: file,
    })])
}

fn import_dataset(p: &ProjectView, d: &DatasetRecord) -> Result<Vec<Event>, Failure> {
    if p.status == ProjectStatus::Training {
        return Err(invalid_status(p, "replace the dataset while training"));
    }
    let mut events = vec![Event::DatasetImported(DatasetImported {
        project_id: p.id,
        dataset_id: d.dataset_id,
        format: d.format.clone(),
        num_examples: d.num_examples,
        size_bytes: d.size_bytes,
        sha256: d.sha256.clone(),
        stored_path: d.stored_path.clone(),
        source: d.source.clone(),
    })];
    events.extend(status::change(
        p,
        ProjectStatus::ReadyToTrain,
        None,
        "dataset imported",
    ));
    Ok(events)
}

fn create_split(
    p: &ProjectView,
    split_id: SplitId,
    name: &str,
    ratios: &[(String, f64)],
    seed: u64,
) -> Result<Vec<Event>, Failure> {
    let name = name.trim();
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
            ctx! {"project_id" => p.id.to_string()},
        ));
    };
    let counts = split_counts(ratios, ds.num_examples)?;
    Ok(vec![Event::SplitCreated(SplitCreated {
        project_id: p.id,
        split_id,
        name: name.to_string(),
        dataset_id: ds.id,
        ratios: ratios.to_vec(),
        seed,
        counts,
    })])
}

/// What a job of `kind` needs of its project; the config as it will be recorded (an export
/// names the run it exports, an evaluation its checkpoint and split).
fn job_rules(state: &State, p: &ProjectView, new: &NewJob) -> Result<serde_json::Value, Failure> {
    let mut recorded = new.recorded.clone();
    match &new.config {
        JobConfig::DatasetPreview(_) | JobConfig::DatasetGenerate(_) => {
            let kind = new.config.kind();
            if p.status == ProjectStatus::Training {
                return Err(invalid_status(p, &format!("start {kind}")));
            }
            if kind == JobKind::DatasetGenerate
                && active(state, p).any(|j| j.kind == JobKind::DatasetGenerate)
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
        JobConfig::Train(t) => {
            // One training per project at a time; trainings of different projects wait for
            // the device in the scheduler's queue (docs/jobs.md, "The training queue").
            if let Some(other) = active(state, p).find(|j| j.kind == JobKind::Train) {
                return Err(Failure::new(
                    ErrorCode::TrainingAlreadyRunning,
                    ctx! {"running_job_id" => other.id.to_string(), "project_id" => p.id.to_string()},
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
            if let Some(split) = &t.split {
                if !p.splits.contains_key(split) {
                    return Err(Failure::new(
                        ErrorCode::SplitNotFound,
                        ctx! {"split" => split.clone(), "project_id" => p.id.to_string()},
                    ));
                }
            }
        }
        JobConfig::Evaluate(e) => {
            // What it reads (docs/jobs.md, "Evaluate"); the file hashes are checked by the
            // service before this decision (I/O) and again when the job starts.
            let plan = crate::admission::evaluate::plan(state, p, e)?;
            if let Some(obj) = recorded.as_object_mut() {
                obj.insert(
                    "train_job".into(),
                    serde_json::json!(plan.run.id.to_string()),
                );
                obj.insert("checkpoint_step".into(), e.checkpoint.to_json());
                match &plan.split {
                    Some(s) => obj.insert("split".into(), serde_json::json!(s.name)),
                    None => obj.remove("split"),
                };
            }
        }
        JobConfig::Export(e) => {
            let run = exportable_run(state, p, e.train_job)?;
            if let Some(obj) = recorded.as_object_mut() {
                obj.remove("train_job_id");
                obj.insert("train_job".into(), serde_json::json!(run.to_string()));
            }
        }
    }
    Ok(recorded)
}

/// The training an export exports: the one named, or the project's newest successful one.
fn exportable_run(state: &State, p: &ProjectView, wanted: Option<JobId>) -> Result<JobId, Failure> {
    let runs = state
        .jobs_of(p.id)
        .filter(|j| j.kind == JobKind::Train && j.status == JobStatus::Success);
    let found = match wanted {
        Some(w) => runs.filter(|j| j.id == w).last(),
        None => runs.max_by_key(|j| (j.updated_at_ms, j.id)),
    };
    found.map(|j| j.id).ok_or_else(|| {
        let reason = match wanted {
            Some(w) => format!("job {w} is not a successful training of this project"),
            None => "the project has no successful training job".to_string(),
        };
        Failure::new(ErrorCode::ExportNoRun, ctx! {"reason" => reason})
    })
}

fn create_job(state: &State, p: &ProjectView, new: &NewJob) -> Result<Vec<Event>, Failure> {
    let kind = new.config.kind();
    let recorded = job_rules(state, p, new)?;
    let mut events = vec![Event::JobCreated(JobCreated {
        job_id: new.id,
        project_id: p.id,
        kind,
        config: Json(recorded),
        max_retries: new.max_retries,
        queue_timeout_ms: new.queue_timeout_ms,
    })];
    if let Some(link) = &new.resumes {
        let from = state.jobs.get(&link.from_job);
        if from.is_none_or(|j| j.project_id != p.id || j.kind != JobKind::Train) {
            return Err(validation(format!(
                "job {} is not a training of project {}",
                link.from_job, p.id
            )));
        }
        events.push(Event::ResumeLinked(link.clone()));
    }
    events.extend(status::change(
        p,
        status::on_job_created(kind, p.status),
        Some(new.id),
        &format!("{kind} job created"),
    ));
    Ok(events)
}

fn finish_job(
    state: &State,
    p: &ProjectView,
    job_id: JobId,
    events: &[Event],
) -> Result<Vec<Event>, Failure> {
    let Some(job) = state.jobs.get(&job_id) else {
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
    let mut out = events.to_vec();
    if let Some(outcome) = outcome {
        let to = status::on_job_finished(job.kind, outcome, p);
        out.extend(status::change(
            p,
            to,
            Some(job_id),
            &format!("{} job {}", job.kind, outcome),
        ));
    }
    Ok(out)
}

fn delete(state: &State, p: &ProjectView) -> Result<Vec<Event>, Failure> {
    let active = active(state, p).count();
    if active > 0 {
        return Err(Failure::new(
            ErrorCode::ProjectDeleteRunning,
            ctx! {"project_id" => p.id.to_string(), "active_jobs" => active},
        ));
    }
    Ok(vec![Event::ProjectDeleted(ProjectDeleted {
        project_id: p.id,
    })])
}
