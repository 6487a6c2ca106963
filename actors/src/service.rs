//! The service facade: what the HTTP layer and the CLI call. It owns the ledger, the
//! supervisor (which runs the scheduler and the project actors) and the shutdown sequence.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use ractor::{Actor, ActorRef};
use serde::{Deserialize, Serialize};
use tokio::sync::watch;
use tunewright_events::event::{ServiceStarted, ServiceStopped};
use tunewright_events::projection::{DatasetView, FileView, JobView, ProjectView, SplitView};
use tunewright_events::{Event, EventLog, State};
use tunewright_schemas::config::{EvaluateConfig, ExportConfig, JobConfig};
use tunewright_schemas::{
    ctx, DataLayout, ErrorCode, Failure, FileId, JobId, JobKind, JobStatus, ProjectId,
};

use crate::admission::hub_cache::HubCache;
use crate::admission::Admission;
use crate::executor::{ExecutorActor, ExecutorArgs, Executors};
use crate::hardware::{HardwareProbe, ProbeCommand};
use crate::ledger::{log_failure, Ledger};
use crate::project::{DatasetRecord, FileRecord, NewJob, ProjectLimits, Projects};
use crate::resume::ResumeRequest;
use crate::scheduler::{
    Scheduler, SchedulerArgs, SchedulerConfig, SchedulerMsg, SchedulerOutcomes,
};
use crate::supervisor::{
    ChildRegistry, ChildSpec, RestartPolicy, Supervisor, SupervisorArgs, SupervisorMsg,
};

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ServiceConfig {
    pub data_dir: PathBuf,
    pub scheduler: SchedulerConfig,
    pub restart: RestartPolicy,
    pub limits: ProjectLimits,
    /// How to ask this machine about its devices (`None`: unknown, nothing is refused for it).
    pub probe: Option<ProbeCommand>,
}

impl ServiceConfig {
    pub fn layout(&self) -> DataLayout {
        DataLayout::new(&self.data_dir)
    }

    pub fn new(data_dir: impl Into<PathBuf>) -> Self {
        ServiceConfig {
            data_dir: data_dir.into(),
            scheduler: SchedulerConfig::default(),
            restart: RestartPolicy::default(),
            limits: ProjectLimits::default(),
            probe: None,
        }
    }
}

/// The running actor system. Cheap to clone.
#[derive(Clone)]
pub struct Service {
    inner: Arc<Inner>,
}

struct Inner {
    config: ServiceConfig,
    ledger: Ledger,
    projects: Projects,
    supervisor: ActorRef<SupervisorMsg>,
    /// The scheduler's actor name, unique to this service instance.
    scheduler_name: String,
    ready: AtomicBool,
    accepting: AtomicBool,
    gave_up: watch::Receiver<Option<String>>,
    hardware: HardwareProbe,
    admission: Admission,
}

/// A short random name for this instance's actors (several services may share a process).
fn uuid_like() -> String {
    use rand::Rng;
    format!("{:016x}", rand::rng().random::<u64>())
}

fn internal(e: impl std::fmt::Display) -> Failure {
    Failure::new(ErrorCode::InternalError, ctx! {}).caused_by(e.to_string())
}

