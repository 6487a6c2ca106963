//! The API's representations (the README's "Using it"): projects, files, datasets, splits,
//! jobs, events, pages; built from the projections, described for the OpenAPI document.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use tunewright_events::projection::{
    DatasetView, FileView, JobView, ProgressView, ProjectView, SplitView,
};
use tunewright_schemas::{Analysis, Failure, JobKind};
use utoipa::ToSchema;

use tunewright_events::timestamp::format_ts;

#[derive(Debug, Serialize, ToSchema)]
pub struct DatasetOut {
    pub id: String,
    pub num_examples: u64,
    /// `alpaca`, `messages` or `prompt_completion`.
    pub format: String,
    pub size_bytes: u64,
    pub sha256: String,
    /// `upload`, or the id of the generating job.
    pub source: String,
    pub imported_at: String,
}

impl From<&DatasetView> for DatasetOut {
    fn from(d: &DatasetView) -> Self {
        DatasetOut {
            id: d.id.to_string(),
            num_examples: d.num_examples,
            format: d.format.clone(),
            size_bytes: d.size_bytes,
            sha256: d.sha256.clone(),
            source: d.source.clone(),
            imported_at: format_ts(d.imported_at_ms),
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SplitOut {
    pub id: String,
    pub name: String,
    pub dataset_id: String,
    pub ratios: BTreeMap<String, f64>,
    pub seed: u64,
    pub counts: BTreeMap<String, u64>,
}

impl From<&SplitView> for SplitOut {
    fn from(s: &SplitView) -> Self {
        SplitOut {
            id: s.id.to_string(),
            name: s.name.clone(),
            dataset_id: s.dataset_id.to_string(),
            ratios: s.ratios.iter().cloned().collect(),
            seed: s.seed,
            counts: s.counts.iter().cloned().collect(),
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ProjectOut {
    pub id: String,
    pub name: String,
    /// `created`, `generating`, `ready_to_train`, `training` or `completed`.
    pub status: String,
    pub created_at: String,
    pub updated_at: String,
    pub num_files: u64,
    pub files_total_bytes: u64,
    pub dataset: Option<DatasetOut>,
    pub splits: Vec<SplitOut>,
}

impl From<&ProjectView> for ProjectOut {
    fn from(p: &ProjectView) -> Self {
        ProjectOut {
            id: p.id.to_string(),
            name: p.name.clone(),
            status: p.status.as_str().into(),
            created_at: format_ts(p.created_at_ms),
            updated_at: format_ts(p.updated_at_ms),
            num_files: p.files.len() as u64,
            files_total_bytes: p.files_total_bytes(),
            dataset: p.dataset.as_ref().map(DatasetOut::from),
            splits: p.splits.values().map(SplitOut::from).collect(),
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct FileOut {
    pub id: String,
    pub name: String,
    /// Detected from content and name.
    pub media_type: String,
    pub size_bytes: u64,
    pub sha256: String,
    pub uploaded_at: String,
}

impl From<&FileView> for FileOut {
    fn from(f: &FileView) -> Self {
        FileOut {
            id: f.id.to_string(),
            name: f.name.clone(),
            media_type: f.media_type.clone(),
            size_bytes: f.size_bytes,
            sha256: f.sha256.clone(),
            uploaded_at: format_ts(f.uploaded_at_ms),
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SuggestionOut {
    pub action: String,
    pub detail: String,
    #[schema(value_type = Object)]
    pub config_changes: serde_json::Value,
}

/// The failure analysis of docs/errors.md.
#[derive(Debug, Serialize, ToSchema)]
pub struct AnalysisOut {
    /// The job the analysis is of (set by `GET /api/v1/jobs/{id}/analysis`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub job_id: Option<String>,
    pub error_type: String,
    pub error_phase: String,
    pub error_code: String,
    pub description: String,
    /// `high`, `medium` or `low`.
    pub confidence: String,
    pub suggestions: Vec<SuggestionOut>,
}

impl From<&Analysis> for AnalysisOut {
    fn from(a: &Analysis) -> Self {
        AnalysisOut {
            job_id: None,
            error_type: a.error_type.as_str().into(),
            error_phase: a.error_phase.as_str().into(),
            error_code: a.error_code.as_str().into(),
            description: a.description.clone(),
            confidence: a.confidence.as_str().into(),
            suggestions: a
                .suggestions
                .iter()
                .map(|s| SuggestionOut {
                    action: s.action.clone(),
                    detail: s.detail.clone(),
                    config_changes: object(&s.config_changes.0),
                })
                .collect(),
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct JobErrorOut {
    pub error_code: String,
    pub detail: String,
    #[schema(value_type = Object)]
    pub context: serde_json::Value,
    /// Where in the job's life it happened, when known.
    pub phase: Option<String>,
    /// The raw causes, outermost first (e.g. libtorch's message).
    pub cause_chain: Vec<String>,
    /// The last lines the failing process logged.
    pub log_tail: Vec<String>,
    pub analysis: Option<AnalysisOut>,
}

impl From<&Failure> for JobErrorOut {
    fn from(f: &Failure) -> Self {
        JobErrorOut {
            error_code: f.error_code.as_str().into(),
            detail: f.detail.clone(),
            context: object(&f.context.0),
            phase: f.phase.map(|p| p.as_str().to_string()),
            cause_chain: f.cause_chain.clone(),
            log_tail: f.log_tail.clone(),
            analysis: f.analysis.as_ref().map(AnalysisOut::from),
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ProgressOut {
    pub phase: String,
    pub step: u64,
    pub total_steps: u64,
    pub loss: Option<f64>,
    pub learning_rate: Option<f64>,
    pub tokens_per_sec: Option<f64>,
    pub memory_bytes: Option<u64>,
    pub at: String,
}

impl From<&ProgressView> for ProgressOut {
    fn from(p: &ProgressView) -> Self {
        let finite = |v: Option<f64>| v.filter(|x| x.is_finite());
        ProgressOut {
            phase: p.phase.clone(),
            step: p.step,
            total_steps: p.total_steps,
            loss: finite(p.loss),
            learning_rate: finite(p.learning_rate),
            tokens_per_sec: finite(p.tokens_per_sec),
            memory_bytes: p.memory_bytes,
            at: format_ts(p.at_ms),
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct JobOut {
    pub id: String,
    pub project_id: String,
    /// `dataset_preview`, `dataset_generate`, `train`, `export` or `evaluate`.
    pub kind: String,
    /// `queued`, `running`, `retrying`, `cancelling`, `success`, `failed` or `cancelled`
    /// (docs/jobs.md).
    pub status: String,
    #[schema(value_type = Object)]
    pub config: serde_json::Value,
    /// Attempts started so far.
    pub attempts: u32,
    pub max_retries: u32,
    pub created_at: String,
    pub updated_at: String,
    pub retry_due_at: Option<String>,
    /// Set when the job failed.
    pub error: Option<JobErrorOut>,
    pub attempt_errors: Vec<JobErrorOut>,
    pub progress: Option<ProgressOut>,
    #[schema(value_type = Option<Object>)]
    pub result: Option<serde_json::Value>,
    pub resumed_from_step: Option<u64>,
    pub interruptions: u32,
    /// A queued training's place in the device's FIFO queue (1: next).
    pub queue_position: Option<usize>,
    /// The earlier training this one continues, and the checkpoint step it starts from
    /// (`null`: step 0).
    pub resumed_from_job: Option<String>,
    pub resume_from_step: Option<u64>,
    /// Later trainings that continue this one.
    pub resumed_by_jobs: Vec<String>,
}

impl From<&JobView> for JobOut {
    fn from(j: &JobView) -> Self {
        JobOut {
            id: j.id.to_string(),
            project_id: j.project_id.to_string(),
            kind: j.kind.as_str().into(),
            status: j.status.as_str().into(),
            config: object(&j.config.0),
            attempts: j.attempts,
            max_retries: j.max_retries,
            created_at: format_ts(j.created_at_ms),
            updated_at: format_ts(j.updated_at_ms),
            retry_due_at: j.retry_due_at_ms.map(format_ts),
            error: j.error.as_ref().map(JobErrorOut::from),
            attempt_errors: j.attempt_failures.iter().map(JobErrorOut::from).collect(),
            progress: j.progress.as_ref().map(ProgressOut::from),
            result: j.result.as_ref().map(|r| r.0.clone()),
            resumed_from_step: j.resumed_from_step,
            interruptions: j.interruptions,
            queue_position: None,
            resumed_from_job: j.resumed_from_job.map(|id| id.to_string()),
            resume_from_step: j.resume_from_step,
            resumed_by_jobs: j.resumed_by_jobs.iter().map(|id| id.to_string()).collect(),
        }
    }
}

impl JobOut {
    pub fn queued_at(mut self, position: Option<usize>) -> Self {
        self.queue_position = position;
        self
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ArtifactOut {
    pub name: String,
    /// Path relative to the data dir.
    pub path: String,
    pub sha256: String,
}

/// An event as the API shows it (the same shape as `replay list --json`).
#[derive(Debug, Serialize, ToSchema)]
pub struct EventOut {
    pub seq: u64,
    pub ts: String,
    pub stream: String,
    #[serde(rename = "type")]
    pub event_type: String,
    #[schema(value_type = Object)]
    pub data: serde_json::Value,
}

macro_rules! page {
    ($name:ident, $item:ty, $next:ty, $doc:literal) => {
        #[doc = $doc]
        #[derive(Debug, Serialize, ToSchema)]
        pub struct $name {
            pub items: Vec<$item>,
            pub next: Option<$next>,
        }
    };
}

page!(
    ProjectPage,
    ProjectOut,
    String,
    "Projects, oldest first; `next` is the `cursor` of the next page."
);
page!(
    FilePage,
    FileOut,
    String,
    "Files, oldest first; `next` is the `cursor` of the next page."
);
page!(
    JobPage,
    JobOut,
    String,
    "Jobs, oldest first; `next` is the `cursor` of the next page."
);
page!(ArtifactPage, ArtifactOut, String, "Artifacts by name.");
page!(
    EventPage,
    EventOut,
    u64,
    "Events in log order; `next` is the `after` of the next page."
);

/// `POST /api/v1/projects`.
#[derive(Debug, Deserialize, ToSchema)]
pub struct CreateProject {
    /// 1 to 100 printable characters.
    #[schema(
        min_length = 1,
        max_length = 100,
        pattern = r"^[^\x00-\x1f\x7f-\x9f]*\S[^\x00-\x1f\x7f-\x9f]*$"
    )]
    pub name: String,
}

/// `POST /api/v1/projects/{id}/splits` (docs/projects.md).
#[derive(Debug, Deserialize, ToSchema)]
pub struct CreateSplit {
    /// 1 to 64 letters, digits, `-` or `_`.
    #[schema(min_length = 1, max_length = 64, pattern = r"^[A-Za-z0-9_-]+$")]
    pub name: String,
    /// e.g. `{"train": 0.8, "val": 0.2}`; must sum to 1 and include `train` and `val`.
    pub ratios: BTreeMap<String, f64>,
    #[serde(default = "default_seed")]
    pub seed: u64,
}

pub fn default_seed() -> u64 {
    42
}

/// Job kinds as the API names them.
#[derive(Debug, Clone, Copy, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum JobKindIn {
    DatasetPreview,
    DatasetGenerate,
    Train,
    Export,
    Evaluate,
}

impl From<JobKindIn> for JobKind {
    fn from(k: JobKindIn) -> JobKind {
        match k {
            JobKindIn::DatasetPreview => JobKind::DatasetPreview,
            JobKindIn::DatasetGenerate => JobKind::DatasetGenerate,
            JobKindIn::Train => JobKind::Train,
            JobKindIn::Export => JobKind::Export,
            JobKindIn::Evaluate => JobKind::Evaluate,
        }
    }
}

/// `POST /api/v1/projects/{id}/jobs`.
#[derive(Debug, Deserialize, ToSchema)]
pub struct CreateJob {
    pub kind: JobKindIn,
    #[serde(default = "empty_object")]
    #[schema(value_type = Object)]
    pub config: serde_json::Value,
}

fn empty_object() -> serde_json::Value {
    serde_json::json!({})
}

/// `POST /api/v1/jobs/{id}/resume`: continue a failed or cancelled training as a new job.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ResumeJob {
    /// The checkpoint step to start from (default: the newest that verifies).
    pub from_step: Option<u64>,
    /// Config keys to change from the earlier run's config, with their new values.
    #[serde(default = "empty_object")]
    #[schema(value_type = Object)]
    pub config_changes: serde_json::Value,
}

/// `GET` list query: `?cursor=&limit=`.
#[derive(Debug, Deserialize, ToSchema, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PageQuery {
    /// The `next` of the previous page.
    pub cursor: Option<String>,
    /// Items per page, 1 to 1000 (default 100).
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<u32>,
}

pub const DEFAULT_LIMIT: usize = 100;
pub const MAX_LIMIT: usize = 1000;

/// A page size from the query, validated.
pub fn page_limit(limit: Option<u32>) -> Result<usize, super::error::ApiError> {
    match limit {
        None => Ok(DEFAULT_LIMIT),
        Some(n) if (1..=MAX_LIMIT as u32).contains(&n) => Ok(n as usize),
        Some(n) => Err(super::error::ApiError::validation(format!(
            "limit must be between 1 and {MAX_LIMIT}, got {n}"
        ))),
    }
}

/// One page of `items` (in key order) after `cursor`, and the next cursor.
pub fn paginate<K: Ord + std::str::FromStr + ToString + Clone, V, O>(
    map: &BTreeMap<K, V>,
    cursor: Option<&str>,
    limit: usize,
    keep: impl Fn(&V) -> bool,
    out: impl Fn(&V) -> O,
) -> Result<(Vec<O>, Option<String>), super::error::ApiError> {
    use std::ops::Bound;
    let start = match cursor {
        None => Bound::Unbounded,
        Some(c) => Bound::Excluded(c.parse::<K>().map_err(|_| {
            super::error::ApiError::validation(format!(
                "cursor '{}' is not a cursor this list gave",
                super::rejection::clip(c)
            ))
        })?),
    };
    let mut items = Vec::new();
    let mut last = None;
    let mut more = false;
    for (k, v) in map.range((start, Bound::Unbounded)) {
        if !keep(v) {
            continue;
        }
        if items.len() == limit {
            more = true;
            break;
        }
        items.push(out(v));
        last = Some(k.clone());
    }
    let next = if more {
        last.map(|k| k.to_string())
    } else {
        None
    };
    Ok((items, next))
}

/// A JSON object as given, or `{}`.
pub fn object(v: &serde_json::Value) -> serde_json::Value {
    if v.is_object() {
        v.clone()
    } else {
        serde_json::json!({})
    }
}
