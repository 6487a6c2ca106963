//! Events: every state change of tunewright, as versioned, frozen payload structs.
//!
//! Each event type has a fixed `TYPE_ID` and a `VERSION`; both are written into the log next
//! to the bincode-encoded payload, so the position of a variant in `Event` never matters.
//! A payload struct, once released, is frozen: to change it, copy it to `old/` as `FooV1`,
//! bump `VERSION` on the new one and add an upcast arm in `codec.rs`.
//!
//! Type id ranges: 1-19 projects, 20-39 files and datasets, 40-59 jobs, 60-79 training,
//! 80-99 dataset generation, 100-119 the service and its actors.

mod codec;
mod dataset;
mod job;
mod json;
pub mod old;
mod project;
mod service;
mod training;

pub use codec::{
    decode_payload, encode_payload, EventCodecError, BINCODE_CONFIG, MAX_PAYLOAD_BYTES,
};
pub use dataset::*;
pub use job::*;
pub use json::{event_data, event_json};
pub use project::*;
pub use service::*;
pub use training::*;

use serde::Serialize;
use tunewright_schemas::{JobId, ProjectId};

/// Which entity an event belongs to: reads by stream give an entity's whole history.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, bincode::Encode, bincode::Decode,
)]
pub enum StreamId {
    Project(ProjectId),
    Job(JobId),
    /// The service itself and its actors.
    Service,
}

impl std::fmt::Display for StreamId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StreamId::Project(id) => write!(f, "{id}"),
            StreamId::Job(id) => write!(f, "{id}"),
            StreamId::Service => f.write_str("service"),
        }
    }
}

impl std::str::FromStr for StreamId {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s == "service" {
            return Ok(StreamId::Service);
        }
        if let Ok(id) = s.parse::<ProjectId>() {
            return Ok(StreamId::Project(id));
        }
        if let Ok(id) = s.parse::<JobId>() {
            return Ok(StreamId::Job(id));
        }
        Err(format!(
            "'{}' is not a stream id (expected prj_…, job_… or service)",
            s.chars().take(80).collect::<String>()
        ))
    }
}

impl Serialize for StreamId {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// An event as read back from the log.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StoredEvent {
    /// Position in the log, from 1, without gaps.
    pub seq: u64,
    /// Wall-clock time of the commit, milliseconds since the Unix epoch.
    pub ts_ms: i64,
    pub stream: StreamId,
    pub event: Event,
}

/// Declares the `Event` enum and, for each variant, its payload struct's type id and version.
macro_rules! events {
    ($($variant:ident($payload:ident) = $type_id:literal, v $version:literal;)+) => {
        /// Every state change of tunewright.
        #[derive(Debug, Clone, PartialEq, Serialize)]
        #[serde(tag = "type", content = "data", rename_all = "snake_case")]
        pub enum Event {
            $($variant($payload)),+
        }

        $(
            impl $payload {
                pub const TYPE_ID: u16 = $type_id;
                pub const VERSION: u16 = $version;
            }
            impl From<$payload> for Event {
                fn from(p: $payload) -> Event {
                    Event::$variant(p)
                }
            }
        )+

        impl Event {
            /// `(type id, schema version)` of this event's payload.
            pub fn type_id(&self) -> (u16, u16) {
                match self {
                    $(Event::$variant(_) => ($type_id, $version)),+
                }
            }

            /// The event type's name as the API and the replay tool show it.
            pub fn type_name(&self) -> &'static str {
                match self {
                    $(Event::$variant(_) => <$payload>::NAME),+
                }
            }

            /// Every `(type id, name)`, for filters and statistics.
            pub const TYPES: &'static [(u16, &'static str)] = &[$(($type_id, <$payload>::NAME)),+];

            pub(crate) fn encode_current(&self) -> Result<Vec<u8>, bincode::error::EncodeError> {
                match self {
                    $(Event::$variant(p) => bincode::encode_to_vec(p, BINCODE_CONFIG)),+
                }
            }

            pub(crate) fn decode_current(type_id: u16, bytes: &[u8]) -> Option<Result<Event, bincode::error::DecodeError>> {
                match type_id {
                    $($type_id => Some(codec::decode_exact::<$payload>(bytes).map(Event::$variant)),)+
                    _ => None,
                }
            }

            pub(crate) fn current_version(type_id: u16) -> Option<u16> {
                match type_id {
                    $($type_id => Some($version),)+
                    _ => None,
                }
            }
        }
    };
}

