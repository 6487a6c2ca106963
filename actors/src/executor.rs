//! The job executor protocol: how the scheduler hands a job attempt to the code that does it.
//!
//! Each job kind has one `JobExecutor` (dataset preview/generation, training, export). The
//! scheduler wraps it in an `ExecutorActor`; an attempt is an `Execute` message carrying a
//! `JobContext`, and its outcome goes to the `OutcomeSink` the actor was given (the scheduler's,
//! which finds whichever scheduler instance is alive, so it reaches a restarted one too).

use std::collections::HashMap;
use std::sync::Arc;

use ractor::{Actor, ActorProcessingErr, ActorRef};
use tokio::sync::watch;
use tunewright_events::projection::{JobView, ProjectView};
use tunewright_events::Event;
use tunewright_schemas::{ctx, DataLayout, ErrorCode, Failure, JobId, JobKind};

use crate::ledger::Ledger;
use crate::project::Projects;

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

    /// `work`, unless a stop is requested first: then `work` is dropped (an HTTP call in
    /// flight is abandoned) and the answer is `on_stop`'s failure.
    pub async fn unless_stopped<T>(
        &mut self,
        work: impl std::future::Future<Output = Result<T, Failure>>,
        on_stop: impl FnOnce(StopRequest) -> Failure,
    ) -> Result<T, Failure> {
        tokio::select! {
            r = work => r,
            why = self.wait() => Err(on_stop(why)),
        }
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
    /// Where the service's files live.
    pub layout: DataLayout,
    pub stop: StopSignal,
    pub events: EventSink,
    /// Project commands (e.g. a generation job importing its dataset).
    pub projects: Projects,
}

impl JobContext {
    /// Where this job may keep its files.
    pub fn job_dir(&self) -> std::path::PathBuf {
        self.layout.job_dir(self.job.id)
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

/// How an attempt ended: its result, or its failure.
pub type Outcome = Result<serde_json::Value, Failure>;

/// Where attempts' outcomes go.
#[async_trait::async_trait]
pub trait OutcomeSink: Send + Sync + 'static {
    /// Deliver the outcome of attempt `attempt` of `job`, until it is acknowledged.
    async fn deliver(&self, job: JobId, attempt: u32, outcome: Outcome);
}

pub struct ExecutorArgs {
    pub executor: Arc<dyn JobExecutor>,
    /// Where outcomes are reported.
    pub outcomes: Arc<dyn OutcomeSink>,
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
        let outcomes = st.outcomes.clone();
        tokio::spawn(async move {
            let job_id = ctx.job.id;
            let attempt = ctx.attempt;
            let kind = ctx.job.kind;
            // A panicking executor must not take the scheduler's bookkeeping with it.
            let outcome = match tokio::spawn(async move { exec.execute(*ctx).await }).await {
                Ok(r) => r,
                Err(join) => Err(panic_failure(kind, &join.to_string())),
            };
            outcomes.deliver(job_id, attempt, outcome).await;
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
