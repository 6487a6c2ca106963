//! Admission: a submitted job is judged before anything is written (docs/jobs.md,
//! "Admission"). The config is parsed once for its kind (`JobConfig::parse`); then what the
//! environment decides and can be known without device time: the base model (a directory or a
//! model in the local Hugging Face cache, readable, a supported architecture, weights and
//! tokenizer present), `device: "cuda"` against the cached hardware probe, an LLM endpoint's
//! API key; for a GGUF export, the family of the base model of the training it exports
//! (`export.rs`); for an evaluation, the training, checkpoint and split it reads and the
//! hashes of the weights (`evaluate.rs`). What the project's state decides (its status, dataset, splits, the training
//! already queued, the run an export names) is the project's decision (`project::decide`).
//!
//! `offline` is the part that needs no I/O: the analyzer's suggestions are held to it.

pub mod evaluate;
pub mod export;
pub mod hub_cache;
pub mod model;

use serde_json::Value;
use tunewright_schemas::config::{JobConfig, TrainDevice};
use tunewright_schemas::{ctx, ErrorCode, Failure, JobKind};

use crate::generation::llm_client::LlmSettings;
use crate::hardware::HardwareProbe;
use hub_cache::HubCache;

/// A job that passed admission: its parsed config and the config as it is recorded (a model
/// named by its hub id is pinned to the commit it resolved to, so every attempt trains the
/// same weights).
#[derive(Debug, Clone)]
pub struct Admitted {
    pub config: JobConfig,
    pub recorded: Value,
}

/// Judges submitted jobs. Cheap to clone.
#[derive(Clone)]
pub struct Admission {
    hardware: HardwareProbe,
    cache: HubCache,
}

/// The checks that need no I/O: the config parses for its kind, and `device: "cuda"` is refused
/// where the machine is known to have no GPU (`gpu`: what the hardware probe said, if known).
pub fn offline(kind: JobKind, config: &Value, gpu: Option<bool>) -> Result<JobConfig, Failure> {
    let parsed = JobConfig::parse(kind, config)?;
    if let JobConfig::Train(t) = &parsed {
        if t.device == TrainDevice::Cuda && gpu == Some(false) {
            return Err(Failure::new(ErrorCode::TrainingNoGpu, ctx! {}));
        }
    }
    Ok(parsed)
}

impl Admission {
    pub fn new(hardware: HardwareProbe, cache: HubCache) -> Self {
        Admission { hardware, cache }
    }

    /// What the hardware probe says about a GPU, probing only when a config asks for one.
    async fn gpu_for(&self, kind: JobKind, config: &Value) -> Option<bool> {
        let wants_cuda =
            kind == JobKind::Train && config.get("device").and_then(Value::as_str) == Some("cuda");
        if wants_cuda {
            self.hardware.gpu_available().await
        } else {
            None
        }
    }

    /// Judge a `kind` job with `config`.
    pub async fn admit(&self, kind: JobKind, config: &Value) -> Result<Admitted, Failure> {
        let gpu = self.gpu_for(kind, config).await;
        let parsed = offline(kind, config, gpu)?;
        let mut recorded = if config.is_null() {
            serde_json::json!({})
        } else {
            config.clone()
        };
        match &parsed {
            JobConfig::Train(t) => {
                let (reference, revision) = (t.base_model.clone(), t.revision.clone());
                let cache = self.cache.clone();
                let resolved = tokio::task::spawn_blocking(move || {
                    model::resolve(&reference, revision.as_deref(), &cache)
                })
                .await
                .map_err(|e| {
                    Failure::new(ErrorCode::InternalError, ctx! {})
                        .caused_by(format!("checking the base model: {e}"))
                })??;
                if let (Some(commit), None, Some(obj)) =
                    (resolved.commit, &t.revision, recorded.as_object_mut())
                {
                    obj.insert("revision".into(), Value::String(commit));
                }
            }
            JobConfig::DatasetPreview(g) | JobConfig::DatasetGenerate(g) => {
                LlmSettings::resolve(g)?;
            }
            JobConfig::Export(_) | JobConfig::Evaluate(_) => {}
        }
        Ok(Admitted {
            config: parsed,
            recorded,
        })
    }

    /// The directory of a training's base model as recorded at admission (a pinned hub id is
    /// resolved again through the cache).
    pub fn model_dir(&self, config: &Value) -> Result<std::path::PathBuf, Failure> {
        let reference = config
            .get("base_model")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let revision = config.get("revision").and_then(Value::as_str);
        model::resolve(reference, revision, &self.cache).map(|m| m.dir)
    }
}
