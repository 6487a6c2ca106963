//! The `dataset_preview` and `dataset_generate` executors.
//!
//! Preview: a few chunks through the LLM, examples returned in the job result, nothing stored.
//! Generate: every chunk, progress and per-chunk events, resume by skipping chunks recorded as
//! done, the dataset JSONL written atomically (sha256), validated and imported into the project
//! (source = the job id) once: an attempt that finds the project already holding a dataset
//! imported by this job (a crash after the import, before the outcome) reuses it. `DATASET_TOO_FEW_EXAMPLES` under 10 valid examples;
//! `DATASET_GENERATION_FAILED` when the LLM keeps failing on the job's last attempt.

use std::collections::BTreeMap;

use sha2::{Digest, Sha256};
use tunewright_events::event::{ArtifactRecorded, GenerationChunkDone, JobNote, JobProgress};
use tunewright_events::Event;
use tunewright_schemas::config::GenerationConfig;
use tunewright_schemas::{ctx, DataLayout, DatasetId, ErrorCode, Failure, Json};

use super::chunk_run::run_chunk;
use super::chunk_store::{done_chunks, write_atomic};
use super::examples::{dedup, Example};
use super::json_repair::RepairStep;
use super::llm_client::{LlmClient, LlmSettings, RetryPolicy};
use super::source::chunks_of_blocking;
use crate::executor::{JobContext, JobExecutor};
use crate::project::DatasetRecord;

/// Fewest valid examples a generated dataset may have.
pub const MIN_EXAMPLES: usize = 10;

/// Executor of `dataset_preview` jobs.
#[derive(Clone, Default)]
pub struct DatasetPreviewExecutor {
    pub policy: RetryPolicy,
}

/// Executor of `dataset_generate` jobs.
#[derive(Clone, Default)]
pub struct DatasetGenerateExecutor {
    pub policy: RetryPolicy,
}

fn client(cfg: &GenerationConfig, policy: RetryPolicy) -> Result<LlmClient, Failure> {
    Ok(LlmClient::new(LlmSettings::resolve(cfg)?)?.with_policy(policy))
}

fn stopped() -> Failure {
    Failure::new(
        ErrorCode::DatasetGenerationFailed,
        ctx! {"reason" => "the job was stopped"},
    )
}

fn step_counts(steps: impl Iterator<Item = String>) -> serde_json::Value {
    let mut counts: BTreeMap<String, u64> = RepairStep::ALL
        .iter()
        .map(|s| (s.as_str().to_string(), 0))
        .collect();
    for s in steps {
        *counts.entry(s).or_default() += 1;
    }
    serde_json::json!(counts)
}

fn chunk_done(ctx: &JobContext, index: u32, examples: usize, step: RepairStep) -> Event {
    Event::GenerationChunkDone(GenerationChunkDone {
        job_id: ctx.job.id,
        chunk_index: index,
        examples: examples as u32,
        repair_step: step.as_str().to_string(),
    })
}

fn note(ctx: &JobContext, topic: &str, data: serde_json::Value) -> Event {
    Event::JobNote(JobNote {
        job_id: ctx.job.id,
        topic: topic.into(),
        data: Json(data),
    })
}

