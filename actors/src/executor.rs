//! The job executor protocol: how the scheduler hands a job attempt to the code that does it.
//!
//! Each job kind has one `JobExecutor` (dataset preview/generation, training, export). The
//! scheduler wraps it in an `ExecutorActor`; an attempt is an `Execute` message carrying a
//! `JobContext`, and its outcome comes back to the scheduler (found by name, so it reaches a
//! restarted scheduler too) as `SchedulerMsg::AttemptFinished`.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;

use ractor::{Actor, ActorProcessingErr, ActorRef};
use tokio::sync::watch;
use tunewright_events::projection::{JobView, ProjectView};
use tunewright_events::Event;
use tunewright_schemas::{ctx, ErrorCode, Failure, JobId, JobKind};

use crate::ledger::Ledger;
use crate::project::Projects;
use crate::scheduler::SchedulerMsg;

/// Why a running attempt is asked to stop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopRequest {
    /// The user cancelled the job: stop now, nothing to keep.
    Cancel,
    /// The service is shutting down: checkpoint if you can, then stop; the job resumes later.
    Shutdown,
}

/// The stop signal an executor checks (every training step, every chunk, ...).
#[derive(Clone)]
pub struct StopSignal(watch::Receiver<Option<StopRequest>>);

impl StopSignal {
    pub fn channel() -> (watch::Sender<Option<StopRequest>>, StopSignal) {
        let (tx, rx) = watch::channel(None);
        (tx, StopSignal(rx))
    }

    pub fn requested(&self) -> Option<StopRequest> {
        *self.0.borrow()
    }

    /// Resolves when a stop is requested.
    pub async fn wait(&mut self) -> StopRequest {
        loop {
            if let Some(r) = *self.0.borrow_and_update() {
                return r;
            }
            if self.0.changed().await.is_err() {
                // The scheduler is gone: treat as shutdown.
                return StopRequest::Shutdown;
            }
        }
    }
}

/// Durable event recording for one job.
#[derive(Clone)]
pub struct EventSink {
    ledger: Ledger,
    job_id: JobId,
}

impl EventSink {
    pub fn new(ledger: Ledger, job_id: JobId) -> Self {
        EventSink { ledger, job_id }
    }

    pub fn job_id(&self) -> JobId {
        self.job_id
    }

    /// Append events (progress, notes, checkpoints, artifacts, ...) durably, in one transaction.
    pub async fn record(&self, events: Vec<Event>) -> Result<(), Failure> {
        self.ledger.commit(events).await.map(|_| ())
    }

    pub fn ledger(&self) -> &Ledger {
        &self.ledger
    }
}

/// Everything an attempt needs.
#[derive(Clone)]
pub struct JobContext {
    /// The job as it was when the attempt started (config, attempts, checkpoints, ...).
    pub job: JobView,
    pub project: ProjectView,
    pub attempt: u32,
    pub data_dir: PathBuf,
    pub stop: StopSignal,
    pub events: EventSink,
    /// Project commands (e.g. a generation job importing its dataset).
    pub projects: Projects,
}

impl JobContext {
    /// Where this job may keep its files: `DATA_DIR/jobs/<job id>/`.
    pub fn job_dir(&self) -> PathBuf {
        self.data_dir.join("jobs").join(self.job.id.to_string())
    }
}

/// What runs a job kind's attempts.
#[async_trait::async_trait]
pub trait JobExecutor: Send + Sync + 'static {
    /// Run one attempt: the job's result as JSON, or its failure (with a catalog code).
    async fn execute(&self, ctx: JobContext) -> Result<serde_json::Value, Failure>;

    /// Whether an attempt interrupted by a crash can be started again (it resumes or is
    /// idempotent). Interrupted jobs of kinds that cannot are failed at start-up.
    fn resumable(&self) -> bool {
        true
    }
}

/// The executors of the kinds this service runs.
#[derive(Clone, Default)]
pub struct Executors {
    by_kind: HashMap<JobKind, Arc<dyn JobExecutor>>,
}

impl Executors {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn with(mut self, kind: JobKind, executor: impl JobExecutor) -> Self {
        self.by_kind.insert(kind, Arc::new(executor));
        self
    }

    pub fn insert(&mut self, kind: JobKind, executor: Arc<dyn JobExecutor>) {
        self.by_kind.insert(kind, executor);
    }

    pub fn get(&self, kind: JobKind) -> Option<&Arc<dyn JobExecutor>> {
        self.by_kind.get(&kind)
    }

    pub fn kinds(&self) -> impl Iterator<Item = &JobKind> {
        self.by_kind.keys()
    }
}

/// Runs one kind's attempts, each on its own task, reporting outcomes to the scheduler.
pub struct ExecutorActor;

pub enum ExecutorMsg {
    Execute(Box<JobContext>),
}

pub struct ExecutorArgs {
    pub executor: Arc<dyn JobExecutor>,
    /// Name of the scheduler to report outcomes to.
    pub scheduler: String,
}

impl Actor for ExecutorActor {
    type Msg = ExecutorMsg;
    type State = ExecutorArgs;
    type Arguments = ExecutorArgs;

    async fn pre_start(
        &self,
        _me: ActorRef<Self::Msg>,
        args: Self::Arguments,
    ) -> Result<Self::State, ActorProcessingErr> {
        Ok(args)
    }

    async fn handle(
        &self,
        _me: ActorRef<Self::Msg>,
        msg: Self::Msg,
        st: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        let ExecutorMsg::Execute(ctx) = msg;
        let exec = st.executor.clone();
        let scheduler = st.scheduler.clone();
        tokio::spawn(async move {
            let job_id = ctx.job.id;
            let attempt = ctx.attempt;
            let kind = ctx.job.kind;
            // A panicking executor must not take the scheduler's bookkeeping with it.
            let outcome = match tokio::spawn(async move { exec.execute(*ctx).await }).await {
                Ok(r) => r,
                Err(join) => Err(panic_failure(kind, &join.to_string())),
            };
            report(&scheduler, job_id, attempt, outcome).await;
        });
        Ok(())
    }
}

fn panic_failure(kind: JobKind, what: &str) -> Failure {
    let code = match kind {
        JobKind::Train => ErrorCode::TrainingInterrupted,
        _ => ErrorCode::InternalError,
    };
    Failure::new(
        code,
        ctx! {"reason" => format!("the executor crashed: {what}")},
    )
    .caused_by(what.to_string())
}

/// Deliver an outcome to whichever scheduler instance is alive, waiting out a restart.
async fn report(
    scheduler: &str,
    job_id: JobId,
    attempt: u32,
    outcome: Result<serde_json::Value, Failure>,
) {
    for _ in 0..600 {
        if let Some(cell) = ractor::registry::where_is(scheduler) {
            if cell.get_status() == ractor::ActorStatus::Running {
                let sched: ActorRef<SchedulerMsg> = cell.into();
                let (tx, rx) = ractor::concurrency::oneshot();
                let msg = SchedulerMsg::AttemptFinished {
                    job_id,
                    attempt,
                    outcome: outcome.clone(),
                    ack: Some(tx.into()),
                };
                // Delivered only when acknowledged: a scheduler that crashes with the message
                // in its mailbox loses it, and its restarted successor must get it again (a
                // repeated report of a recorded outcome is ignored as stale).
                if sched.send_message(msg).is_ok()
                    && matches!(
                        tokio::time::timeout(std::time::Duration::from_secs(10), rx).await,
                        Ok(Ok(()))
                    )
                {
                    return;
                }
            }
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    tracing::error!(job = %job_id, "no scheduler took an attempt's outcome within 60 s; the job will be recovered at restart");
}
