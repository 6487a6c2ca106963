//! A training's `base_model`, checked before the job is written: a directory, or a model id in
//! the local Hugging Face cache; readable; its `config.json` names an architecture tunewright
//! trains; its weights (`*.safetensors`) and tokenizer (`tokenizer.json`) are there. Only
//! metadata and `config.json` are read (never a weight file), and nothing but a regular file is
//! opened, so a FIFO or a device node cannot hang the check.

use std::io::ErrorKind;
use std::path::{Path, PathBuf};

use tunewright_schemas::model_family::{family_of_architecture, supported_architectures_list};
use tunewright_schemas::{ctx, ErrorCode, Failure};

use super::hub_cache::{denied, is_model_id, HubCache};

/// Largest `config.json` or weight index read (real ones are at most a few hundred KB).
const MAX_CONFIG_BYTES: u64 = 1 << 20;

/// Where a base model is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolvedModel {
    pub dir: PathBuf,
    /// The cache commit, when the model was named by its hub id.
    pub commit: Option<String>,
    pub architecture: String,
}

/// How a missing piece is reported: in a directory the user named it is missing
/// (`MODEL_NOT_FOUND`); in a cache snapshot the snapshot is incomplete (`MODEL_RESOLVE_FAILED`).
#[derive(Clone, Copy)]
enum Source {
    Directory,
    Cache,
}

/// Resolve and check `reference` (with `revision` for a hub id).
pub fn resolve(
    reference: &str,
    revision: Option<&str>,
    cache: &HubCache,
) -> Result<ResolvedModel, Failure> {
    let path = Path::new(reference);
    let (dir, commit, source) = match std::fs::metadata(path) {
        Ok(m) if m.is_dir() => (path.to_path_buf(), None, Source::Directory),
        Ok(_) => {
            return Err(missing(
                reference,
                Source::Directory,
                "it is not a directory",
            ))
        }
        Err(e) if e.kind() == ErrorKind::PermissionDenied => {
            return Err(denied(reference, path, e))
        }
        Err(_) if is_model_id(reference) => {
            let s = cache.resolve(reference, revision)?;
            (s.dir, Some(s.commit), Source::Cache)
        }
        Err(_) => return Err(missing(reference, Source::Directory, "no such directory")),
    };
    let architecture = architecture(reference, &dir, source)?;
    if family_of_architecture(&architecture).is_none() {
        return Err(Failure::new(
            ErrorCode::ModelUnsupportedArch,
            ctx! {"architecture" => architecture, "supported" => supported_architectures_list(), "model" => reference},
        ));
    }
    require_weights(reference, &dir, source)?;
    require_file(reference, &dir, "tokenizer.json", source)?;
    Ok(ResolvedModel {
        dir,
        commit,
        architecture,
    })
}

fn missing(model: &str, source: Source, reason: &str) -> Failure {
    match source {
        Source::Directory => Failure::new(
            ErrorCode::ModelNotFound,
            ctx! {"model" => model, "reason" => reason},
        ),
        Source::Cache => Failure::new(
            ErrorCode::ModelResolveFailed,
            ctx! {"model" => model, "reason" => format!("the cached snapshot is incomplete: {reason}")},
        ),
    }
}

/// A regular file `name` of `dir` (following links), readable.
fn require_file(model: &str, dir: &Path, name: &str, source: Source) -> Result<PathBuf, Failure> {
    let path = dir.join(name);
    match std::fs::metadata(&path) {
        Ok(m) if m.is_file() => Ok(path),
        Ok(_) => Err(missing(
            model,
            source,
            &format!("{name} is not a regular file"),
        )),
        Err(e) if e.kind() == ErrorKind::PermissionDenied => Err(denied(model, &path, e)),
        Err(_) => Err(missing(
            model,
            source,
            &format!("{} has no {name}", dir.display()),
        )),
    }
}

