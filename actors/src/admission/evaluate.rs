//! Admission of `evaluate` jobs (docs/jobs.md, "Evaluate"): what an evaluation reads, judged
//! before anything is written. From the state (`plan`, pure): the training named must be a
//! successful training of the project (`EVALUATION_NO_RUN`), the checkpoint step one it
//! recorded and did not reject (`CHECKPOINT_NOT_FOUND`), the split one of the project
//! (`SPLIT_NOT_FOUND`) with examples in its `val` part. From the disk (`verify`): the weights'
//! files still hash to what the training recorded (`CHECKPOINT_NOT_FOUND`). The executor runs
//! both again when the job starts: files can change while it waits.

use serde_json::Value;
use tunewright_events::event::FileDigest;
use tunewright_events::projection::{JobView, ProjectView, SplitView};
use tunewright_events::State;
use tunewright_schemas::config::{CheckpointChoice, EvaluateConfig};
use tunewright_schemas::{ctx, DataLayout, ErrorCode, Failure, JobId, JobKind, JobStatus, Json};

use crate::trainer::checkpoints::sha256_file;

/// The part of a split an evaluation scores.
pub const EVAL_PART: &str = "val";

/// The weights an evaluation loads: the training's final adapter or one of its checkpoints.
#[derive(Debug, Clone, PartialEq)]
pub struct EvalWeights {
    /// `None`: the final adapter.
    pub step: Option<u64>,
    /// The directory as recorded (relative to the data directory).
    pub dir: String,
    /// Its files with the sizes and sha256 the training recorded.
    pub files: Vec<FileDigest>,
}

/// What an admitted evaluation reads.
#[derive(Debug, Clone)]
pub struct EvalPlan {
    pub run: JobView,
    pub weights: EvalWeights,
    /// The split whose `val` part is scored; `None`: the whole dataset.
    pub split: Option<SplitView>,
}

fn no_run(reason: String) -> Failure {
    Failure::new(ErrorCode::EvaluationNoRun, ctx! {"reason" => reason})
}

fn checkpoint_not_found(run: JobId, step: Option<u64>, reason: String) -> Failure {
    let mut f = Failure::new(
        ErrorCode::CheckpointNotFound,
        ctx! {"job_id" => run.to_string(), "reason" => reason},
    );
    if let Some(s) = step {
        f = f.with_field("step", serde_json::json!(s));
    }
    f
}

/// The final adapter's files as the training's result recorded them (`adapter_files`).
fn adapter_files(result: Option<&Json>) -> Option<Vec<FileDigest>> {
    let files = result?.0.get("adapter_files")?.as_array()?;
    let digests: Option<Vec<FileDigest>> = files
        .iter()
        .map(|f| {
            Some(FileDigest {
                name: f.get("name")?.as_str()?.to_string(),
                sha256: f.get("sha256")?.as_str()?.to_string(),
                size_bytes: f.get("size_bytes")?.as_u64()?,
            })
        })
        .collect();
    digests.filter(|d| !d.is_empty())
}