impl Service {
    /// Open `data_dir/events.redb`, fold it, start the supervisor, the scheduler (which
    /// recovers interrupted jobs) and record the start.
    pub async fn start(config: ServiceConfig, executors: Executors) -> Result<Service, Failure> {
        std::fs::create_dir_all(&config.data_dir).map_err(|e| {
            internal(format!(
                "cannot create data dir {}: {e}",
                config.data_dir.display()
            ))
        })?;
        let log = EventLog::open(&config.layout().event_log()).map_err(log_failure)?;
        let ledger = Ledger::recover(log).map_err(log_failure)?;
        let recovered = ledger.log().last_seq();
        let projects = Projects::new(ledger.clone(), config.limits.clone());
        let registry = ChildRegistry::default();
        let running = Arc::new(std::sync::Mutex::new(Default::default()));
        let hardware = HardwareProbe::new(config.probe.clone());
        let first_start = Arc::new(AtomicBool::new(true));
        let instance = uuid_like();
        let scheduler_name = format!("scheduler-{instance}");
        // Executor actors live beside the scheduler (not under it), so an attempt handed to
        // one is not lost when the scheduler crashes.
        let mut executor_names = std::collections::HashMap::new();
        let mut initial = Vec::new();
        for kind in JobKind::ALL {
            let Some(exec) = executors.get(*kind).cloned() else {
                continue;
            };
            let name = format!("executor-{kind}-{instance}");
            let scheduler = scheduler_name.clone();
            let actor_name = name.clone();
            registry.register(ChildSpec::new(name.clone(), move |sup| {
                let args = ExecutorArgs {
                    executor: exec.clone(),
                    outcomes: Arc::new(SchedulerOutcomes {
                        scheduler: scheduler.clone(),
                    }),
                };
                let name = actor_name.clone();
                Box::pin(async move {
                    Actor::spawn_linked(Some(name), ExecutorActor, args, sup)
                        .await
                        .map(|(a, _)| a.get_cell())
                        .map_err(|e| e.to_string())
                })
            }));
            executor_names.insert(*kind, name.clone());
            initial.push(name);
        }
        initial.push(scheduler_name.clone());
        {
            let name = scheduler_name.clone();
            let (ledger, projects, config, running, hardware) = (
                ledger.clone(),
                projects.clone(),
                config.clone(),
                running.clone(),
                hardware.clone(),
            );
            registry.register(ChildSpec::new(scheduler_name.clone(), move |sup| {
                let name = name.clone();
                let args = SchedulerArgs {
                    name: name.clone(),
                    ledger: ledger.clone(),
                    projects: projects.clone(),
                    executors: executors.clone(),
                    executor_names: executor_names.clone(),
                    config: config.scheduler.clone(),
                    layout: config.layout(),
                    running: running.clone(),
                    hardware: hardware.clone(),
                    first_start: first_start.clone(),
                };
                Box::pin(async move {
                    Actor::spawn_linked(Some(name), Scheduler, args, sup)
                        .await
                        .map(|(a, _)| a.get_cell())
                        .map_err(|e| e.to_string())
                })
            }));
        }
        let (gave_up_tx, gave_up) = watch::channel(None);
        let (supervisor, _) = Actor::spawn(
            Some(format!("supervisor-{instance}")),
            Supervisor,
            SupervisorArgs {
                ledger: ledger.clone(),
                registry: registry.clone(),
                initial,
                policy: config.restart.clone(),
                gave_up: gave_up_tx,
            },
        )
        .await
        .map_err(internal)?;
        projects.attach(supervisor.get_cell(), registry);
        // On a full disk the service starts read-only (reads work, `/ready` says why appends
        // fail) rather than refusing: the start record is the only thing lost (docs/storage.md).
        match ledger
            .commit(vec![Event::ServiceStarted(ServiceStarted {
                version: env!("CARGO_PKG_VERSION").into(),
                pid: std::process::id(),
                recovered_events: recovered,
            })])
            .await
        {
            Ok(_) => {}
            Err(f) if f.error_code == ErrorCode::StorageFull => {
                tracing::error!(failure = %f, "the disk is full: starting read-only until space is back");
            }
            Err(f) => return Err(f),
        }
        let inner = Inner {
            config,
            ledger,
            projects,
            supervisor,
            scheduler_name,
            ready: AtomicBool::new(true),
            accepting: AtomicBool::new(true),
            gave_up,
            admission: Admission::new(hardware.clone(), HubCache::of_process()),
            hardware,
        };
        Ok(Service {
            inner: Arc::new(inner),
        })
    }

    pub fn config(&self) -> &ServiceConfig {
        &self.inner.config
    }

    pub fn data_dir(&self) -> &std::path::Path {
        &self.inner.config.data_dir
    }

    pub fn layout(&self) -> DataLayout {
        self.inner.config.layout()
    }

    /// The hardware probe (cached).
    pub fn hardware(&self) -> &HardwareProbe {
        &self.inner.hardware
    }

    pub fn ledger(&self) -> &Ledger {
        &self.inner.ledger
    }

    pub fn log(&self) -> &EventLog {
        self.inner.ledger.log()
    }

    pub fn projects(&self) -> &Projects {
        &self.inner.projects
    }

    /// Read the live state.
    pub fn read<R>(&self, f: impl FnOnce(&State) -> R) -> R {
        self.inner.ledger.read(f)
    }

    /// Recovered, actors up, and not shutting down.
    pub fn is_ready(&self) -> bool {
        self.inner.ready.load(Ordering::Acquire)
    }

    /// Resolves with the reason when the supervisor gives up (the process should exit non-zero).
    pub async fn escalated(&self) -> String {
        let mut rx = self.inner.gave_up.clone();
        loop {
            if let Some(r) = rx.borrow_and_update().clone() {
                return r;
            }
            if rx.changed().await.is_err() {
                return "the supervisor stopped".into();
            }
        }
    }

    fn check_accepting(&self) -> Result<(), Failure> {
        if self.inner.accepting.load(Ordering::Acquire) {
            Ok(())
        } else {
            Err(Failure::new(
                ErrorCode::ServiceUnavailable,
                ctx! {"reason" => "shutting down"},
            ))
        }
    }