/// A small JSON file of the model (bounded read).
fn read_small(model: &str, path: &Path, source: Source) -> Result<String, Failure> {
    use std::io::Read;
    let cannot = |e: std::io::Error| match e.kind() {
        ErrorKind::PermissionDenied => denied(model, path, e),
        _ => missing(
            model,
            source,
            &format!("{} cannot be read: {e}", path.display()),
        ),
    };
    let file = std::fs::File::open(path).map_err(cannot)?;
    let mut text = String::new();
    file.take(MAX_CONFIG_BYTES)
        .read_to_string(&mut text)
        .map_err(cannot)?;
    Ok(text)
}

fn architecture(model: &str, dir: &Path, source: Source) -> Result<String, Failure> {
    let path = require_file(model, dir, "config.json", source)?;
    let unsupported = |why: String| {
        Failure::new(
            ErrorCode::ModelUnsupportedArch,
            ctx! {"architecture" => why, "supported" => supported_architectures_list(), "model" => model},
        )
    };
    let text = read_small(model, &path, source)?;
    let value: serde_json::Value = serde_json::from_str(&text)
        .map_err(|e| unsupported(format!("unknown (config.json is not valid JSON: {e})")))?;
    value
        .get("architectures")
        .and_then(|a| a.as_array())
        .and_then(|a| a.first())
        .and_then(|a| a.as_str())
        .map(str::to_string)
        .ok_or_else(|| unsupported("unknown (config.json names no architectures)".into()))
}

