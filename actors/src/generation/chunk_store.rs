//! Durable per-chunk results of a `dataset_generate` job, so a restarted attempt skips the
//! chunks already done: the examples go to `jobs/<id>/chunks/<index>.json` (temp, fsync,
//! rename) before the `GenerationChunkDone` event; a chunk counts as done only when both exist.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;

use tunewright_events::projection::JobView;
use tunewright_schemas::{ctx, DataLayout, ErrorCode, Failure};

use super::examples::Example;

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

/// The chunks the job's record says are done, with their stored examples (a chunk whose file
/// is missing or unreadable is left out, so it is redone).
pub fn done_chunks(layout: &DataLayout, job: &JobView) -> BTreeMap<u32, (Vec<Example>, String)> {
    let mut done = BTreeMap::new();
    for (index, c) in &job.chunks_done {
        let stored = std::fs::read(layout.chunk_file(job.id, *index))
            .ok()
            .and_then(|b| serde_json::from_slice::<Vec<Example>>(&b).ok());
        if let Some(x) = stored {
            done.insert(*index, (x, c.repair_step.clone()));
        }
    }
    done
}