    /// The scheduler's current instance (it may be restarting).
    pub fn scheduler(&self) -> Result<ActorRef<SchedulerMsg>, Failure> {
        ractor::registry::where_is(self.inner.scheduler_name.clone())
            .map(Into::into)
            .ok_or_else(|| {
                Failure::new(
                    ErrorCode::ServiceUnavailable,
                    ctx! {"reason" => "the scheduler is restarting"},
                )
            })
    }

    pub async fn create_project(&self, name: &str) -> Result<ProjectView, Failure> {
        self.check_accepting()?;
        self.inner.projects.create(name).await
    }

    /// Delete a project (refused while it has active jobs) and then its files.
    pub async fn delete_project(&self, id: ProjectId) -> Result<(), Failure> {
        self.check_accepting()?;
        self.inner.projects.delete(id).await?;
        let dir = self.layout().project_dir(id);
        if dir.exists() {
            if let Err(e) = std::fs::remove_dir_all(&dir) {
                tracing::warn!(dir = %dir.display(), error = %e, "project deleted but its files could not be removed");
            }
        }
        Ok(())
    }

    pub async fn record_file(&self, id: ProjectId, f: FileRecord) -> Result<FileView, Failure> {
        self.check_accepting()?;
        self.inner.projects.record_file(id, f).await
    }

    pub async fn delete_file(&self, id: ProjectId, file: FileId) -> Result<FileView, Failure> {
        self.check_accepting()?;
        let f = self.inner.projects.delete_file(id, file).await?;
        let _ = std::fs::remove_file(self.layout().resolve(&f.stored_path));
        Ok(f)
    }

    pub async fn import_dataset(
        &self,
        id: ProjectId,
        d: DatasetRecord,
    ) -> Result<DatasetView, Failure> {
        self.check_accepting()?;
        self.inner.projects.import_dataset(id, d).await
    }

    pub async fn create_split(
        &self,
        id: ProjectId,
        name: String,
        ratios: Vec<(String, f64)>,
        seed: u64,
    ) -> Result<SplitView, Failure> {
        self.check_accepting()?;
        self.inner
            .projects
            .create_split(id, name, ratios, seed)
            .await
    }

    /// Judge a job (admission, then its project's decision) and, when it passes, create it
    /// and wake the scheduler. A refused job leaves nothing in the log.
    pub async fn submit_job(
        &self,
        id: ProjectId,
        kind: JobKind,
        config: serde_json::Value,
    ) -> Result<JobView, Failure> {
        self.check_accepting()?;
        if !self.read(|s| s.projects.contains_key(&id)) {
            return Err(crate::project::not_found(id));
        }
        let admitted = self.inner.admission.admit(kind, &config).await?;
        if let JobConfig::Export(export) = &admitted.config {
            self.check_export_family(id, export)?;
        }
        if let JobConfig::Evaluate(evaluate) = &admitted.config {
            self.check_evaluated_weights(id, evaluate).await?;
        }
        let sched = &self.inner.config.scheduler;
        let new = NewJob {
            id: JobId::new(),
            config: admitted.config,
            recorded: admitted.recorded,
            max_retries: sched.policies.get(kind).max_retries,
            queue_timeout_ms: sched.queue_timeout.as_millis() as u64,
            resumes: None,
        };
        let job = self.inner.projects.create_job(id, new).await?;
        if let Ok(s) = self.scheduler() {
            let _ = s.send_message(SchedulerMsg::Wake);
        }
        Ok(job)
    }

    /// A GGUF export of a training whose base model's family llama.cpp cannot carry is
    /// refused at submission (docs/exports.md). Which training: the one named, or the
    /// project's newest successful one (a missing one is the project's `EXPORT_NO_RUN`).
    fn check_export_family(&self, id: ProjectId, export: &ExportConfig) -> Result<(), Failure> {
        if export.format.quantization().is_none() {
            return Ok(());
        }
        let run_config = self.read(|s| {
            s.jobs_of(id)
                .filter(|j| j.kind == JobKind::Train && j.status == JobStatus::Success)
                .filter(|j| export.train_job.is_none_or(|w| j.id == w))
                .max_by_key(|j| (j.updated_at_ms, j.id))
                .map(|j| j.effective_config.0.clone())
        });
        let Some(run_config) = run_config else {
            return Ok(());
        };
        match self.inner.admission.model_dir(&run_config) {
            Ok(dir) => crate::admission::export::check_gguf_family(export.format, &dir),
            Err(_) => Ok(()),
        }
    }