events! {
    ProjectCreated(ProjectCreated) = 1, v 1;
    ProjectDeleted(ProjectDeleted) = 2, v 1;
    ProjectStatusChanged(ProjectStatusChanged) = 3, v 1;
    FileUploaded(FileUploaded) = 20, v 1;
    FileDeleted(FileDeleted) = 21, v 1;
    DatasetImported(DatasetImported) = 22, v 1;
    SplitCreated(SplitCreated) = 23, v 1;
    JobCreated(JobCreated) = 40, v 1;
    JobAttemptStarted(JobAttemptStarted) = 41, v 1;
    JobAttemptFailed(JobAttemptFailed) = 42, v 2;
    JobRetryScheduled(JobRetryScheduled) = 43, v 1;
    JobSucceeded(JobSucceeded) = 44, v 1;
    JobFailed(JobFailed) = 45, v 2;
    JobCancelled(JobCancelled) = 46, v 1;
    JobInterrupted(JobInterrupted) = 47, v 1;
    JobProgress(JobProgress) = 48, v 1;
    JobNote(JobNote) = 49, v 1;
    ArtifactRecorded(ArtifactRecorded) = 50, v 1;
    JobCancelRequested(JobCancelRequested) = 51, v 1;
    CheckpointSaved(CheckpointSaved) = 60, v 1;
    CheckpointRejected(CheckpointRejected) = 61, v 1;
    TrainingResumed(TrainingResumed) = 62, v 1;
    TrainingRemediated(TrainingRemediated) = 63, v 1;
    ResumeLinked(ResumeLinked) = 64, v 1;
    GenerationChunkDone(GenerationChunkDone) = 80, v 1;
    ServiceStarted(ServiceStarted) = 100, v 1;
    ServiceStopped(ServiceStopped) = 101, v 1;
    ActorFailed(ActorFailed) = 102, v 1;
    ActorRestarted(ActorRestarted) = 103, v 1;
    SupervisorGaveUp(SupervisorGaveUp) = 104, v 1;
}

impl Event {
    /// The stream this event belongs to.
    pub fn stream(&self) -> StreamId {
        use Event::*;
        match self {
            ProjectCreated(e) => StreamId::Project(e.project_id),
            ProjectDeleted(e) => StreamId::Project(e.project_id),
            ProjectStatusChanged(e) => StreamId::Project(e.project_id),
            FileUploaded(e) => StreamId::Project(e.project_id),
            FileDeleted(e) => StreamId::Project(e.project_id),
            DatasetImported(e) => StreamId::Project(e.project_id),
            SplitCreated(e) => StreamId::Project(e.project_id),
            JobCreated(e) => StreamId::Job(e.job_id),
            JobAttemptStarted(e) => StreamId::Job(e.job_id),
            JobAttemptFailed(e) => StreamId::Job(e.job_id),
            JobRetryScheduled(e) => StreamId::Job(e.job_id),
            JobSucceeded(e) => StreamId::Job(e.job_id),
            JobFailed(e) => StreamId::Job(e.job_id),
            JobCancelled(e) => StreamId::Job(e.job_id),
            JobCancelRequested(e) => StreamId::Job(e.job_id),
            JobInterrupted(e) => StreamId::Job(e.job_id),
            JobProgress(e) => StreamId::Job(e.job_id),
            JobNote(e) => StreamId::Job(e.job_id),
            ArtifactRecorded(e) => StreamId::Job(e.job_id),
            CheckpointSaved(e) => StreamId::Job(e.job_id),
            CheckpointRejected(e) => StreamId::Job(e.job_id),
            TrainingResumed(e) => StreamId::Job(e.job_id),
            TrainingRemediated(e) => StreamId::Job(e.job_id),
            ResumeLinked(e) => StreamId::Job(e.job_id),
            GenerationChunkDone(e) => StreamId::Job(e.job_id),
            ServiceStarted(_) | ServiceStopped(_) | ActorFailed(_) | ActorRestarted(_)
            | SupervisorGaveUp(_) => StreamId::Service,
        }
    }
}
