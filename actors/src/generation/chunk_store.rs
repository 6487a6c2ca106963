//! Durable per-chunk results of a `dataset_generate` job, so a restarted attempt skips the
//! chunks already done: the examples go to `jobs/<id>/chunks/<index>.json` (temp, fsync,
//! rename) before the `GenerationChunkDone` event; a chunk counts as done only when both exist.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use tunewright_events::{Event, StreamId};
use tunewright_schemas::{ctx, ErrorCode, Failure, JobId};

use super::examples::Example;
use crate::executor::EventSink;

fn io_failure(what: &str, e: std::io::Error) -> Failure {
    Failure::new(
        ErrorCode::DatasetGenerationFailed,
        ctx! {"reason" => format!("{what}: {e}")},
    )
}

/// Write `bytes` to `path` atomically and durably.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), Failure> {
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(|e| io_failure("create dir", e))?;
    let tmp = path.with_extension("tmp");
    let mut f = std::fs::File::create(&tmp).map_err(|e| io_failure("create file", e))?;
    f.write_all(bytes)
        .map_err(|e| io_failure("write file", e))?;
    f.sync_all().map_err(|e| io_failure("fsync file", e))?;
    drop(f);
    std::fs::rename(&tmp, path).map_err(|e| io_failure("rename file", e))?;
    if let Ok(d) = std::fs::File::open(dir) {
        let _ = d.sync_all();
    }
    Ok(())
}

pub fn chunk_path(job_dir: &Path, index: u32) -> PathBuf {
    job_dir.join("chunks").join(format!("{index:06}.json"))
}

/// The chunks this job's events record as done, with their stored examples (a chunk whose
/// file is missing or unreadable is left out, so it is redone).
pub fn done_chunks(
    events: &EventSink,
    job: JobId,
    job_dir: &Path,
) -> Result<BTreeMap<u32, (Vec<Example>, String)>, Failure> {
    let log = events.ledger().log();
    let mut done = BTreeMap::new();
    let mut after = 0;
    loop {
        let batch = log
            .read_stream(StreamId::Job(job), after, 1024)
            .map_err(crate::ledger::log_failure)?;
        let Some(last) = batch.last() else { break };
        after = last.seq;
        for e in &batch {
            if let Event::GenerationChunkDone(c) = &e.event {
                let stored = std::fs::read(chunk_path(job_dir, c.chunk_index))
                    .ok()
                    .and_then(|b| serde_json::from_slice::<Vec<Example>>(&b).ok());
                if let Some(x) = stored {
                    done.insert(c.chunk_index, (x, c.repair_step.clone()));
                }
            }
        }
    }
    Ok(done)
}
