//! A training's `base_model`, checked before the job is written: a directory, or a model id in
//! the local Hugging Face cache; readable; its `config.json` names an architecture tunewright
//! trains; its weights (`*.safetensors`) and tokenizer (`tokenizer.json`) are there. Only
//! metadata and `config.json` are read (never a weight file), and nothing but a regular file is
//! opened, so a FIFO or a device node cannot hang the check.

use std::io::ErrorKind;
use std::path::{Path, PathBuf};

use tunewright_schemas::model_family::{family_of_architecture, supported_list};
use tunewright_schemas::{ctx, ErrorCode, Failure};

use super::hub_cache::{denied, is_model_id, HubCache};

/// Largest `config.json` read (real ones are a few KB).
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
            ctx! {"architecture" => architecture, "supported" => supported_list(), "model" => reference},
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

fn architecture(model: &str, dir: &Path, source: Source) -> Result<String, Failure> {
    let path = require_file(model, dir, "config.json", source)?;
    let unsupported = |why: String| {
        Failure::new(
            ErrorCode::ModelUnsupportedArch,
            ctx! {"architecture" => why, "supported" => supported_list(), "model" => model},
        )
    };
    let file = std::fs::File::open(&path).map_err(|e| match e.kind() {
        ErrorKind::PermissionDenied => denied(model, &path, e),
        _ => missing(model, source, &format!("config.json cannot be read: {e}")),
    })?;
    let mut text = String::new();
    use std::io::Read;
    file.take(MAX_CONFIG_BYTES)
        .read_to_string(&mut text)
        .map_err(|e| match e.kind() {
            ErrorKind::PermissionDenied => denied(model, &path, e),
            _ => unsupported(format!("unknown (config.json cannot be read: {e})")),
        })?;
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

fn require_weights(model: &str, dir: &Path, source: Source) -> Result<(), Failure> {
    let entries = std::fs::read_dir(dir).map_err(|e| match e.kind() {
        ErrorKind::PermissionDenied => denied(model, dir, e),
        _ => missing(
            model,
            source,
            &format!("{} cannot be listed: {e}", dir.display()),
        ),
    })?;
    // A bound on the listing: a model directory holds a few dozen files at most.
    let has_weights = entries.flatten().take(100_000).any(|e| {
        let name = e.file_name().to_string_lossy().into_owned();
        name.ends_with(".safetensors") && std::fs::metadata(e.path()).is_ok_and(|m| m.is_file())
    });
    if has_weights {
        Ok(())
    } else {
        Err(missing(
            model,
            source,
            &format!("{} has no *.safetensors weights", dir.display()),
        ))
    }
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
        let e = resolve(&d.path().to_string_lossy(), None, &cache()).unwrap_err();
        assert!(e.detail.contains("safetensors"), "{}", e.detail);
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
