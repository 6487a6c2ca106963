//! Turning a worker's protocol lines into job events: progress (every logged step, under a
//! rate bound, `PROGRESS_PER_SEC`), notes and checkpoints (each recorded durably before the next line is read, so a
//! crash never loses an acknowledged checkpoint). It also measures the time per optimizer step
//! (`tunewright_training_step_seconds`).

use std::path::Path;
use std::time::Instant;

use tunewright_events::event::{CheckpointSaved, Event, FileDigest, JobNote, JobProgress};
use tunewright_events::projection::CheckpointView;
use tunewright_schemas::worker::WorkerLine;
use tunewright_schemas::{DataLayout, Failure, JobId, Json};

use super::process::LineHandler;
use crate::executor::EventSink;

/// Records one worker run's lines; remembers the checkpoints it wrote.
pub struct JobEventWriter {
    pub job_id: JobId,
    pub sink: EventSink,
    pub layout: DataLayout,
    /// Checkpoints of this job known so far (the job's, then this attempt's).
    pub checkpoints: Vec<CheckpointView>,
    pub last_step: u64,
    progress_budget: ProgressBudget,
    /// The previous progress line's step and arrival, for the step-time histogram.
    previous_line: Option<(u64, Instant)>,
}

/// The bound on recorded progress events of one run: a token bucket of `PROGRESS_BURST` events
/// refilled at `PROGRESS_PER_SEC`. The worker writes one progress line per `logging_steps`
/// step, and each is recorded so that the log holds the whole loss curve; the bound only
/// matters for a tiny model logging every step on a fast GPU (hundreds of steps a second) for
/// long, which would otherwise grow the log by hundreds of events a second for hours. A run
/// slower than 50 logged steps a second, and the first 1,000 logged steps of any run, keep every
/// point; 50 a second is far below what the log's group commit sustains (tens of thousands of
/// events a second, README "Performance"). The last step is always recorded.
pub const PROGRESS_PER_SEC: f64 = 50.0;
pub const PROGRESS_BURST: f64 = 1000.0;

/// The token bucket of `PROGRESS_PER_SEC`.
#[derive(Debug)]
struct ProgressBudget {
    tokens: f64,
    refilled: Instant,
}

impl ProgressBudget {
    fn new() -> Self {
        ProgressBudget {
            tokens: PROGRESS_BURST,
            refilled: Instant::now(),
        }
    }

    /// Take one event's worth; whether there was one.
    fn take(&mut self) -> bool {
        let now = Instant::now();
        let earned = now.duration_since(self.refilled).as_secs_f64() * PROGRESS_PER_SEC;
        self.tokens = (self.tokens + earned).min(PROGRESS_BURST);
        self.refilled = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            return true;
        }
        false
    }
}

impl JobEventWriter {
    pub fn new(
        job_id: JobId,
        sink: EventSink,
        layout: DataLayout,
        checkpoints: Vec<CheckpointView>,
    ) -> Self {
        JobEventWriter {
            job_id,
            sink,
            layout,
            checkpoints,
            last_step: 0,
            progress_budget: ProgressBudget::new(),
            previous_line: None,
        }
    }

    fn relative(&self, dir: &str) -> String {
        self.layout.relative(Path::new(dir))
    }

    /// Record the time per step since the previous progress line.
    fn measure_step_time(&mut self, step: u64) {
        let now = Instant::now();
        if let Some((prev, at)) = self.previous_line {
            if step > prev {
                let per_step = now.duration_since(at).as_secs_f64() / (step - prev) as f64;
                metrics::histogram!("tunewright_training_step_seconds").record(per_step);
            }
        }
        self.previous_line = Some((step, now));
    }

    /// Whether the progress line of `step` is recorded (see `PROGRESS_PER_SEC`).
    fn progress_due(&mut self, step: u64, total_steps: u64) -> bool {
        self.progress_budget.take() || step == total_steps
    }
}

#[async_trait::async_trait]
impl LineHandler for JobEventWriter {
    async fn line(&mut self, line: &WorkerLine) -> Result<(), Failure> {
        let event = match line {
            WorkerLine::Progress {
                phase,
                step,
                total_steps,
                loss,
                learning_rate,
                grad_norm,
                tokens_per_sec,
                memory_bytes,
            } => {
                self.last_step = *step;
                self.measure_step_time(*step);
                if !self.progress_due(*step, *total_steps) {
                    return Ok(());
                }
                Event::JobProgress(JobProgress {
                    job_id: self.job_id,
                    phase: phase.clone(),
                    step: *step,
                    total_steps: *total_steps,
                    loss: *loss,
                    learning_rate: *learning_rate,
                    grad_norm: *grad_norm,
                    tokens_per_sec: *tokens_per_sec,
                    memory_bytes: *memory_bytes,
                    extra: Json(serde_json::Value::Null),
                })
            }
            WorkerLine::Note { topic, data } => Event::JobNote(JobNote {
                job_id: self.job_id,
                topic: topic.clone(),
                data: Json(data.clone()),
            }),
            WorkerLine::Checkpoint { step, dir, files } => {
                let files: Vec<FileDigest> = files
                    .iter()
                    .map(|f| FileDigest {
                        name: f.name.clone(),
                        sha256: f.sha256.clone(),
                        size_bytes: f.size_bytes,
                    })
                    .collect();
                let dir = self.relative(dir);
                self.checkpoints.push(CheckpointView {
                    step: *step,
                    dir: dir.clone(),
                    files: files.clone(),
                    rejected: None,
                });
                Event::CheckpointSaved(CheckpointSaved {
                    job_id: self.job_id,
                    step: *step,
                    dir,
                    files,
                })
            }
            _ => return Ok(()),
        };
        let advisory = matches!(event, Event::JobProgress(_) | Event::JobNote(_));
        match self.sink.record(vec![event]).await {
            // Progress and notes are what a training reports along the way: one that cannot be
            // written (a full disk) is dropped with a warning rather than failing the training;
            // a checkpoint must be recorded to be resumed from, so its failure fails the attempt
            // (docs/storage.md).
            Err(f) if advisory => {
                metrics::counter!("tunewright_progress_events_dropped_total").increment(1);
                tracing::warn!(job = %self.job_id, failure = %f, "a progress event could not be recorded; the training goes on");
                Ok(())
            }
            other => other,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_is_recorded_whole_and_a_flood_is_bounded() {
        let mut b = ProgressBudget::new();
        let started = Instant::now();
        let taken = (0..5000).filter(|_| b.take()).count();
        let allowed = PROGRESS_BURST + started.elapsed().as_secs_f64() * PROGRESS_PER_SEC + 1.0;
        assert!(
            taken >= PROGRESS_BURST as usize,
            "the first {PROGRESS_BURST} pass: {taken}"
        );
        assert!((taken as f64) <= allowed, "{taken} > {allowed}");
    }
}