#[async_trait::async_trait]
impl JobExecutor for DatasetPreviewExecutor {
    async fn execute(&self, ctx: JobContext) -> Result<serde_json::Value, Failure> {
        let cfg = GenerationConfig::from_json(&ctx.job.config.0)?;
        let (chunks, skipped) =
            chunks_of_blocking(ctx.layout.clone(), ctx.project.clone(), cfg.clone()).await?;
        let client = client(&cfg, self.policy)?;
        let mut stop = ctx.stop.clone();
        let mut examples = Vec::new();
        let mut steps = Vec::new();
        for chunk in chunks.iter().take(cfg.preview_chunks) {
            if ctx.stop.requested().is_some() {
                return Err(stopped());
            }
            let out = stop
                .unless_stopped(
                    run_chunk(&client, chunk.index, &chunk.text, cfg.examples_per_chunk),
                    |_| stopped(),
                )
                .await?;
            ctx.events
                .record(vec![chunk_done(
                    &ctx,
                    chunk.index,
                    out.examples.len(),
                    out.step,
                )])
                .await?;
            steps.push(out.step.as_str().to_string());
            examples.extend(out.examples);
        }
        let (examples, duplicates) = dedup(examples);
        let counts = step_counts(steps.into_iter());
        ctx.events
            .record(vec![note(&ctx, "json_repair", counts.clone())])
            .await?;
        if examples.is_empty() {
            return Err(Failure::new(
                ErrorCode::OllamaResponseInvalid,
                ctx! {"reason" => "no chunk of the preview gave a usable example", "repair_steps" => counts},
            ));
        }
        Ok(serde_json::json!({
            "examples": examples,
            "chunks_used": chunks.len().min(cfg.preview_chunks),
            "chunks_total": chunks.len(),
            "duplicates_dropped": duplicates,
            "documents_skipped": skipped,
            "repair_steps": counts,
        }))
    }
}

#[async_trait::async_trait]
impl JobExecutor for DatasetGenerateExecutor {
    async fn execute(&self, ctx: JobContext) -> Result<serde_json::Value, Failure> {
        let cfg = GenerationConfig::from_json(&ctx.job.config.0)?;
        let (chunks, skipped) =
            chunks_of_blocking(ctx.layout.clone(), ctx.project.clone(), cfg.clone()).await?;
        let client = client(&cfg, self.policy)?;
        let mut stop = ctx.stop.clone();
        let mut done = done_chunks(&ctx.layout, &ctx.job);
        let resumed = done.len();
        if resumed > 0 {
            tracing::info!(job = %ctx.job.id, chunks = resumed, "resuming generation, skipping finished chunks");
        }
        let total = chunks.len() as u64;
        for chunk in &chunks {
            if done.contains_key(&chunk.index) {
                continue;
            }
            if ctx.stop.requested().is_some() {
                return Err(stopped());
            }
            let work = run_chunk(&client, chunk.index, &chunk.text, cfg.examples_per_chunk);
            let out = match stop.unless_stopped(work, |_| stopped()).await {
                Ok(o) => o,
                Err(f) if ctx.stop.requested().is_some() => return Err(f),
                Err(f) => return Err(last_attempt_failure(&ctx, f, chunk.index)),
            };
            let bytes = serde_json::to_vec(&out.examples).map_err(|e| {
                Failure::new(
                    ErrorCode::DatasetGenerationFailed,
                    ctx! {"reason" => e.to_string()},
                )
            })?;
            write_atomic(&ctx.layout.chunk_file(ctx.job.id, chunk.index), &bytes)?;
            let n_done = done.len() as u64 + 1;
            let n_examples: usize =
                done.values().map(|(x, _)| x.len()).sum::<usize>() + out.examples.len();
            ctx.events
                .record(vec![
                    chunk_done(&ctx, chunk.index, out.examples.len(), out.step),
                    Event::JobProgress(JobProgress {
                        job_id: ctx.job.id,
                        phase: "generation".into(),
                        step: n_done,
                        total_steps: total,
                        loss: None,
                        learning_rate: None,
                        grad_norm: None,
                        tokens_per_sec: None,
                        memory_bytes: None,
                        extra: Json(serde_json::json!({"examples": n_examples, "dropped_invalid": out.dropped})),
                    }),
                ])
                .await?;
            done.insert(chunk.index, (out.examples, out.step.as_str().to_string()));
        }
        let counts = step_counts(done.values().map(|(_, s)| s.clone()));
        let all: Vec<Example> = done.into_values().flat_map(|(x, _)| x).collect();
        let (examples, duplicates) = dedup(all);
        ctx.events
            .record(vec![note(
                &ctx,
                "json_repair",
                serde_json::json!({
                    "repair_steps": counts, "duplicates_dropped": duplicates,
                    "chunks_resumed": resumed, "documents_skipped": skipped,
                }),
            )])
            .await?;
        if examples.len() < MIN_EXAMPLES {
            return Err(Failure::new(
                ErrorCode::DatasetTooFewExamples,
                ctx! {"num_examples" => examples.len(), "min_examples" => MIN_EXAMPLES},
            ));
        }
        write_dataset(&ctx, &examples, counts, duplicates).await
    }
}

