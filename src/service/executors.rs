//! The job executors the scheduler runs, by kind: dataset preview/generation, training (the
//! trainer actor's worker process) and export. Each is registered here as its crate provides
//! it; a kind without an executor stays queued until its queue timeout (`JOB_TIMEOUT`).

use std::path::Path;

use tunewright_actors::Executors;

pub fn build(_data_dir: &Path) -> Executors {
    Executors::new()
}
