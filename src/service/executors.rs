//! The job executors the scheduler runs, by kind: dataset preview/generation, training (the
//! trainer actor's worker process) and export. Each is registered here as its crate provides
//! it; a kind without an executor stays queued until its queue timeout (`JOB_TIMEOUT`).

use std::path::Path;

use tunewright_actors::export::ExportExecutor;
use tunewright_actors::generation::{DatasetGenerateExecutor, DatasetPreviewExecutor};
use tunewright_actors::trainer::{TrainerExecutor, WorkerLauncher};
use tunewright_actors::Executors;
use tunewright_schemas::JobKind;

pub fn build(_data_dir: &Path) -> Executors {
    let mut executors = Executors::new()
        .with(JobKind::DatasetPreview, DatasetPreviewExecutor::default())
        .with(JobKind::DatasetGenerate, DatasetGenerateExecutor::default());
    // Training and export run in worker processes of this same binary.
    if let Ok(binary) = std::env::current_exe() {
        let launcher = WorkerLauncher::new(binary);
        executors = executors
            .with(JobKind::Train, TrainerExecutor::new(launcher.clone()))
            .with(JobKind::Export, ExportExecutor::new(launcher));
    }
    executors
}