/// Judge `cfg` against the state: the training, the weights and the split it reads.
pub fn plan(
    state: &State,
    project: &ProjectView,
    cfg: &EvaluateConfig,
) -> Result<EvalPlan, Failure> {
    let run = state
        .jobs
        .get(&cfg.train_job)
        .filter(|j| j.project_id == project.id && j.kind == JobKind::Train)
        .ok_or_else(|| {
            no_run(format!(
                "job {} is not a training of this project",
                cfg.train_job
            ))
        })?;
    if run.status != JobStatus::Success {
        return Err(no_run(format!(
            "training {} is {}; only a successful training is evaluated",
            run.id, run.status
        )));
    }
    let weights = match cfg.checkpoint {
        CheckpointChoice::Step(step) => {
            let c = run
                .checkpoints
                .iter()
                .rfind(|c| c.step == step && c.rejected.is_none())
                .ok_or_else(|| {
                    let recorded: Vec<String> = run
                        .checkpoints
                        .iter()
                        .filter(|c| c.rejected.is_none())
                        .map(|c| c.step.to_string())
                        .collect();
                    checkpoint_not_found(
                        run.id,
                        Some(step),
                        format!(
                            "it recorded no usable checkpoint at step {step} (recorded: {})",
                            if recorded.is_empty() {
                                "none".to_string()
                            } else {
                                recorded.join(", ")
                            }
                        ),
                    )
                })?;
            EvalWeights {
                step: Some(step),
                dir: c.dir.clone(),
                files: c.files.clone(),
            }
        }
        CheckpointChoice::Final => {
            let files = adapter_files(run.result.as_ref()).ok_or_else(|| {
                checkpoint_not_found(
                    run.id,
                    None,
                    "the training recorded no digests of its final adapter; evaluate one of its checkpoints".into(),
                )
            })?;
            EvalWeights {
                step: None,
                dir: DataLayout::rel_adapter_dir(run.id),
                files,
            }
        }
    };
    let split_name = cfg.split.clone().or_else(|| {
        run.effective_config
            .0
            .get("split")
            .and_then(Value::as_str)
            .map(str::to_string)
    });
    let split = match split_name {
        None => None,
        Some(name) => {
            let s = project.splits.get(&name).ok_or_else(|| {
                Failure::new(
                    ErrorCode::SplitNotFound,
                    ctx! {"split" => name.clone(), "project_id" => project.id.to_string()},
                )
            })?;
            let val = s
                .counts
                .iter()
                .find(|(part, _)| part == EVAL_PART)
                .map(|(_, n)| *n);
            if val.unwrap_or(0) == 0 {
                return Err(Failure::new(
                    ErrorCode::ValidationError,
                    ctx! {"reason" => format!("split '{name}' has no example in its '{EVAL_PART}' part to evaluate"), "field" => "split"},
                ));
            }
            Some(s.clone())
        }
    };
    if project.dataset.is_none() {
        return Err(Failure::new(
            ErrorCode::TrainingNoDataset,
            ctx! {"project_id" => project.id.to_string()},
        ));
    }
    Ok(EvalPlan {
        run: run.clone(),
        weights,
        split,
    })
}

/// Check every file of `w` against its recorded size and sha256 (`CHECKPOINT_NOT_FOUND`
/// naming the file otherwise). Hashes the files: call it off the async runtime.
pub fn verify(layout: &DataLayout, run: JobId, w: &EvalWeights) -> Result<(), Failure> {
    let dir = layout.resolve(&w.dir);
    let what = match w.step {
        Some(s) => format!("the checkpoint at step {s}"),
        None => "the final adapter".to_string(),
    };
    for f in &w.files {
        let path = dir.join(&f.name);
        let reason = match sha256_file(&path) {
            Err(e) => Some(format!("{}: {e}", path.display())),
            Ok(got) if got != f.sha256 => Some(format!(
                "{}: sha256 {got} does not match the recorded {}",
                f.name, f.sha256
            )),
            Ok(_) => None,
        };
        if let Some(reason) = reason {
            return Err(checkpoint_not_found(
                run,
                w.step,
                format!("{what} fails its check: {reason}"),
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_changed_file_fails_the_check_naming_it() {
        let d = tempfile::tempdir().unwrap();
        let layout = DataLayout::new(d.path());
        std::fs::create_dir_all(d.path().join("a")).unwrap();
        std::fs::write(d.path().join("a/w.bin"), b"weights").unwrap();
        let digest = FileDigest {
            name: "w.bin".into(),
            sha256: sha256_file(&d.path().join("a/w.bin")).unwrap(),
            size_bytes: 7,
        };
        let run = JobId::new();
        let result = Json(serde_json::json!({"adapter_files": [
            {"name": "w.bin", "sha256": digest.sha256, "size_bytes": 7}
        ]}));
        assert_eq!(adapter_files(Some(&result)), Some(vec![digest.clone()]));
        assert_eq!(adapter_files(None), None);
        let w = EvalWeights {
            step: None,
            dir: "a".into(),
            files: vec![digest],
        };
        verify(&layout, run, &w).unwrap();
        std::fs::write(d.path().join("a/w.bin"), b"WEIGHTS").unwrap();
        let e = verify(&layout, run, &w).unwrap_err();
        assert_eq!(e.error_code, ErrorCode::CheckpointNotFound);
        assert!(
            e.detail.contains("final adapter fails its check"),
            "{}",
            e.detail
        );
        std::fs::remove_file(d.path().join("a/w.bin")).unwrap();
        assert!(verify(&layout, run, &w).is_err());
    }
}
