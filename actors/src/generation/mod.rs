//! Dataset generation from documents through an LLM (docs/errors.md for the dataset and LLM codes, docs/jobs.md for the retries and the JSON repair):
//! documents -> chunks -> OpenAI-compatible chat completions (with retries) -> the JSON repair
//! pipeline -> validated, de-duplicated alpaca examples -> a dataset imported into the project.

pub mod chunk_run;
pub mod chunk_store;
pub mod chunking;
pub mod documents;
pub mod examples;
pub mod executor;
pub mod json_repair;
pub mod llm_client;
pub mod prompt;
pub mod source;

pub use executor::{DatasetGenerateExecutor, DatasetPreviewExecutor, MIN_EXAMPLES};
pub use llm_client::{ChatMessage, LlmClient, LlmSettings, RetryPolicy};
