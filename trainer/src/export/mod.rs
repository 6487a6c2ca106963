//! Export of a trained LoRA adapter: as a PEFT adapter directory, as merged full weights, as
//! a GGUF file for llama.cpp (`gguf/`) or as a GGUF with an Ollama `Modelfile` (`ollama.rs`).
//! Inputs are checked against their manifest (`EXPORT_ARTIFACTS_MISSING`), the output is
//! written to a temp dir, re-read and checked (GGUF: loaded back and made to generate against
//! the merged model, `verify.rs`), hashed into `manifest.json`, fsynced and renamed into place
//! (`EXPORT_WRITE_FAILED` on I/O errors, retryable; `EXPORT_VERIFY_FAILED` on a failed check).

pub mod adapter;
pub mod files;
pub mod gguf;
pub mod manifest;
pub mod merge;
pub mod ollama;
pub mod verify;

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
            finish(result, &tmp, out_dir)
        }
        ExportFormat::Gguf(q) | ExportFormat::Ollama(q) => {
            let tmp = temp_dir_for(out_dir)?;
            let result = write_gguf_export(source, &adapter, format, q, &base_name, &tmp);
            finish(result, &tmp, out_dir)
        }
    }
}

/// Publish `tmp` as `out_dir` when `result` is Ok, else remove it.
fn finish(
    result: Result<ExportManifest, TrainerError>,
    tmp: &Path,
    out_dir: &Path,
) -> Result<ExportManifest, TrainerError> {
    match result {
        Ok(m) => {
            publish(tmp, out_dir)?;
            Ok(m)
        }
        Err(e) => {
            let _ = std::fs::remove_dir_all(tmp);
            Err(e)
        }
    }
}

/// Merge into a scratch directory, write `model.gguf` (and the Modelfile) into `tmp`, check
/// it against the merged model, and write the manifest with the check.
fn write_gguf_export(
    source: &ExportSource,
    adapter: &Adapter,
    format: ExportFormat,
    q: tunewright_schemas::config::Quantization,
    base_name: &str,
    tmp: &Path,
) -> Result<ExportManifest, TrainerError> {
    let scratch = tmp.join(".merged");
    let back = tmp.join(".read-back");
    for d in [&scratch, &back] {
        std::fs::create_dir_all(d).map_err(|e| TrainerError::ExportWrite {
            reason: format!("{}: {e}", d.display()),
        })?;
    }
    merge::write_merged(&source.base_model_dir, adapter, &scratch)?;
    let gguf_path = tmp.join(gguf::GGUF_FILE);
    let summary = gguf::write_gguf(&scratch, q, base_name, &gguf_path)?;
    let mut names = vec![gguf::GGUF_FILE.to_string()];
    if let ExportFormat::Ollama(_) = format {
        let tok = crate::train::tokenize::ChatTokenizer::load(&scratch)?;
        let stops = crate::generate::stop_ids(&scratch)?
            .into_iter()
            .map(|id| tok.decode(&[id]))
            .collect::<Result<Vec<_>, _>>()?;
        let text = ollama::modelfile(&scratch, gguf::GGUF_FILE, &stops)?.ok_or_else(|| {
            TrainerError::Rejected(tunewright_schemas::Failure::new(
                tunewright_schemas::ErrorCode::ExportFormatUnavailable,
                tunewright_schemas::ctx! {
                    "format" => "ollama for this chat template",
                    "available" => "peft, merged, gguf".to_string()
                },
            ))
        })?;
        files::write_file(&tmp.join(ollama::MODELFILE), text.as_bytes())?;
        names.push(ollama::MODELFILE.to_string());
    }
    gguf::read_back(&gguf_path, &scratch, &back)?;
    let check = verify::self_check(&scratch, &back, Some(q))?;
    let _ = std::fs::remove_dir_all(&scratch);
    let _ = std::fs::remove_dir_all(&back);
    if !check.passed {
        return Err(verify::failure(&check, format.name()));
    }
    let record = serde_json::to_value(&check).map_err(|e| TrainerError::ExportWrite {
        reason: e.to_string(),
    })?;
    let mut record = record;
    record["quantization"] = q.name().into();
    record["architecture"] = summary.arch.into();
    ExportManifest::write_checked(
        tmp,
        format.name(),
        base_name,
        summary.tensors,
        &names,
        Some(record),
    )
}
