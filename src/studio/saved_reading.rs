//! The studio's saved readings: a job's reading (`JobLog`: its curves, story and
//! checkpoint times, and the thinned curves' JSON) written beside the job once it has finished
//! (and every so often while it runs, `job_log::SAVE_EVERY`), so that the first
//! view of a long run after a restart loads a few megabytes instead of reading and decoding
//! every one of its events. A saved reading is a cache of the log, never a source of truth:
//! it is used only when its checksum holds and the log still has, at the seq it was read
//! through, an event of this job committed at the same time; otherwise it is ignored and the
//! job is read from the log as if it were absent. Events after it are read from the log.
//!
//! File: `b"TWSR"`, format `u16` LE, CRC32 `u32` LE of the payload, the payload (bincode).

use std::collections::{BTreeMap, VecDeque};
use std::path::Path;

use tunewright_events::{EventLog, StreamId};
use tunewright_schemas::JobId;

use super::job_log::{JobLog, StepPoint, StoryRow};

const MAGIC: &[u8; 4] = b"TWSR";
const FORMAT: u16 = 1;
const HEADER: usize = 4 + 2 + 4;

/// A step: (step, loss, learning rate, gradient norm).
type SavedStep = (u64, Option<f64>, Option<f64>, Option<f64>);
/// A story row: (seq, time, kind, text).
type SavedRow = (u64, String, String, String);

#[derive(bincode::Encode, bincode::Decode)]
struct Saved {
    job: [u8; 16],
    through_seq: u64,
    through_ts_ms: i64,
    steps: Vec<SavedStep>,
    eval_loss: Vec<(u64, f64)>,
    story: Vec<SavedRow>,
    story_dropped: u64,
    checkpoint_at_ms: Vec<(u64, i64)>,
    first_attempt_at_ms: Option<i64>,
    attempt_progress: Option<((u64, i64), (u64, i64))>,
    finished_at_ms: Option<i64>,
    thinned: Option<(u64, String)>,
}

/// A reading's copy, taken under the job's lock and written later (`write`) off it.
pub struct Snapshot(Saved);

impl Snapshot {
    pub fn of(job: JobId, l: &JobLog) -> Snapshot {
        Snapshot(Saved {
            job: job.0,
            through_seq: l.through_seq,
            through_ts_ms: l.through_ts_ms,
            steps: l
                .steps
                .iter()
                .map(|(s, p)| (*s, p.loss, p.learning_rate, p.grad_norm))
                .collect(),
            eval_loss: l.eval_loss.iter().map(|(s, v)| (*s, *v)).collect(),
            story: l
                .story
                .iter()
                .map(|r| (r.seq, r.ts.clone(), r.kind.clone(), r.text.clone()))
                .collect(),
            story_dropped: l.story_dropped,
            checkpoint_at_ms: l.checkpoint_at_ms.iter().map(|(s, t)| (*s, *t)).collect(),
            first_attempt_at_ms: l.first_attempt_at_ms,
            attempt_progress: l.attempt_progress,
            finished_at_ms: l.finished_at_ms,
            thinned: l.thinned.as_ref().map(|(seq, j)| (*seq, j.to_string())),
        })
    }

    /// Write the copy to `path` (a temporary file renamed over it, so a reader never sees half
    /// of one). A failure (a full disk, a read-only data directory) only costs the next start
    /// a read of the log, so it is reported and otherwise ignored.
    pub fn write(&self, path: &Path) {
        let Some(dir) = path.parent() else { return };
        if !dir.is_dir() {
            return;
        }
        let payload = match bincode::encode_to_vec(&self.0, bincode::config::standard()) {
            Ok(p) => p,
            Err(e) => {
                tracing::warn!(error = %e, "studio: a job's reading could not be encoded");
                return;
            }
        };
        let mut bytes = Vec::with_capacity(HEADER + payload.len());
        bytes.extend_from_slice(MAGIC);
        bytes.extend_from_slice(&FORMAT.to_le_bytes());
        bytes.extend_from_slice(&crc32fast::hash(&payload).to_le_bytes());
        bytes.extend_from_slice(&payload);
        // Named after the seq, so two saves of one job at once never share a temporary file.
        let tmp = path.with_extension(format!("{}.tmp", self.0.through_seq));
        let written = std::fs::write(&tmp, &bytes).and_then(|()| std::fs::rename(&tmp, path));
        if let Err(e) = written {
            let _ = std::fs::remove_file(&tmp);
            tracing::warn!(path = %path.display(), error = %e, "studio: a job's reading could not be saved; the next start reads it from the log");
        }
    }
}

