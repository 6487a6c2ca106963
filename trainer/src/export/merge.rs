//! Merged full weights: every base tensor, with `W + scaling * B @ A` on the adapted
//! projections (computed in f32, stored in the base tensor's dtype), written under the base
//! checkpoint's file names (shards and index kept), with its config and tokenizer files.

use std::path::Path;

use tch::{Kind, Tensor};

use super::adapter::Adapter;
use super::files::{all_finite, read_safetensors, write_file, write_safetensors};
use crate::error::TrainerError;
use crate::model::WeightFiles;

/// A model directory's files besides its weights (config, tokenizer, chat template), copied
/// unchanged wherever a model directory is written from another.
pub const MODEL_FILES: &[&str] = &[
    "config.json",
    "generation_config.json",
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "chat_template.jinja",
];

/// The merged weights keep the base model's sharding, so its shard index is copied too.
const SHARD_INDEX: &str = "model.safetensors.index.json";

/// Write the merged model into `dir`; returns (file names written, tensor count).
pub fn write_merged(
    base_dir: &Path,
    adapter: &Adapter,
    dir: &Path,
) -> Result<(Vec<String>, usize), TrainerError> {
    let missing = |p: &Path, reason: String| TrainerError::ExportArtifactsMissing {
        path: p.to_path_buf(),
        reason,
    };
    let files = WeightFiles::open(base_dir).map_err(|e| missing(base_dir, e.to_string()))?;
    let scaling = adapter.settings.scaling();
    // Every adapter module must exist in the base (PEFT would silently skip it otherwise).
    for (name, _) in &adapter.tensors {
        let module = name
            .strip_prefix(crate::model::PEFT_PREFIX)
            .and_then(|n| {
                n.strip_suffix(".lora_A.weight")
                    .or_else(|| n.strip_suffix(".lora_B.weight"))
            })
            .ok_or_else(|| {
                missing(
                    base_dir,
                    format!("adapter tensor '{name}' is not a PEFT LoRA key"),
                )
            })?;
        if !files.contains(&format!("{module}.weight")) {
            return Err(missing(
                base_dir,
                format!("the base model has no '{module}.weight' for adapter tensor '{name}'"),
            ));
        }
    }
    let mut by_file: std::collections::BTreeMap<std::path::PathBuf, Vec<String>> =
        Default::default();
    for name in files.names() {
        by_file
            .entry(files.file_of(name))
            .or_default()
            .push(name.clone());
    }
    let mut written = Vec::new();
    let mut count = 0;
    let _guard = tch::no_grad_guard();
    for (path, names) in by_file {
        let file_name = path
            .file_name()
            .map(|n| n.to_string_lossy().to_string())
            .ok_or_else(|| missing(&path, "no file name".into()))?;
        let mut out = Vec::with_capacity(names.len());
        for name in names {
            let (_, w) = files
                .get_raw(&name)
                .map_err(|e| missing(&path, e.to_string()))?;
            let merged = match name.strip_suffix(".weight").and_then(|m| adapter.pair(m)) {
                Some((a, b)) => {
                    let delta = b
                        .f_to_kind(Kind::Float)
                        .and_then(|b| b.f_matmul(&a.to_kind(Kind::Float)))
                        .map_err(|e| TrainerError::torch("merge", e))?;
                    if delta.size() != w.size() {
                        return Err(missing(
                            &path,
                            format!(
                                "'{name}' has shape {:?} but B@A is {:?}",
                                w.size(),
                                delta.size()
                            ),
                        ));
                    }
                    (w.to_kind(Kind::Float) + delta * scaling).to_kind(w.kind())
                }
                None => w,
            };
            out.push((name, merged));
        }
        let target = dir.join(&file_name);
        write_safetensors(&target, &out)?;
        count += out.len();
        check_file(&target, &out)?;
        written.push(file_name);
    }
    for name in MODEL_FILES.iter().chain([&SHARD_INDEX]) {
        let src = base_dir.join(name);
        if src.is_file() {
            let bytes = std::fs::read(&src).map_err(|e| missing(&src, e.to_string()))?;
            write_file(&dir.join(name), &bytes)?;
            written.push(name.to_string());
        }
    }
    Ok((written, count))
}

/// Re-read a written shard: every key present with its shape and dtype, values finite.
fn check_file(path: &Path, expected: &[(String, Tensor)]) -> Result<(), TrainerError> {
    let bad = |reason: String| TrainerError::ExportWrite {
        reason: format!("self-check of {}: {reason}", path.display()),
    };
    let got = read_safetensors(path).map_err(bad)?;
    if got.len() != expected.len() {
        return Err(bad(format!(
            "{} tensors written, {} expected",
            got.len(),
            expected.len()
        )));
    }
    for (name, t) in expected {
        let (_, g) = got
            .iter()
            .find(|(n, _)| n == name)
            .ok_or_else(|| bad(format!("tensor '{name}' is missing")))?;
        if g.size() != t.size() || g.kind() != t.kind() {
            return Err(bad(format!(
                "tensor '{name}' is {:?} {:?}, expected {:?} {:?}",
                g.kind(),
                g.size(),
                t.kind(),
                t.size()
            )));
        }
        if !all_finite(g) {
            return Err(bad(format!("tensor '{name}' has non-finite values")));
        }
    }
    Ok(())
}
