//! Turning a worker's protocol lines into job events: progress (at a bounded rate), notes and
//! checkpoints (each recorded durably before the next line is read, so a crash never loses an
//! acknowledged checkpoint).

use std::path::Path;
use std::time::{Duration, Instant};

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
    progress_every: Duration,
    last_progress: Option<Instant>,
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
            progress_every: Duration::from_millis(500),
            last_progress: None,
        }
    }

    fn relative(&self, dir: &str) -> String {
        self.layout.relative(Path::new(dir))
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
                let due = self
                    .last_progress
                    .is_none_or(|t| t.elapsed() >= self.progress_every);
                if !due && step != total_steps {
                    return Ok(());
                }
                self.last_progress = Some(Instant::now());
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
        self.sink.record(vec![event]).await
    }
}