/// The reading saved at `path` for `job`, if there is one that `log` confirms.
pub fn load(path: &Path, job: JobId, log: &EventLog) -> Option<JobLog> {
    let bytes = std::fs::read(path).ok()?;
    let saved = decode(&bytes, job)?;
    confirmed(&saved, job, log).then(|| into_reading(saved))
}

fn decode(bytes: &[u8], job: JobId) -> Option<Saved> {
    let (header, payload) = (bytes.get(..HEADER)?, bytes.get(HEADER..)?);
    let crc = u32::from_le_bytes(header[6..10].try_into().ok()?);
    if &header[..4] != MAGIC
        || u16::from_le_bytes([header[4], header[5]]) != FORMAT
        || crc32fast::hash(payload) != crc
    {
        return None;
    }
    let (saved, used): (Saved, usize) =
        bincode::decode_from_slice(payload, bincode::config::standard()).ok()?;
    (used == payload.len() && saved.job == job.0).then_some(saved)
}

/// The log still holds this job's event at the seq the reading went through, committed when
/// the reading says (a log replaced by a salvaged or restored one fails this).
fn confirmed(saved: &Saved, job: JobId, log: &EventLog) -> bool {
    if saved.through_seq == 0 || saved.through_seq > log.last_seq() {
        return false;
    }
    match log.read_stream(StreamId::Job(job), saved.through_seq - 1, 1) {
        Ok(events) => events
            .first()
            .is_some_and(|e| e.seq == saved.through_seq && e.ts_ms == saved.through_ts_ms),
        Err(_) => false,
    }
}