    /// The weights an evaluation would load still hash to what the training recorded
    /// (docs/jobs.md, "Evaluate"); what the state decides is judged first, as the project
    /// will judge it.
    async fn check_evaluated_weights(
        &self,
        id: ProjectId,
        evaluate: &EvaluateConfig,
    ) -> Result<(), Failure> {
        let plan = self.read(|s| match s.projects.get(&id) {
            Some(p) => crate::admission::evaluate::plan(s, p, evaluate).map(Some),
            None => Ok(None),
        })?;
        let Some(plan) = plan else { return Ok(()) };
        let layout = self.layout();
        tokio::task::spawn_blocking(move || {
            crate::admission::evaluate::verify(&layout, plan.run.id, &plan.weights)
        })
        .await
        .map_err(|e| {
            Failure::new(ErrorCode::InternalError, ctx! {})
                .caused_by(format!("checking the evaluated weights: {e}"))
        })?
    }

    /// The admission rules (for executors that resolve what admission recorded).
    pub fn admission(&self) -> &Admission {
        &self.inner.admission
    }

    /// A new training continuing `job` (failed or cancelled) from one of its checkpoints with
    /// `request`'s config changes, admitted like any submission, linked to it.
    pub async fn resume_job(&self, job: JobId, request: ResumeRequest) -> Result<JobView, Failure> {
        self.check_accepting()?;
        let Some(source) = self.read(|s| s.jobs.get(&job).cloned()) else {
            return Err(Failure::new(
                ErrorCode::JobNotFound,
                ctx! {"job_id" => job.to_string()},
            ));
        };
        let new_id = JobId::new();
        let layout = self.layout();
        let project = source.project_id;
        // Verifying a checkpoint hashes its files: off the async runtime.
        let plan = tokio::task::spawn_blocking(move || {
            crate::resume::plan(&source, new_id, &request, &layout)
        })
        .await
        .map_err(|e| {
            Failure::new(ErrorCode::InternalError, ctx! {})
                .caused_by(format!("planning the resume: {e}"))
        })??;
        let admitted = self
            .inner
            .admission
            .admit(JobKind::Train, &plan.config)
            .await?;
        let sched = &self.inner.config.scheduler;
        let new = NewJob {
            id: new_id,
            config: admitted.config,
            recorded: admitted.recorded,
            max_retries: sched.policies.get(JobKind::Train).max_retries,
            queue_timeout_ms: sched.queue_timeout.as_millis() as u64,
            resumes: Some(plan.link),
        };
        let created = self.inner.projects.create_job(project, new).await?;
        if let Ok(s) = self.scheduler() {
            let _ = s.send_message(SchedulerMsg::Wake);
        }
        Ok(created)
    }

    pub async fn cancel_job(&self, job: JobId) -> Result<JobView, Failure> {
        if !self.read(|s| s.jobs.contains_key(&job)) {
            return Err(Failure::new(
                ErrorCode::JobNotFound,
                ctx! {"job_id" => job.to_string()},
            ));
        }
        let sched = self.scheduler()?;
        match sched.call(|r| SchedulerMsg::Cancel(job, r), None).await {
            Ok(ractor::rpc::CallResult::Success(r)) => r,
            _ => Err(Failure::new(
                ErrorCode::JobCancelFailed,
                ctx! {"job_id" => job.to_string(), "reason" => "the scheduler did not answer"},
            )),
        }
    }

    /// Stop taking work, let running attempts checkpoint and stop, record the stop, flush
    /// and close the log. Jobs stopped this way resume at the next start.
    pub async fn shutdown(&self, reason: &str) -> Result<(), Failure> {
        self.inner.accepting.store(false, Ordering::Release);
        self.inner.ready.store(false, Ordering::Release);
        let _ = self.inner.supervisor.send_message(SupervisorMsg::Stopping);
        if let Ok(s) = self.scheduler() {
            let grace =
                self.inner.config.scheduler.shutdown_grace + std::time::Duration::from_secs(5);
            let _ = s.call(SchedulerMsg::Shutdown, Some(grace)).await;
        }
        let stopped = self
            .inner
            .ledger
            .commit(vec![Event::ServiceStopped(ServiceStopped {
                reason: reason.into(),
            })])
            .await;
        match stopped {
            Ok(_) => {}
            // A full disk loses only the stop record: the stop itself is clean (docs/storage.md).
            Err(f) if f.error_code == ErrorCode::StorageFull => {
                tracing::warn!(failure = %f, "the stop could not be recorded: the disk is full");
            }
            Err(f) => return Err(f),
        }
        self.inner.supervisor.stop_children(Some("shutdown".into()));
        self.inner.supervisor.stop(Some("shutdown".into()));
        self.inner.ledger.log().close().map_err(log_failure)
    }
}
