//! The job executors the scheduler runs, by kind: dataset preview/generation, training (the
//! trainer actor's worker process), export and evaluation. Each is registered here as its crate provides
//! it; a kind without an executor stays queued until its queue timeout (`JOB_TIMEOUT`).

use std::time::Duration;

use tunewright_actors::evaluate::EvaluateExecutor;
use tunewright_actors::export::ExportExecutor;
use tunewright_actors::generation::{DatasetGenerateExecutor, DatasetPreviewExecutor};
use tunewright_actors::trainer::watchdog::StallBounds;
use tunewright_actors::trainer::{TrainerExecutor, WorkerLauncher};
use tunewright_actors::Executors;
use tunewright_schemas::JobKind;

use super::args::ServeArgs;

pub fn build(args: &ServeArgs) -> Executors {
    let mut executors = Executors::new()
        .with(JobKind::DatasetPreview, DatasetPreviewExecutor::default())
        .with(JobKind::DatasetGenerate, DatasetGenerateExecutor::default());
    // Training, export and evaluation run in worker processes (`tunewright-worker`).
    {
        let mut launcher = WorkerLauncher::new(args.worker_binary());
        launcher.cancel_grace = Duration::from_secs(args.cancel_grace_secs);
        launcher.placement = args.placement();
        launcher.stall = StallBounds {
            floor: Duration::from_secs(args.worker_stall_floor_secs.max(1)),
            ceiling: Duration::from_secs(args.worker_stall_ceiling_secs.max(1)),
            ..StallBounds::default()
        };
        executors = executors
            .with(JobKind::Train, TrainerExecutor::new(launcher.clone()))
            .with(JobKind::Export, ExportExecutor::new(launcher.clone()))
            .with(JobKind::Evaluate, EvaluateExecutor::new(launcher));
    }
    executors
}
