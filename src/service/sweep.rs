//! Start-up clean-up of upload leftovers: `.part` files of uploads a crash interrupted, and
//! stored documents no event references (stored, then the process died before the event).
//! Only files under `projects/<id>/files/` are candidates; datasets, checkpoints and exports
//! are left alone. And the temp dirs of checkpoints and exports a crash (or a failed write)
//! left under `jobs/` (`.step-N.tmp-PID/`, `.peft.tmp-PID/`): removed once their worker is gone
//! (docs/storage.md).

use std::collections::HashSet;
use std::path::Path;

use tunewright_events::State;

use crate::http::upload::store::sweep_parts;

/// `(part files removed, unreferenced documents removed)`.
pub fn sweep_uploads(data_dir: &Path, state: &State) -> (usize, usize) {
    let projects = data_dir.join("projects");
    let parts = sweep_parts(&projects);
    let referenced: HashSet<String> = state
        .projects
        .values()
        .flat_map(|p| p.files.values().map(|f| f.stored_path.clone()))
        .collect();
    let mut orphans = 0;
    let Ok(dirs) = std::fs::read_dir(&projects) else {
        return (parts, 0);
    };
    for dir in dirs.flatten() {
        let pname = dir.file_name().to_string_lossy().into_owned();
        let Ok(files) = std::fs::read_dir(dir.path().join("files")) else {
            continue;
        };
        for f in files.flatten() {
            if !f.file_type().is_ok_and(|t| t.is_file()) {
                continue;
            }
            let rel = format!("projects/{pname}/files/{}", f.file_name().to_string_lossy());
            if !referenced.contains(&rel) && std::fs::remove_file(f.path()).is_ok() {
                tracing::info!(path = %rel, "removed an upload no event references");
                orphans += 1;
            }
        }
    }
    (parts, orphans)
}

/// Remove `.NAME.tmp-PID` directories under `data_dir/jobs` (two levels down: the job dir and
/// its checkpoints dir) whose process `PID` no longer runs; how many were removed.
pub fn sweep_temp_dirs(data_dir: &Path) -> usize {
    let mut removed = 0;
    let Ok(jobs) = std::fs::read_dir(data_dir.join("jobs")) else {
        return 0;
    };
    for job in jobs.flatten() {
        removed += sweep_temp_dirs_in(&job.path());
        removed += sweep_temp_dirs_in(&job.path().join("checkpoints"));
    }
    removed
}

fn sweep_temp_dirs_in(dir: &Path) -> usize {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    let mut removed = 0;
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        let Some(pid) = temp_dir_pid(&name) else {
            continue;
        };
        let alive = Path::new(&format!("/proc/{pid}")).exists();
        if !alive
            && e.file_type().is_ok_and(|t| t.is_dir())
            && std::fs::remove_dir_all(e.path()).is_ok()
        {
            tracing::info!(path = %e.path().display(), "removed a temp dir a failed or interrupted write left");
            removed += 1;
        }
    }
    removed
}

/// The PID of a temp dir name `.NAME.tmp-PID`.
fn temp_dir_pid(name: &str) -> Option<u32> {
    let rest = name.strip_prefix('.')?;
    let (_, pid) = rest.rsplit_once(".tmp-")?;
    pid.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn temp_dirs_of_dead_workers_are_removed_live_ones_and_checkpoints_kept() {
        let dir = tempfile::tempdir().unwrap();
        let ck = dir.path().join("jobs/job_x/checkpoints");
        std::fs::create_dir_all(ck.join("step-4")).unwrap();
        // A PID above the kernel's maximum never runs.
        std::fs::create_dir_all(ck.join(".step-8.tmp-4194305")).unwrap();
        std::fs::write(ck.join(".step-8.tmp-4194305/lora.safetensors"), b"half").unwrap();
        std::fs::create_dir_all(dir.path().join("jobs/job_x/.peft.tmp-4194305")).unwrap();
        let mine = format!(".step-9.tmp-{}", std::process::id());
        std::fs::create_dir_all(ck.join(&mine)).unwrap();
        assert_eq!(sweep_temp_dirs(dir.path()), 2);
        assert!(ck.join("step-4").exists());
        assert!(ck.join(&mine).exists(), "a live worker's temp dir is kept");
        assert!(!ck.join(".step-8.tmp-4194305").exists());
        assert_eq!(temp_dir_pid(".step-8.tmp-12"), Some(12));
        assert_eq!(temp_dir_pid("step-8"), None);
    }
}
