//! Export of a trained LoRA adapter: as a PEFT adapter directory or as merged full weights.
//! Inputs are checked against their manifest (`EXPORT_ARTIFACTS_MISSING`), the output is
//! written to a temp dir, re-read and checked, hashed into `manifest.json`, fsynced and
//! renamed into place (`EXPORT_WRITE_FAILED` on I/O errors, retryable).

pub mod adapter;
pub mod files;
pub mod manifest;
pub mod merge;

use std::path::{Path, PathBuf};

pub use adapter::{
    read_adapter, write_adapter, write_adapter_tensors, Adapter, ADAPTER_CONFIG, ADAPTER_WEIGHTS,
};
pub use manifest::{ExportManifest, ManifestFile, MANIFEST};
/// The formats (owned by the job config, which admission checks).
pub use tunewright_schemas::config::ExportFormat;

use crate::error::TrainerError;
use files::{publish, temp_dir_for};

/// What to export: a PEFT adapter directory (the training output) and its base model.
#[derive(Debug, Clone, PartialEq)]
pub struct ExportSource {
    pub adapter_dir: PathBuf,
    pub base_model_dir: PathBuf,
}

/// Export `source` in `format` into `out_dir` (replaced if it exists).
pub fn export(
    source: &ExportSource,
    format: ExportFormat,
    out_dir: &Path,
) -> Result<ExportManifest, TrainerError> {
    let adapter = read_adapter(&source.adapter_dir)?;
    let base_config = source.base_model_dir.join("config.json");
    if !base_config.is_file() {
        return Err(TrainerError::ExportArtifactsMissing {
            path: base_config,
            reason: "the base model's config.json is missing".into(),
        });
    }
    let base_name = if adapter.base_model.is_empty() {
        source.base_model_dir.display().to_string()
    } else {
        adapter.base_model.clone()
    };
    match format {
        ExportFormat::Peft => {
            let targets = adapter.settings.resolved_targets()?;
            write_adapter_tensors(
                &adapter.tensors,
                &adapter.settings,
                &targets,
                &base_name,
                out_dir,
            )
        }
        ExportFormat::Merged => {
            let tmp = temp_dir_for(out_dir)?;
            let result = merge::write_merged(&source.base_model_dir, &adapter, &tmp).and_then(
                |(names, count)| ExportManifest::write(&tmp, "merged", &base_name, count, &names),
            );
            match result {
                Ok(m) => {
                    publish(&tmp, out_dir)?;
                    Ok(m)
                }
                Err(e) => {
                    let _ = std::fs::remove_dir_all(&tmp);
                    Err(e)
                }
            }
        }
    }
}
