//! Checkpoints for exact resume: LoRA weights, AdamW moments and step, and the data position.
//!
//! Written atomically (temp dir, fsync every file, rename, fsync the parent) as
//! `<root>/step-<N>/{lora.safetensors, optimizer.safetensors, state.json}`; the sha256 of each
//! file is returned for the `CheckpointSaved` event, and `load` checks them. A save that fails
//! removes its temp dir (a crash's leftover `.step-N.tmp-PID/` is swept at the service's start);
//! a full disk fails it as `STORAGE_FULL` in the checkpoint phase (docs/storage.md).

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use tch::Tensor;
use tunewright_schemas::worker::WorkerFile;

use crate::export::files::{
    fsync, publish, read_safetensors, sha256_file, temp_dir_for, write_file, write_safetensors,
};
use crate::TrainerError;

pub const LORA_FILE: &str = "lora.safetensors";
pub const OPTIMIZER_FILE: &str = "optimizer.safetensors";
pub const STATE_FILE: &str = "state.json";

/// Where training stands: everything besides tensors that resume needs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainState {
    /// Optimizer steps done.
    pub step: u64,
    /// Epoch and index of the next micro-batch within it.
    pub epoch: u64,
    pub batch_index: usize,
    pub adam_step: i64,
    pub seed: u64,
}

pub struct Saved {
    pub dir: PathBuf,
    pub files: Vec<WorkerFile>,
}

fn ck_err(path: &Path, reason: impl std::fmt::Display) -> TrainerError {
    TrainerError::Checkpoint {
        path: path.to_path_buf(),
        reason: reason.to_string(),
    }
}

pub fn save(
    root: &Path,
    state: &TrainState,
    lora: &[(String, Tensor)],
    moments: &[(String, Tensor, Tensor)],
) -> Result<Saved, TrainerError> {
    let dir = root.join(format!("step-{}", state.step));
    let tmp = temp_dir_for(&dir).map_err(|e| e.during("checkpoint"))?;
    let written = write_into(&tmp, &dir, state, lora, moments);
    if let Err(e) = written {
        let _ = std::fs::remove_dir_all(&tmp);
        return Err(e.during("checkpoint"));
    }
    publish(&tmp, &dir).map_err(|e| e.during("checkpoint"))?;
    let mut files = Vec::new();
    for f in [LORA_FILE, OPTIMIZER_FILE, STATE_FILE] {
        let p = dir.join(f);
        let sha256 = sha256_file(&p).map_err(|e| ck_err(&p, e))?;
        let size_bytes = std::fs::metadata(&p).map_err(|e| ck_err(&p, e))?.len();
        files.push(WorkerFile {
            name: f.to_string(),
            sha256,
            size_bytes,
        });
    }
    Ok(Saved { dir, files })
}

/// The checkpoint's files, written and fsynced in `tmp`.
fn write_into(
    tmp: &Path,
    dir: &Path,
    state: &TrainState,
    lora: &[(String, Tensor)],
    moments: &[(String, Tensor, Tensor)],
) -> Result<(), TrainerError> {
    let lora: Vec<(String, Tensor)> = lora
        .iter()
        .map(|(n, t)| (n.clone(), t.detach().to_kind(tch::Kind::Float)))
        .collect();
    write_safetensors(&tmp.join(LORA_FILE), &lora)?;
    let mut opt = Vec::with_capacity(moments.len() * 2);
    for (n, m, v) in moments {
        opt.push((format!("m.{n}"), m.shallow_clone()));
        opt.push((format!("v.{n}"), v.shallow_clone()));
    }
    write_safetensors(&tmp.join(OPTIMIZER_FILE), &opt)?;
    let json = serde_json::to_vec_pretty(state).map_err(|e| ck_err(dir, e))?;
    write_file(&tmp.join(STATE_FILE), &json)?;
    for f in [LORA_FILE, OPTIMIZER_FILE, STATE_FILE] {
        fsync(&tmp.join(f))?;
    }
    Ok(())
}

