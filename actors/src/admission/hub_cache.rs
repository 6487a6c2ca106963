//! Model ids (`Qwen/Qwen2.5-0.5B-Instruct`) resolved through the local Hugging Face cache, with
//! no network access: `HF_HUB_CACHE`, else `HF_HOME/hub`, else `XDG_CACHE_HOME/huggingface/hub`,
//! else `~/.cache/huggingface/hub`. A repository lives in `models--ORG--NAME/`; `refs/REV`
//! holds the commit a branch or tag points at; `snapshots/COMMIT/` holds the files (links into
//! `blobs/`).
//!
//! Not in the cache: `MODEL_NOT_FOUND`, saying where it looked and how to download it; a ref
//! that points nowhere or a snapshot missing files: `MODEL_RESOLVE_FAILED`; unreadable:
//! `MODEL_ACCESS_DENIED`.

use std::io::ErrorKind;
use std::path::{Path, PathBuf};

use tunewright_schemas::{ctx, ErrorCode, Failure};

/// Where the cache is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HubCache {
    pub root: PathBuf,
}

/// A model id resolved to a snapshot directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snapshot {
    pub dir: PathBuf,
    /// The commit the snapshot is of.
    pub commit: String,
}

impl HubCache {
    /// The cache the Hugging Face libraries would use with this environment.
    pub fn from_env(var: impl Fn(&str) -> Option<String>) -> HubCache {
        let set = |k: &str| var(k).filter(|v| !v.trim().is_empty());
        let root = if let Some(c) = set("HF_HUB_CACHE").or_else(|| set("HUGGINGFACE_HUB_CACHE")) {
            PathBuf::from(c)
        } else if let Some(h) = set("HF_HOME") {
            PathBuf::from(h).join("hub")
        } else if let Some(x) = set("XDG_CACHE_HOME") {
            PathBuf::from(x).join("huggingface").join("hub")
        } else {
            PathBuf::from(set("HOME").unwrap_or_else(|| "/root".into()))
                .join(".cache")
                .join("huggingface")
                .join("hub")
        };
        HubCache { root }
    }

    /// The cache of this process's environment.
    pub fn of_process() -> HubCache {
        HubCache::from_env(|k| std::env::var(k).ok())
    }

    /// The snapshot of `id` at `revision` (a branch, tag or commit; default `main`).
    pub fn resolve(&self, id: &str, revision: Option<&str>) -> Result<Snapshot, Failure> {
        let repo = self.root.join(format!("models--{}", id.replace('/', "--")));
        let revision = revision.unwrap_or("main");
        match std::fs::metadata(&repo) {
            Ok(m) if m.is_dir() => {}
            Ok(_) => return Err(not_cached(id, &repo)),
            Err(e) if e.kind() == ErrorKind::PermissionDenied => return Err(denied(id, &repo, e)),
            Err(_) => return Err(not_cached(id, &repo)),
        }
        let commit = if is_commit(revision) {
            revision.to_string()
        } else {
            let ref_file = repo.join("refs").join(revision);
            match std::fs::read_to_string(&ref_file) {
                Ok(c) => c.trim().to_string(),
                Err(e) if e.kind() == ErrorKind::PermissionDenied => {
                    return Err(denied(id, &ref_file, e))
                }
                Err(e) => {
                    return Err(unresolved(
                        id,
                        format!(
                            "the cache has no ref '{revision}' ({}: {e})",
                            ref_file.display()
                        ),
                    ))
                }
            }
        };
        if !is_commit(&commit) {
            return Err(unresolved(
                id,
                format!("ref '{revision}' holds '{}', not a commit", clip(&commit)),
            ));
        }
        let dir = repo.join("snapshots").join(&commit);
        if !dir.is_dir() {
            return Err(unresolved(
                id,
                format!(
                    "ref '{revision}' points at commit {commit}, which has no snapshot in {}",
                    repo.join("snapshots").display()
                ),
            ));
        }
        Ok(Snapshot { dir, commit })
    }
}

/// Whether `reference` names a hub model rather than a directory: `name` or `org/name` of
/// letters, digits, `-`, `_` and `.`, not starting with `.` or `/`.
pub fn is_model_id(reference: &str) -> bool {
    let parts: Vec<&str> = reference.split('/').collect();
    (1..=2).contains(&parts.len())
        && parts.iter().all(|p| {
            !p.is_empty()
                && !p.starts_with('.')
                && p.len() <= 96
                && p.chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        })
}

