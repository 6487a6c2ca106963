//! The executor of `evaluate` jobs (docs/jobs.md, "Evaluate"): judges again what admission
//! judged (the training, its checkpoint or final adapter still hashing to what was recorded,
//! the split), writes the examples to score (the split's `val` part, or the whole dataset),
//! runs `tunewright-worker evaluate` in a worker process like an export, records the
//! generations file as an artifact and answers the figures as the job's result. I/O failures
//! and a dead worker are the retryable `EVALUATION_FAILED`.

use std::path::Path;

use serde_json::{json, Value};
use tunewright_events::event::{ArtifactRecorded, Event};
use tunewright_schemas::config::EvaluateConfig;
use tunewright_schemas::worker::{EvaluateWorkerSpec, WorkerFile, WorkerLine};
use tunewright_schemas::{ctx, ErrorCode, ErrorPhase, Failure};

use crate::admission::evaluate::{self as admit, EvalPlan, EVAL_PART};
use crate::executor::{JobContext, JobExecutor};
use crate::project::parts::write_part;
use crate::trainer::checkpoints::sha256_file;
use crate::trainer::process::{LineHandler, WorkerEnd, WorkerLauncher};
use crate::trainer::watchdog::{file_bytes, model_bytes, StartupLoad};
use crate::trainer::with_model_dir;

/// Runs `evaluate` jobs in worker processes.
#[derive(Clone)]
pub struct EvaluateExecutor {
    launcher: WorkerLauncher,
}

impl EvaluateExecutor {
    pub fn new(launcher: WorkerLauncher) -> Self {
        EvaluateExecutor { launcher }
    }
}

struct Ignore;

#[async_trait::async_trait]
impl LineHandler for Ignore {
    async fn line(&mut self, _line: &WorkerLine) -> Result<(), Failure> {
        Ok(())
    }
}

fn failed(reason: String) -> Failure {
    Failure::new(
        ErrorCode::EvaluationFailed,
        ctx! {"reason" => reason.clone()},
    )
    .caused_by(reason)
    .in_phase(ErrorPhase::Evaluation)
}

/// The examples the evaluation scores, one JSON per line: the lines of the project's dataset
/// in the split's `val` part (docs/projects.md, "Splits"), or all of them.
fn write_examples(ctx: &JobContext, plan: &EvalPlan, out: &Path) -> Result<usize, Failure> {
    let Some(dataset) = ctx.project.dataset.as_ref() else {
        return Err(Failure::new(
            ErrorCode::TrainingNoDataset,
            ctx! {"project_id" => ctx.project.id.to_string()},
        ));
    };
    let path = ctx.layout.resolve(&dataset.stored_path);
    write_part(&path, plan.split.as_ref(), EVAL_PART, out).map_err(failed)
}

