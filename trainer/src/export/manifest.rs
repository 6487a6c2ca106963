//! `manifest.json`: what an export (or a training output) contains, with the sha256 and size
//! of every file, written last; `verify` checks a directory against its manifest.

use std::path::Path;

use serde::{Deserialize, Serialize};

use super::files::{sha256_file, write_file};
use crate::error::TrainerError;

pub const MANIFEST: &str = "manifest.json";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ManifestFile {
    pub path: String,
    pub bytes: u64,
    pub sha256: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExportManifest {
    /// `peft` or `merged`.
    pub format: String,
    pub base_model: String,
    /// Number of tensors written (over all safetensors files).
    pub tensors: usize,
    pub files: Vec<ManifestFile>,
    /// The self-check of GGUF exports (docs/exports.md): prompt, tokens, logit difference.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub self_check: Option<serde_json::Value>,
}

impl ExportManifest {
    /// Hash every listed file of `dir` (sorted by name) and write the manifest there.
    pub fn write(
        dir: &Path,
        format: &str,
        base_model: &str,
        tensors: usize,
        names: &[String],
    ) -> Result<ExportManifest, TrainerError> {
        Self::write_checked(dir, format, base_model, tensors, names, None)
    }

    /// `write` with the record of the export's self-check.
    pub fn write_checked(
        dir: &Path,
        format: &str,
        base_model: &str,
        tensors: usize,
        names: &[String],
        self_check: Option<serde_json::Value>,
    ) -> Result<ExportManifest, TrainerError> {
        let mut files = Vec::new();
        let mut names = names.to_vec();
        names.sort();
        for name in names {
            let path = dir.join(&name);
            let io = |e: std::io::Error| TrainerError::ExportWrite {
                reason: format!("{}: {e}", path.display()),
            };
            let bytes = std::fs::metadata(&path).map_err(io)?.len();
            let sha256 = sha256_file(&path).map_err(io)?;
            files.push(ManifestFile {
                path: name,
                bytes,
                sha256,
            });
        }
        let manifest = ExportManifest {
            format: format.into(),
            base_model: base_model.into(),
            tensors,
            files,
            self_check,
        };
        let text = serde_json::to_vec_pretty(&manifest).map_err(|e| TrainerError::ExportWrite {
            reason: e.to_string(),
        })?;
        write_file(&dir.join(MANIFEST), &text)?;
        Ok(manifest)
    }

    /// Read `dir/manifest.json` and check that every file exists with its size and hash.
    pub fn verify(dir: &Path) -> Result<ExportManifest, TrainerError> {
        let path = dir.join(MANIFEST);
        let missing = |p: &Path, reason: String| TrainerError::ExportArtifactsMissing {
            path: p.to_path_buf(),
            reason,
        };
        let text = std::fs::read(&path)
            .map_err(|e| missing(&path, format!("cannot read the manifest: {e}")))?;
        let manifest: ExportManifest = serde_json::from_slice(&text)
            .map_err(|e| missing(&path, format!("the manifest is not valid: {e}")))?;
        for f in &manifest.files {
            if f.path.contains('/') || f.path.contains("..") {
                return Err(missing(
                    &path,
                    format!("the manifest names '{}', not a plain file name", f.path),
                ));
            }
            let p = dir.join(&f.path);
            let meta = std::fs::metadata(&p).map_err(|e| missing(&p, format!("{e}")))?;
            if meta.len() != f.bytes {
                return Err(missing(
                    &p,
                    format!(
                        "size {} differs from the manifest's {}",
                        meta.len(),
                        f.bytes
                    ),
                ));
            }
            let sha = sha256_file(&p).map_err(|e| missing(&p, format!("{e}")))?;
            if sha != f.sha256 {
                return Err(missing(
                    &p,
                    format!("sha256 {sha} differs from the manifest's {}", f.sha256),
                ));
            }
        }
        Ok(manifest)
    }
}
