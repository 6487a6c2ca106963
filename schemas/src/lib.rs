//! tunewright-schemas: the domain as pure data.
//!
//! Ids, project and job statuses, job kinds, the error-code catalog (code -> HTTP status,
//! retryable?, message template) and the failure record every failed operation carries.
//! No I/O, no async, no torch: everything above depends on this crate and it depends on
//! nothing of ours.

pub mod config;
pub mod dataset;
pub mod error_code;
pub mod failure;
pub mod failure_codes;
pub mod ids;
pub mod json;
pub mod layout;
pub mod model_family;
pub mod status;
pub mod worker;

pub use error_code::{CatalogEntry, ErrorCode};
pub use failure::{Analysis, Confidence, ErrorPhase, ErrorType, Failure, Suggestion};
pub use ids::{DatasetId, FileId, JobId, ProjectId, SplitId};
pub use json::Json;
pub use layout::DataLayout;
pub use model_family::ModelFamily;
pub use status::{JobKind, JobStatus, ProjectStatus};