/// The weights: `model.safetensors`, or the index of a sharded checkpoint
/// (`model.safetensors.index.json`) and every shard it names.
fn require_weights(model: &str, dir: &Path, source: Source) -> Result<(), Failure> {
    let index = dir.join("model.safetensors.index.json");
    if !index.exists() {
        return require_file(model, dir, "model.safetensors", source).map(|_| ());
    }
    let index = require_file(model, dir, "model.safetensors.index.json", source)?;
    let text = read_small(model, &index, source)?;
    let value: serde_json::Value = serde_json::from_str(&text).map_err(|e| {
        missing(
            model,
            source,
            &format!("model.safetensors.index.json is not valid JSON: {e}"),
        )
    })?;
    let shards: std::collections::BTreeSet<&str> = value
        .get("weight_map")
        .and_then(|m| m.as_object())
        .map(|m| m.values().filter_map(|v| v.as_str()).collect())
        .unwrap_or_default();
    if shards.is_empty() {
        return Err(missing(
            model,
            source,
            "model.safetensors.index.json names no weight files",
        ));
    }
    for shard in shards {
        if Path::new(shard).components().count() != 1 {
            return Err(missing(
                model,
                source,
                &format!("the index names '{shard}', not a file of the model directory"),
            ));
        }
        require_file(model, dir, shard, source)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn model_dir(arch: &str) -> tempfile::TempDir {
        let d = tempfile::tempdir().unwrap();
        std::fs::write(
            d.path().join("config.json"),
            format!(r#"{{"architectures": ["{arch}"]}}"#),
        )
        .unwrap();
        std::fs::write(d.path().join("model.safetensors"), b"x").unwrap();
        std::fs::write(d.path().join("tokenizer.json"), b"{}").unwrap();
        d
    }

    fn cache() -> HubCache {
        HubCache {
            root: "/nonexistent-cache".into(),
        }
    }

    #[test]
    fn a_complete_directory_of_a_supported_family_passes() {
        let d = model_dir("LlamaForCausalLM");
        let r = resolve(&d.path().to_string_lossy(), None, &cache()).unwrap();
        assert_eq!(r.architecture, "LlamaForCausalLM");
        assert_eq!(r.commit, None);
    }

    #[test]
    fn each_missing_piece_has_its_code() {
        let e = resolve("/nonexistent/model", None, &cache()).unwrap_err();
        assert_eq!(e.error_code, ErrorCode::ModelNotFound);
        let d = model_dir("GPT2LMHeadModel");
        let e = resolve(&d.path().to_string_lossy(), None, &cache()).unwrap_err();
        assert_eq!(e.error_code, ErrorCode::ModelUnsupportedArch);
        assert!(e.detail.contains("GPT2LMHeadModel") && e.detail.contains("LlamaForCausalLM"));
        let d = model_dir("LlamaForCausalLM");
        std::fs::remove_file(d.path().join("tokenizer.json")).unwrap();
        let e = resolve(&d.path().to_string_lossy(), None, &cache()).unwrap_err();
        assert_eq!(e.error_code, ErrorCode::ModelNotFound);
        assert!(e.detail.contains("tokenizer.json"), "{}", e.detail);
        let d = model_dir("LlamaForCausalLM");
        std::fs::remove_file(d.path().join("model.safetensors")).unwrap();
        std::fs::write(d.path().join("reference_logits.safetensors"), b"x").unwrap();
        let e = resolve(&d.path().to_string_lossy(), None, &cache()).unwrap_err();
        assert!(e.detail.contains("model.safetensors"), "{}", e.detail);
        // A sharded checkpoint: the index and every shard it names.
        std::fs::write(
            d.path().join("model.safetensors.index.json"),
            r#"{"weight_map": {"a": "model-00001-of-00002.safetensors", "b": "model-00002-of-00002.safetensors"}}"#,
        )
        .unwrap();
        std::fs::write(d.path().join("model-00001-of-00002.safetensors"), b"x").unwrap();
        let e = resolve(&d.path().to_string_lossy(), None, &cache()).unwrap_err();
        assert!(e.detail.contains("model-00002-of-00002"), "{}", e.detail);
        std::fs::write(d.path().join("model-00002-of-00002.safetensors"), b"x").unwrap();
        assert!(resolve(&d.path().to_string_lossy(), None, &cache()).is_ok());
        let d = model_dir("LlamaForCausalLM");
        std::fs::write(d.path().join("config.json"), b"{not json").unwrap();
        let e = resolve(&d.path().to_string_lossy(), None, &cache()).unwrap_err();
        assert_eq!(e.error_code, ErrorCode::ModelUnsupportedArch);
    }

    #[test]
    fn a_fifo_as_config_is_refused_without_blocking() {
        let d = model_dir("LlamaForCausalLM");
        let cfg = d.path().join("config.json");
        std::fs::remove_file(&cfg).unwrap();
        let status = std::process::Command::new("mkfifo")
            .arg(&cfg)
            .status()
            .unwrap();
        assert!(status.success());
        let e = resolve(&d.path().to_string_lossy(), None, &cache()).unwrap_err();
        assert_eq!(e.error_code, ErrorCode::ModelNotFound);
        assert!(e.detail.contains("not a regular file"), "{}", e.detail);
    }

    #[test]
    fn a_hub_id_resolves_through_the_cache() {
        let root = tempfile::tempdir().unwrap();
        let commit = "89abcdef0123456789abcdef0123456789abcdef";
        let repo = root.path().join("models--Org--Tiny");
        std::fs::create_dir_all(repo.join("refs")).unwrap();
        std::fs::write(repo.join("refs/main"), commit).unwrap();
        let snap = repo.join("snapshots").join(commit);
        std::fs::create_dir_all(&snap).unwrap();
        std::fs::write(
            snap.join("config.json"),
            r#"{"architectures": ["LlamaForCausalLM"]}"#,
        )
        .unwrap();
        let cache = HubCache {
            root: root.path().to_path_buf(),
        };
        // A snapshot without its weights is incomplete: the cache's fault, not the user's.
        let e = resolve("Org/Tiny", None, &cache).unwrap_err();
        assert_eq!(e.error_code, ErrorCode::ModelResolveFailed, "{}", e.detail);
        std::fs::write(snap.join("model.safetensors"), b"x").unwrap();
        std::fs::write(snap.join("tokenizer.json"), b"{}").unwrap();
        let r = resolve("Org/Tiny", None, &cache).unwrap();
        assert_eq!((r.dir, r.commit.as_deref()), (snap, Some(commit)));
    }
}
