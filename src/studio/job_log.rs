//! What the job and compare pages read from a job's stream of the log, kept per job and caught
//! up incrementally: the curves (loss, learning rate and gradient norm of every recorded step,
//! eval loss of every evaluation), the job's story (the `replay list` rows of every event but
//! progress), when checkpoints were written and when attempts ran. A page view reads only the
//! events committed since the last one, so a run of 100,000 logged steps costs one full read,
//! once.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Arc, Mutex};

use serde::Serialize;
use tunewright_events::timestamp::format_ts;
use tunewright_events::{Event, EventLog, StoredEvent, StreamId};
use tunewright_schemas::{DataLayout, JobId};

use super::saved_reading::{self, Snapshot};
use crate::http::error::{ApiError, ApiResult};

/// Events read per batch while catching up.
const PAGE: usize = 8192;
/// A running job's reading is saved again once the log has grown this many seqs past its last
/// saved copy (`saved_reading`), so a restart mid-run reads only the rest.
pub const SAVE_EVERY: u64 = 10_000;
/// Pages read ahead of the one being applied.
const READ_AHEAD: usize = 2;

/// Jobs whose reading is kept. A page view of another job evicts the least recently viewed:
/// each entry holds up to `MAX_STEPS_HELD` points, so this bounds the cache's memory.
const MAX_JOBS: usize = 16;

/// Steps held per job. A longer run is thinned to half this (`downsample::min_max`, extremes
/// kept) when it gets there, so memory stays bounded (about 20 MB per job) however long it runs;
/// the pages draw at most a few thousand points per curve anyway.
pub const MAX_STEPS_HELD: usize = 400_000;

/// Story rows held per job (the newest; `replay list` shows them all): a job retried for days
/// must not grow a page without bound.
pub const MAX_STORY_ROWS: usize = 500;

/// One recorded training step.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct StepPoint {
    pub loss: Option<f64>,
    pub learning_rate: Option<f64>,
    pub grad_norm: Option<f64>,
}

/// One row of the job's story.
#[derive(Debug, Clone, Serialize)]
pub struct StoryRow {
    pub seq: u64,
    pub ts: String,
    pub kind: String,
    pub text: String,
}

/// The job's stream, read up to `through_seq`.
#[derive(Debug, Default)]
pub struct JobLog {
    pub through_seq: u64,
    /// When the event at `through_seq` was committed (what a saved reading is checked against).
    pub through_ts_ms: i64,
    /// The `through_seq` of this reading's saved copy (`saved_reading`), 0 when none.
    pub saved_seq: u64,
    pub steps: BTreeMap<u64, StepPoint>,
    pub eval_loss: BTreeMap<u64, f64>,
    pub story: VecDeque<StoryRow>,
    pub story_dropped: u64,
    /// When each checkpoint step was saved (ms since the epoch).
    pub checkpoint_at_ms: BTreeMap<u64, i64>,
    pub first_attempt_at_ms: Option<i64>,
    /// The latest attempt's first and last progress: `(step, ms)`.
    pub attempt_progress: Option<((u64, i64), (u64, i64))>,
    /// When the job reached its final status.
    pub finished_at_ms: Option<i64>,
    /// The thinned curves as JSON and the `through_seq` they were computed at (`curves`).
    pub thinned: Option<(u64, std::sync::Arc<str>)>,
}

fn finite(v: Option<f64>) -> Option<f64> {
    v.filter(|x| x.is_finite())
}

impl JobLog {
    pub(super) fn apply(&mut self, e: &StoredEvent) {
        self.through_seq = e.seq;
        self.through_ts_ms = e.ts_ms;
        match &e.event {
            Event::JobProgress(p) => {
                let point = StepPoint {
                    loss: finite(p.loss),
                    learning_rate: finite(p.learning_rate),
                    grad_norm: finite(p.grad_norm),
                };
                if point.loss.is_some() || point.learning_rate.is_some() {
                    self.steps.insert(p.step, point);
                    self.thin();
                }
                let first = self.attempt_progress.map_or((p.step, e.ts_ms), |(f, _)| f);
                self.attempt_progress = Some((first, (p.step, e.ts_ms)));
                return;
            }
            Event::JobNote(n) if n.topic == "evaluation" => {
                let step = n.data.0.get("step").and_then(|s| s.as_u64());
                let loss = n.data.0.get("eval_loss").and_then(|l| l.as_f64());
                if let (Some(step), Some(loss)) = (step, finite(loss)) {
                    self.eval_loss.insert(step, loss);
                }
            }
            Event::JobAttemptStarted(_) => {
                self.first_attempt_at_ms.get_or_insert(e.ts_ms);
                self.attempt_progress = None;
                self.finished_at_ms = None;
            }
            Event::CheckpointSaved(c) => {
                self.checkpoint_at_ms.insert(c.step, e.ts_ms);
            }
            Event::JobSucceeded(_) | Event::JobFailed(_) | Event::JobCancelled(_) => {
                self.finished_at_ms = Some(e.ts_ms);
            }
            _ => {}
        }
        self.story.push_back(StoryRow {
            seq: e.seq,
            ts: format_ts(e.ts_ms),
            kind: e.event.type_name().to_string(),
            text: crate::replay::list::row_data(e),
        });
        if self.story.len() > MAX_STORY_ROWS {
            self.story.pop_front();
            self.story_dropped += 1;
        }
    }