fn is_commit(s: &str) -> bool {
    s.len() == 40 && s.chars().all(|c| c.is_ascii_hexdigit())
}

fn clip(s: &str) -> String {
    s.chars().take(80).collect()
}

fn not_cached(id: &str, looked: &Path) -> Failure {
    Failure::new(
        ErrorCode::ModelNotFound,
        ctx! {
            "model" => id,
            "looked_in" => looked.display().to_string(),
            "reason" => format!(
                "it is not a directory and not in the local Hugging Face cache (looked in {}); download it first with `huggingface-cli download {id}` (or `hf download {id}`), or set base_model to a local directory",
                looked.display()
            )
        },
    )
}

fn unresolved(id: &str, reason: String) -> Failure {
    Failure::new(
        ErrorCode::ModelResolveFailed,
        ctx! {"model" => id, "reason" => reason},
    )
}

pub fn denied(model: &str, path: &Path, e: std::io::Error) -> Failure {
    Failure::new(
        ErrorCode::ModelAccessDenied,
        ctx! {"model" => model, "path" => path.display().to_string()},
    )
    .caused_by(format!("{}: {e}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cache_root_follows_the_hugging_face_environment() {
        let env = |pairs: &'static [(&'static str, &'static str)]| {
            move |k: &str| {
                pairs
                    .iter()
                    .find(|(n, _)| *n == k)
                    .map(|(_, v)| v.to_string())
            }
        };
        assert_eq!(
            HubCache::from_env(env(&[("HF_HUB_CACHE", "/c"), ("HF_HOME", "/h")])).root,
            PathBuf::from("/c")
        );
        assert_eq!(
            HubCache::from_env(env(&[("HF_HOME", "/h")])).root,
            PathBuf::from("/h/hub")
        );
        assert_eq!(
            HubCache::from_env(env(&[("HOME", "/home/u")])).root,
            PathBuf::from("/home/u/.cache/huggingface/hub")
        );
    }

    #[test]
    fn model_ids_and_paths_are_told_apart() {
        for id in ["Qwen/Qwen2.5-0.5B-Instruct", "gpt2", "org/model.v1_2"] {
            assert!(is_model_id(id), "{id}");
        }
        for p in [
            "/models/x",
            "./x",
            "../x",
            "a/b/c",
            "",
            "a//b",
            ".hidden/x",
            "a b",
        ] {
            assert!(!is_model_id(p), "{p}");
        }
    }

    #[test]
    fn refs_commits_and_missing_pieces() {
        let d = tempfile::tempdir().unwrap();
        let cache = HubCache {
            root: d.path().to_path_buf(),
        };
        let e = cache.resolve("Org/Model", None).unwrap_err();
        assert_eq!(e.error_code, ErrorCode::ModelNotFound);
        assert!(
            e.detail.contains("huggingface-cli download Org/Model"),
            "{}",
            e.detail
        );
        let repo = d.path().join("models--Org--Model");
        std::fs::create_dir_all(repo.join("refs")).unwrap();
        let commit = "0123456789abcdef0123456789abcdef01234567";
        std::fs::write(repo.join("refs/main"), commit).unwrap();
        let e = cache.resolve("Org/Model", None).unwrap_err();
        assert_eq!(e.error_code, ErrorCode::ModelResolveFailed, "{}", e.detail);
        std::fs::create_dir_all(repo.join("snapshots").join(commit)).unwrap();
        let s = cache.resolve("Org/Model", None).unwrap();
        assert_eq!(s.commit, commit);
        assert_eq!(cache.resolve("Org/Model", Some(commit)).unwrap(), s);
        let e = cache.resolve("Org/Model", Some("v2")).unwrap_err();
        assert_eq!(e.error_code, ErrorCode::ModelResolveFailed);
        std::fs::write(repo.join("refs/bad"), "not-a-commit").unwrap();
        assert_eq!(
            cache
                .resolve("Org/Model", Some("bad"))
                .unwrap_err()
                .error_code,
            ErrorCode::ModelResolveFailed
        );
    }
}