#[async_trait::async_trait]
impl JobExecutor for EvaluateExecutor {
    async fn execute(&self, ctx: JobContext) -> Result<Value, Failure> {
        let config = EvaluateConfig::from_json(&ctx.job.config.0)?;
        let project_id = ctx.project.id;
        let plan = ctx.events.ledger().read(|s| {
            let project = s.projects.get(&project_id).unwrap_or(&ctx.project);
            admit::plan(s, project, &config)
        })?;
        let layout = ctx.layout.clone();
        let (run_id, weights) = (plan.run.id, plan.weights.clone());
        tokio::task::spawn_blocking(move || admit::verify(&layout, run_id, &weights))
            .await
            .map_err(|e| failed(format!("checking the weights: {e}")))??;
        let job_dir = ctx.job_dir();
        std::fs::create_dir_all(&job_dir)
            .map_err(|e| failed(format!("{}: {e}", job_dir.display())))?;
        let examples_path = ctx.layout.eval_examples(ctx.job.id);
        let available = write_examples(&ctx, &plan, &examples_path)?;
        let train_config = with_model_dir(&plan.run.effective_config.0)?;
        let base_model = train_config
            .get("base_model")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        let weights_dir = ctx
            .layout
            .resolve(&plan.weights.dir)
            .to_string_lossy()
            .into_owned();
        let generations_path = ctx.layout.generations(ctx.job.id);
        let spec = EvaluateWorkerSpec {
            job_id: ctx.job.id.to_string(),
            train_config,
            adapter_dir: plan.weights.step.is_none().then(|| weights_dir.clone()),
            checkpoint_dir: plan.weights.step.map(|_| weights_dir.clone()),
            checkpoint_files: match plan.weights.step {
                None => Vec::new(),
                Some(_) => plan
                    .weights
                    .files
                    .iter()
                    .map(|f| WorkerFile {
                        name: f.name.clone(),
                        sha256: f.sha256.clone(),
                        size_bytes: f.size_bytes,
                    })
                    .collect(),
            },
            examples_path: examples_path.to_string_lossy().into_owned(),
            generations_path: generations_path.to_string_lossy().into_owned(),
            max_examples: config.max_examples,
            prompts: config.prompts,
            max_new_tokens: config.max_new_tokens,
        };
        let spec_path = ctx
            .layout
            .worker_spec(ctx.job.id, &format!("evaluate-{}", ctx.attempt));
        let bytes = serde_json::to_vec_pretty(&spec).map_err(|e| failed(e.to_string()))?;
        std::fs::write(&spec_path, bytes)
            .map_err(|e| failed(format!("{}: {e}", spec_path.display())))?;
        let end = self
            .launcher
            .run(
                "evaluate",
                &spec_path,
                StartupLoad {
                    data_bytes: file_bytes(&examples_path),
                    model_bytes: model_bytes(Path::new(&base_model)),
                },
                ctx.stop.clone(),
                &mut Ignore,
            )
            .await?;
        let report = match end {
            WorkerEnd::Result(v) => v,
            WorkerEnd::Failed(f) => {
                return Err(if f.phase.is_some() {
                    f
                } else {
                    f.in_phase(ErrorPhase::Evaluation)
                })
            }
            WorkerEnd::Stopped { step, .. } => {
                return Err(failed(format!("stopped on request at example {step}")))
            }
            WorkerEnd::Died { status, log_tail } => {
                let mut f = failed(format!("the evaluation worker {status}"));
                f.log_tail = log_tail;
                return Err(f);
            }
            // Scoring is this worker's stepping stage: a silence there is the evaluation's.
            WorkerEnd::Stalled {
                mut stall,
                log_tail,
            } => {
                if stall.phase == ErrorPhase::Training {
                    stall.stage = "evaluation";
                    stall.phase = ErrorPhase::Evaluation;
                }
                return Err(stall.failure(log_tail));
            }
            WorkerEnd::SpawnFailed(r) => {
                return Err(failed(format!(
                    "the evaluation worker could not be started: {r}"
                )))
            }
        };
        // The generations file as it is on disk now: its hash is what the artifact promises.
        let gen_path = generations_path.clone();
        let (sha256, size) = tokio::task::spawn_blocking(move || {
            let sha = sha256_file(&gen_path)?;
            Ok::<_, std::io::Error>((sha, std::fs::metadata(&gen_path)?.len()))
        })
        .await
        .map_err(|e| failed(format!("hashing the generations: {e}")))?
        .map_err(|e| failed(format!("{}: {e}", generations_path.display())))?;
        let rel = ctx.layout.relative(&generations_path);
        let name = "generations.jsonl";
        ctx.events
            .record(vec![Event::ArtifactRecorded(ArtifactRecorded {
                job_id: ctx.job.id,
                name: name.to_string(),
                path: rel.clone(),
                sha256: sha256.clone(),
                size_bytes: size,
            })])
            .await?;
        let figure = |k: &str| report.get(k).cloned().unwrap_or(Value::Null);
        Ok(json!({
            "train_job": plan.run.id.to_string(),
            "checkpoint_step": config.checkpoint.to_json(),
            "split": plan.split.as_ref().map(|s| s.name.clone()),
            "part": plan.split.as_ref().map(|_| EVAL_PART),
            "examples_available": available,
            "examples": figure("examples"),
            "skipped_too_long": figure("skipped_too_long"),
            "answer_tokens": figure("answer_tokens"),
            "loss": figure("loss"),
            "perplexity": figure("perplexity"),
            "token_accuracy": figure("token_accuracy"),
            "generations": {
                "name": name,
                "path": rel,
                "sha256": sha256,
                "size_bytes": size,
                "count": figure("generations"),
            },
        }))
    }
}