    /// Keep memory bounded (see `MAX_STEPS_HELD`).
    fn thin(&mut self) {
        if self.steps.len() <= MAX_STEPS_HELD {
            return;
        }
        let losses: Vec<(u64, f64)> = self
            .steps
            .iter()
            .map(|(s, p)| (*s, p.loss.unwrap_or(f64::NAN)))
            .collect();
        let keep: std::collections::BTreeSet<u64> =
            super::downsample::min_max(&losses, MAX_STEPS_HELD / 2)
                .into_iter()
                .map(|(s, _)| s)
                .collect();
        self.steps.retain(|s, _| keep.contains(s));
    }

    /// The `(step, value)` series of one metric of the steps.
    pub fn series(&self, metric: impl Fn(&StepPoint) -> Option<f64>) -> Vec<(u64, f64)> {
        self.steps
            .iter()
            .filter_map(|(s, p)| metric(p).map(|v| (*s, v)))
            .collect()
    }
}

/// One job's reading, locked while it is caught up, and when it was last used.
type Entry = (Arc<tokio::sync::Mutex<JobLog>>, u64);

/// The readings of recently viewed jobs. Cheap to clone.
#[derive(Clone, Default)]
pub struct JobLogCache {
    entries: Arc<Mutex<HashMap<JobId, Entry>>>,
    clock: Arc<std::sync::atomic::AtomicU64>,
    /// Where finished jobs' readings are saved and loaded (`saved_reading`); none: never.
    saved: Option<Arc<DataLayout>>,
}

impl JobLogCache {
    /// A cache that saves finished jobs' readings in the data directory `layout` describes.
    pub fn saving_in(layout: DataLayout) -> Self {
        JobLogCache {
            saved: Some(Arc::new(layout)),
            ..JobLogCache::default()
        }
    }

    fn entry(&self, job: JobId) -> Arc<tokio::sync::Mutex<JobLog>> {
        let now = self
            .clock
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        // Every update is one call on the map, so a poisoned lock still holds a valid map.
        let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((log, used)) = entries.get_mut(&job) {
            *used = now;
            return log.clone();
        }
        if entries.len() >= MAX_JOBS {
            if let Some(oldest) = entries.iter().min_by_key(|(_, (_, u))| *u).map(|(k, _)| *k) {
                entries.remove(&oldest);
            }
        }
        let log = Arc::new(tokio::sync::Mutex::new(JobLog::default()));
        entries.insert(job, (log.clone(), now));
        log
    }

    /// Catch the job's reading up with the log, then look at it. `f` also gets the seq from
    /// which a live stream continues without a gap or a repeat: every event of this job up to
    /// it is in the reading.
    pub async fn read<R>(
        &self,
        log: &EventLog,
        job: JobId,
        f: impl FnOnce(&mut JobLog, u64) -> R,
    ) -> ApiResult<R> {
        let entry = self.entry(job);
        let mut reading = entry.lock().await;
        if reading.through_seq == 0 {
            if let Some(layout) = &self.saved {
                let (path, log) = (layout.studio_reading(job), log.clone());
                let loaded =
                    tokio::task::spawn_blocking(move || saved_reading::load(&path, job, &log))
                        .await
                        .map_err(ApiError::internal)?;
                if let Some(loaded) = loaded {
                    *reading = loaded;
                }
            }
        }
        let log_seq = log.last_seq();
        // Pages are read and decoded on a blocking thread while the ones before them are
        // applied here, so a long run's first reading costs about its read, not read + apply.
        let (pages, mut received) = tokio::sync::mpsc::channel(READ_AHEAD);
        let (log, mut after) = (log.clone(), reading.through_seq);
        let reader = tokio::task::spawn_blocking(move || loop {
            let page = log.read_stream(StreamId::Job(job), after, PAGE);
            let more = match &page {
                Ok(events) if events.len() == PAGE => events.last().map(|e| e.seq),
                _ => None,
            };
            if pages.blocking_send(page).is_err() {
                return;
            }
            match more {
                Some(seq) => after = seq,
                None => return,
            }
        });
        while let Some(page) = received.recv().await {
            let page = page.map_err(|e| ApiError(tunewright_actors::ledger::log_failure(e)))?;
            for e in &page {
                reading.apply(e);
            }
        }
        reader.await.map_err(ApiError::internal)?;
        let resume_after = log_seq.max(reading.through_seq);
        let answer = f(&mut reading, resume_after);
        self.save(job, &mut reading);
        Ok(answer)
    }

    /// Save a reading once its job has finished, and a running job's every `SAVE_EVERY` seqs
    /// (in the background: a view never waits for the write).
    fn save(&self, job: JobId, reading: &mut JobLog) {
        let Some(layout) = &self.saved else { return };
        let unsaved = reading.through_seq - reading.saved_seq.min(reading.through_seq);
        let finished = reading.finished_at_ms.is_some() && unsaved > 0;
        if !finished && unsaved < SAVE_EVERY {
            return;
        }
        reading.saved_seq = reading.through_seq;
        let (snapshot, path) = (Snapshot::of(job, reading), layout.studio_reading(job));
        tokio::task::spawn_blocking(move || snapshot.write(&path));
    }
}
