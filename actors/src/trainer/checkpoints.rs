//! Choosing the checkpoint a training attempt resumes from: the newest one whose files still
//! hash to what its `CheckpointSaved` event recorded. A checkpoint that fails the check is
//! rejected (an event) and the one before it is tried; when every checkpoint is rejected the
//! run cannot continue (`CHECKPOINT_NOT_FOUND`). A job that never wrote one starts fresh.

use std::io::Read;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};
use tunewright_events::event::{CheckpointRejected, Event};
use tunewright_events::projection::{CheckpointView, JobView};
use tunewright_schemas::{ctx, DataLayout, ErrorCode, Failure, JobId};

/// Where an attempt starts.
#[derive(Debug, Clone, PartialEq)]
pub enum ResumePoint {
    Fresh,
    Checkpoint { step: u64, dir: PathBuf },
}

/// Pick the resume point; `rejections` receives a `CheckpointRejected` for each bad one.
pub fn choose(
    job_id: JobId,
    layout: &DataLayout,
    checkpoints: &[CheckpointView],
    rejections: &mut Vec<Event>,
) -> Result<ResumePoint, Failure> {
    let mut candidates = checkpoints
        .iter()
        .filter(|c| c.rejected.is_none())
        .collect::<Vec<_>>();
    if checkpoints.is_empty() {
        return Ok(ResumePoint::Fresh);
    }
    while let Some(c) = candidates.pop() {
        let dir = layout.resolve(&c.dir);
        match verify(&dir, c) {
            Ok(()) => return Ok(ResumePoint::Checkpoint { step: c.step, dir }),
            Err(reason) => rejections.push(Event::CheckpointRejected(CheckpointRejected {
                job_id,
                step: c.step,
                reason,
            })),
        }
    }
    Err(Failure::new(
        ErrorCode::CheckpointNotFound,
        ctx! {"job_id" => job_id.to_string(), "reason" => format!(
        "all {} checkpoints are missing or fail their hash check", checkpoints.len())},
    ))
}

/// The resume point of a training that continues an earlier run: that run's checkpoint `c`,
/// which must still verify (it belongs to the other job, so it is not rejected here).
pub fn inherited(
    job: &JobView,
    layout: &DataLayout,
    c: &CheckpointView,
) -> Result<ResumePoint, Failure> {
    let dir = layout.resolve(&c.dir);
    match verify(&dir, c) {
        Ok(()) => Ok(ResumePoint::Checkpoint { step: c.step, dir }),
        Err(reason) => Err(Failure::new(
            ErrorCode::CheckpointNotFound,
            ctx! {"job_id" => job.id.to_string(), "reason" => format!(
                "the checkpoint at step {} of job {} it continues fails its check: {reason}",
                c.step,
                job.resumed_from_job.map(|j| j.to_string()).unwrap_or_default()
            )},
        )
        .in_phase(tunewright_schemas::ErrorPhase::Checkpoint)),
    }
}

/// Check every recorded file's size and sha256.
pub fn verify(dir: &Path, c: &CheckpointView) -> Result<(), String> {
    if c.files.is_empty() {
        return Err("the checkpoint records no files".into());
    }
    for f in &c.files {
        let path = dir.join(&f.name);
        let got = sha256_file(&path).map_err(|e| format!("{}: {e}", path.display()))?;
        if got != f.sha256 {
            return Err(format!(
                "{}: sha256 {got} does not match the recorded {}",
                f.name, f.sha256
            ));
        }
    }
    Ok(())
}

pub fn sha256_file(path: &Path) -> std::io::Result<String> {
    let mut file = std::fs::File::open(path)?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = file.read(&mut buf)?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(h.finalize().iter().map(|b| format!("{b:02x}")).collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use tunewright_events::event::FileDigest;

    fn cp(data: &Path, step: u64, content: &[u8]) -> CheckpointView {
        let rel = format!("cp/step-{step}");
        let dir = data.join(&rel);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("w.bin"), content).unwrap();
        CheckpointView {
            step,
            dir: rel,
            files: vec![FileDigest {
                name: "w.bin".into(),
                sha256: sha256_file(&dir.join("w.bin")).unwrap(),
                size_bytes: content.len() as u64,
            }],
            rejected: None,
        }
    }

    #[test]
    fn no_checkpoint_starts_fresh() {
        let d = tempfile::tempdir().unwrap();
        let mut rej = vec![];
        assert_eq!(
            choose(JobId::new(), &DataLayout::new(d.path()), &[], &mut rej).unwrap(),
            ResumePoint::Fresh
        );
    }

    #[test]
    fn corrupted_latest_falls_back_to_previous() {
        let d = tempfile::tempdir().unwrap();
        let a = cp(d.path(), 2, b"two");
        let b = cp(d.path(), 4, b"four");
        std::fs::write(d.path().join(&b.dir).join("w.bin"), b"FOUR").unwrap();
        let mut rej = vec![];
        let got = choose(JobId::new(), &DataLayout::new(d.path()), &[a, b], &mut rej).unwrap();
        assert!(matches!(got, ResumePoint::Checkpoint { step: 2, .. }));
        assert_eq!(rej.len(), 1);
        assert!(matches!(&rej[0], Event::CheckpointRejected(r) if r.step == 4));
    }

    #[test]
    fn all_bad_is_checkpoint_not_found() {
        let d = tempfile::tempdir().unwrap();
        let a = cp(d.path(), 2, b"two");
        std::fs::remove_dir_all(d.path().join(&a.dir)).unwrap();
        let mut rej = vec![];
        let err = choose(JobId::new(), &DataLayout::new(d.path()), &[a], &mut rej).unwrap_err();
        assert_eq!(err.error_code, ErrorCode::CheckpointNotFound);
        assert_eq!(rej.len(), 1);
    }
}