/// On the job's last attempt a still-failing chunk ends the job as `DATASET_GENERATION_FAILED`
/// (cause: the LLM's failure); before that the LLM's own (retryable) code lets the scheduler retry.
fn last_attempt_failure(ctx: &JobContext, f: Failure, chunk: u32) -> Failure {
    let retryable = f.error_code.is_retryable();
    if retryable && ctx.attempt > ctx.job.max_retries {
        let mut out = Failure::new(
            ErrorCode::DatasetGenerationFailed,
            ctx! {"reason" => format!("chunk {chunk}: {}", f.detail), "llm_error_code" => f.error_code.as_str()},
        );
        out.cause_chain = std::iter::once(f.detail.clone())
            .chain(f.cause_chain)
            .collect();
        out
    } else {
        f
    }
}

async fn write_dataset(
    ctx: &JobContext,
    examples: &[Example],
    counts: serde_json::Value,
    duplicates: usize,
) -> Result<serde_json::Value, Failure> {
    let mut bytes = Vec::new();
    for x in examples {
        let line = serde_json::to_string(x).map_err(|e| {
            Failure::new(
                ErrorCode::DatasetGenerationFailed,
                ctx! {"reason" => e.to_string()},
            )
        })?;
        bytes.extend_from_slice(line.as_bytes());
        bytes.push(b'\n');
    }
    if let Some(prev) = &ctx.job.imported_dataset {
        // A previous attempt imported the dataset, then the process stopped before the job's
        // outcome was recorded: importing again would replace it with a new id (and drop the
        // splits made of it). Its file is left as it is, so its sha256 still holds.
        tracing::info!(job = %ctx.job.id, dataset = %prev.id, "dataset already imported by an earlier attempt of this job");
        return Ok(serde_json::json!({
            "dataset_id": prev.id.to_string(),
            "num_examples": prev.num_examples,
            "path": prev.stored_path,
            "sha256": prev.sha256,
            "duplicates_dropped": duplicates,
            "repair_steps": counts,
            "already_imported": true,
        }));
    }
    let summary = tunewright_schemas::dataset::validate_jsonl(&bytes)?;
    let rel = DataLayout::rel_generated_dataset(ctx.job.id);
    write_atomic(&ctx.layout.resolve(&rel), &bytes)?;
    let sha256 = format!("{:x}", Sha256::digest(&bytes));
    let artifact = (rel.clone(), sha256.clone());
    let recorded = ctx.events.ledger().read(|s| {
        s.jobs
            .get(&ctx.job.id)
            .and_then(|j| j.artifacts.get("dataset"))
            == Some(&artifact)
    });
    if !recorded {
        ctx.events
            .record(vec![Event::ArtifactRecorded(ArtifactRecorded {
                job_id: ctx.job.id,
                name: "dataset".into(),
                path: rel.clone(),
                sha256: sha256.clone(),
                size_bytes: bytes.len() as u64,
            })])
            .await?;
    }
    let dataset = ctx
        .projects
        .import_dataset(
            ctx.project.id,
            DatasetRecord {
                dataset_id: DatasetId::new(),
                format: summary.format.to_string(),
                num_examples: summary.num_examples as u64,
                size_bytes: bytes.len() as u64,
                sha256: sha256.clone(),
                stored_path: rel.clone(),
                source: ctx.job.id.to_string(),
            },
        )
        .await?;
    Ok(serde_json::json!({
        "dataset_id": dataset.id.to_string(),
        "num_examples": summary.num_examples,
        "path": rel,
        "sha256": sha256,
        "duplicates_dropped": duplicates,
        "repair_steps": counts,
    }))
}