pub struct Loaded {
    pub state: TrainState,
    pub lora: Vec<(String, Tensor)>,
    /// name -> (m, v)
    pub moments: std::collections::HashMap<String, (Tensor, Tensor)>,
}

/// Load a checkpoint, checking each file against `expected` sha256 sums when given.
pub fn load(dir: &Path, expected: Option<&[WorkerFile]>) -> Result<Loaded, TrainerError> {
    if let Some(files) = expected {
        for f in files {
            let p = dir.join(&f.name);
            let got = sha256_file(&p).map_err(|e| ck_err(&p, e))?;
            if got != f.sha256 {
                return Err(ck_err(
                    &p,
                    "sha256 mismatch: the file changed since it was written",
                ));
            }
        }
    }
    let state_path = dir.join(STATE_FILE);
    let state: TrainState = std::fs::read(&state_path)
        .map_err(|e| ck_err(&state_path, e))
        .and_then(|b| serde_json::from_slice(&b).map_err(|e| ck_err(&state_path, e)))?;
    let lora =
        read_safetensors(&dir.join(LORA_FILE)).map_err(|e| ck_err(&dir.join(LORA_FILE), e))?;
    let mut ms: std::collections::HashMap<String, (Option<Tensor>, Option<Tensor>)> =
        Default::default();
    for (n, t) in read_safetensors(&dir.join(OPTIMIZER_FILE))
        .map_err(|e| ck_err(&dir.join(OPTIMIZER_FILE), e))?
    {
        if let Some(name) = n.strip_prefix("m.") {
            ms.entry(name.to_string()).or_default().0 = Some(t);
        } else if let Some(name) = n.strip_prefix("v.") {
            ms.entry(name.to_string()).or_default().1 = Some(t);
        }
    }
    let mut moments = std::collections::HashMap::new();
    for (n, (m, v)) in ms {
        match (m, v) {
            (Some(m), Some(v)) => {
                moments.insert(n, (m, v));
            }
            _ => {
                return Err(ck_err(
                    dir,
                    format!("optimizer state for {n} is incomplete"),
                ))
            }
        }
    }
    Ok(Loaded {
        state,
        lora,
        moments,
    })
}

/// Remove all but the newest `keep` checkpoints under `root`, and with a `floor`, none from
/// that step on (the newest checkpoint the service is known to have recorded).
pub fn prune(root: &Path, keep: usize, floor: Option<u64>) {
    let Ok(entries) = std::fs::read_dir(root) else {
        return;
    };
    let mut steps: Vec<(u64, PathBuf)> = entries
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().to_string();
            name.strip_prefix("step-")
                .and_then(|s| s.parse().ok())
                .map(|n| (n, e.path()))
        })
        .collect();
    steps.sort();
    let n = steps.len();
    for (step, p) in steps.into_iter().take(n.saturating_sub(keep)) {
        if floor.is_none_or(|f| step < f) {
            let _ = std::fs::remove_dir_all(p);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn steps(root: &Path) -> Vec<u64> {
        let mut s: Vec<u64> = std::fs::read_dir(root)
            .unwrap()
            .flatten()
            .filter_map(|e| {
                e.file_name()
                    .to_string_lossy()
                    .strip_prefix("step-")?
                    .parse()
                    .ok()
            })
            .collect();
        s.sort();
        s
    }

    #[test]
    fn pruning_keeps_the_newest_and_nothing_from_the_floor_on() {
        let dir = tempfile::tempdir().unwrap();
        let make = |n: u64| std::fs::create_dir_all(dir.path().join(format!("step-{n}"))).unwrap();
        for n in [4, 8, 12, 16, 20] {
            make(n);
        }
        prune(dir.path(), 2, Some(8));
        assert_eq!(
            steps(dir.path()),
            vec![8, 12, 16, 20],
            "8 is the newest recorded"
        );
        prune(dir.path(), 2, None);
        assert_eq!(steps(dir.path()), vec![16, 20]);
    }
}
