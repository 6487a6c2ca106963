//! Start-up clean-up of upload leftovers: `.part` files of uploads a crash interrupted, and
//! stored documents no event references (stored, then the process died before the event).
//! Only files under `projects/<id>/files/` are candidates; datasets, checkpoints and exports
//! are left alone.

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