fn into_reading(s: Saved) -> JobLog {
    JobLog {
        through_seq: s.through_seq,
        through_ts_ms: s.through_ts_ms,
        saved_seq: s.through_seq,
        steps: s
            .steps
            .into_iter()
            .map(|(step, loss, learning_rate, grad_norm)| {
                let point = StepPoint {
                    loss,
                    learning_rate,
                    grad_norm,
                };
                (step, point)
            })
            .collect::<BTreeMap<_, _>>(),
        eval_loss: s.eval_loss.into_iter().collect(),
        story: s
            .story
            .into_iter()
            .map(|(seq, ts, kind, text)| StoryRow {
                seq,
                ts,
                kind,
                text,
            })
            .collect::<VecDeque<_>>(),
        story_dropped: s.story_dropped,
        checkpoint_at_ms: s.checkpoint_at_ms.into_iter().collect(),
        first_attempt_at_ms: s.first_attempt_at_ms,
        attempt_progress: s.attempt_progress,
        finished_at_ms: s.finished_at_ms,
        thinned: s.thinned.map(|(seq, j)| (seq, j.into())),
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use tunewright_events::event::{
        CheckpointSaved, JobAttemptStarted, JobCreated, JobProgress, JobSucceeded, ProjectCreated,
    };
    use tunewright_events::Event;
    use tunewright_schemas::{DataLayout, JobKind, Json, ProjectId};

    use super::*;
    use crate::studio::curves::curves_json;
    use crate::studio::job_log::{JobLogCache, SAVE_EVERY};

    /// A log with one finished training of `steps` steps (a checkpoint every 50).
    fn finished_training(dir: &Path, steps: u64) -> (EventLog, JobId) {
        let (log, job_id) = running_training(dir, steps);
        log.append_blocking(vec![Event::JobSucceeded(JobSucceeded {
            job_id,
            attempt: 1,
            result: Json(serde_json::json!({})),
        })])
        .unwrap();
        (log, job_id)
    }

    /// The same, still running.
    fn running_training(dir: &Path, steps: u64) -> (EventLog, JobId) {
        let log = EventLog::open(&DataLayout::new(dir).event_log()).unwrap();
        let (project_id, job_id) = (ProjectId::new(), JobId::new());
        let mut events = vec![
            Event::ProjectCreated(ProjectCreated {
                project_id,
                name: "p".into(),
            }),
            Event::JobCreated(JobCreated {
                job_id,
                project_id,
                kind: JobKind::Train,
                config: Json(serde_json::json!({"max_steps": steps})),
                max_retries: 0,
                queue_timeout_ms: 60_000,
            }),
            Event::JobAttemptStarted(JobAttemptStarted { job_id, attempt: 1 }),
        ];
        for step in 1..=steps {
            progress(&mut events, job_id, step, steps);
            if step % 50 == 0 {
                events.push(Event::CheckpointSaved(CheckpointSaved {
                    job_id,
                    step,
                    dir: format!("jobs/{job_id}/checkpoints/step-{step}"),
                    files: Vec::new(),
                }));
            }
        }
        std::fs::create_dir_all(DataLayout::new(dir).job_dir(job_id)).unwrap();
        log.append_blocking(events).unwrap();
        (log, job_id)
    }

    fn progress(events: &mut Vec<Event>, job_id: JobId, step: u64, steps: u64) {
        events.push(Event::JobProgress(JobProgress {
            job_id,
            phase: "training".into(),
            step,
            total_steps: steps,
            loss: Some(3.0 / step as f64),
            learning_rate: Some(1e-4),
            grad_norm: (!step.is_multiple_of(3)).then_some(0.5),
            tokens_per_sec: None,
            memory_bytes: None,
            extra: Json(serde_json::Value::Null),
        }));
    }

    /// What a page shows of a reading.
    async fn shown(cache: &JobLogCache, log: &EventLog, job: JobId) -> (String, Vec<String>, u64) {
        cache
            .read(log, job, |l, after| {
                let story = l
                    .story
                    .iter()
                    .map(|r| format!("{} {} {} {}", r.seq, r.ts, r.kind, r.text))
                    .collect();
                (curves_json(l).to_string(), story, after)
            })
            .await
            .unwrap()
    }

    async fn saved_file(path: &Path) {
        for _ in 0..500 {
            if path.exists() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("{} was not written", path.display());
    }

    #[tokio::test]
    async fn a_saved_reading_shows_what_reading_the_log_shows() {
        let dir = tempfile::tempdir().unwrap();
        let (log, job) = finished_training(dir.path(), 300);
        let layout = DataLayout::new(dir.path());
        let from_log = shown(&JobLogCache::default(), &log, job).await;
        shown(&JobLogCache::saving_in(layout.clone()), &log, job).await;
        let path = layout.studio_reading(job);
        saved_file(&path).await;

        let loaded = load(&path, job, &log).expect("the saved reading is used");
        assert_eq!(loaded.through_seq, log.last_seq());
        assert_eq!(loaded.steps.len(), 300);
        assert_eq!(loaded.checkpoint_at_ms.len(), 6);
        assert_eq!(
            shown(&JobLogCache::saving_in(layout), &log, job).await,
            from_log
        );
    }

    #[tokio::test]
    async fn a_damaged_or_foreign_saved_reading_is_ignored_and_the_log_read() {
        let dir = tempfile::tempdir().unwrap();
        let (log, job) = finished_training(dir.path(), 120);
        let layout = DataLayout::new(dir.path());
        let from_log = shown(&JobLogCache::default(), &log, job).await;
        shown(&JobLogCache::saving_in(layout.clone()), &log, job).await;
        let path = layout.studio_reading(job);
        saved_file(&path).await;
        let good = std::fs::read(&path).unwrap();

        // A flipped byte in the payload: the checksum fails.
        let mut bad = good.clone();
        let at = bad.len() / 2;
        bad[at] ^= 0x40;
        std::fs::write(&path, &bad).unwrap();
        assert!(load(&path, job, &log).is_none());
        // Cut short.
        std::fs::write(&path, &good[..good.len() - 7]).unwrap();
        assert!(load(&path, job, &log).is_none());
        // Another job's reading.
        assert!(decode(&good, JobId::new()).is_none());
        // A log that is not the one it was read from (same job id, other commit times).
        let other = tempfile::tempdir().unwrap();
        let other_log = EventLog::open(&DataLayout::new(other.path()).event_log()).unwrap();
        let mut saved = decode(&good, job).unwrap();
        saved.through_ts_ms -= 1;
        assert!(!confirmed(&saved, job, &log));
        assert!(!confirmed(&decode(&good, job).unwrap(), job, &other_log));

        std::fs::write(&path, &bad).unwrap();
        assert_eq!(
            shown(&JobLogCache::saving_in(layout), &log, job).await,
            from_log
        );
    }

    #[tokio::test]
    async fn a_running_job_is_saved_as_it_grows_and_the_rest_read_from_the_log() {
        let dir = tempfile::tempdir().unwrap();
        let steps = SAVE_EVERY + 50;
        let (log, job) = running_training(dir.path(), steps);
        let layout = DataLayout::new(dir.path());
        shown(&JobLogCache::saving_in(layout.clone()), &log, job).await;
        let path = layout.studio_reading(job);
        saved_file(&path).await;
        let mut more = Vec::new();
        for step in steps + 1..=steps + 30 {
            progress(&mut more, job, step, steps + 30);
        }
        log.append_blocking(more).unwrap();
        let saved_through = load(&path, job, &log).unwrap().through_seq;
        assert!(saved_through < log.last_seq());

        let from_log = shown(&JobLogCache::default(), &log, job).await;
        assert_eq!(
            shown(&JobLogCache::saving_in(layout), &log, job).await,
            from_log
        );
    }
}
