//! Projects: one actor per project serialises the project's commands; each is judged by the
//! pure `decide` against the live state, its events committed in one transaction, and only
//! then answered. `Projects` is the handle that finds (or starts, linked to the supervisor)
//! the actor of a project.
//!
//! - `decide`: the decisions (what each command becomes, or why it is refused).
//! - `status`: the project state machine's moves on a job's creation and end.
//! - `split`: the split rules; `parts`: a split's parts written as files for a worker.

pub mod decide;
pub mod parts;
pub mod split;
pub mod status;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use ractor::{Actor, ActorCell, ActorProcessingErr, ActorRef, RpcReplyPort};
use tunewright_events::projection::{DatasetView, FileView, JobView, ProjectView, SplitView};
use tunewright_events::{Event, State};
use tunewright_schemas::{ctx, ErrorCode, Failure, FileId, JobId, ProjectId, SplitId};

pub use decide::{not_found, Command, DatasetRecord, FileRecord, NewJob, ProjectLimits};
pub use split::split_counts;

use crate::ledger::Ledger;
use crate::supervisor::{ChildRegistry, ChildSpec};

type Reply<T> = RpcReplyPort<Result<T, Failure>>;

pub enum ProjectMsg {
    Run(Box<Command>, Reply<()>),
}

/// The handle to all project actors.
#[derive(Clone)]
pub struct Projects {
    ledger: Ledger,
    limits: ProjectLimits,
    actors: Arc<Mutex<HashMap<ProjectId, ActorRef<ProjectMsg>>>>,
    spawn_lock: Arc<tokio::sync::Mutex<()>>,
    supervisor: Arc<Mutex<Option<(ActorCell, ChildRegistry)>>>,
}

impl Projects {
    pub fn new(ledger: Ledger, limits: ProjectLimits) -> Self {
        Projects {
            ledger,
            limits,
            actors: Default::default(),
            spawn_lock: Default::default(),
            supervisor: Default::default(),
        }
    }

    /// Project actors started from now on are linked to `supervisor`.
    pub fn attach(&self, supervisor: ActorCell, registry: ChildRegistry) {
        if let Ok(mut s) = self.supervisor.lock() {
            *s = Some((supervisor, registry));
        }
    }

    pub fn ledger(&self) -> &Ledger {
        &self.ledger
    }

    /// Create a project (no actor needed: the id is new).
    pub async fn create(&self, name: &str) -> Result<ProjectView, Failure> {
        let id = ProjectId::new();
        let events = decide::create_project(id, name, &self.limits)?;
        self.ledger.commit(events).await?;
        self.view(|s| s.projects.get(&id).cloned(), id)
    }

    /// The actor of `id`, started if needed; `PROJECT_NOT_FOUND` for an unknown project.
    pub async fn actor(&self, id: ProjectId) -> Result<ActorRef<ProjectMsg>, Failure> {
        if !self.ledger.read(|s| s.projects.contains_key(&id)) {
            return Err(not_found(id));
        }
        if let Some(a) = self.actors.lock().ok().and_then(|m| m.get(&id).cloned()) {
            if a.get_status() == ractor::ActorStatus::Running {
                return Ok(a);
            }
        }
        self.spawn(id).await
    }

    /// Boxed so the restart spec, which calls it again, has a nameable `Send` future.
    fn spawn(
        &self,
        id: ProjectId,
    ) -> std::pin::Pin<
        Box<dyn std::future::Future<Output = Result<ActorRef<ProjectMsg>, Failure>> + Send + '_>,
    > {
        Box::pin(self.spawn_inner(id))
    }

    async fn spawn_inner(&self, id: ProjectId) -> Result<ActorRef<ProjectMsg>, Failure> {
        let _guard = self.spawn_lock.lock().await;
        if let Some(a) = self.actors.lock().ok().and_then(|m| m.get(&id).cloned()) {
            if a.get_status() == ractor::ActorStatus::Running {
                return Ok(a);
            }
        }
        let name = format!("project:{id}");
        let actor = ProjectActor {
            id,
            ledger: self.ledger.clone(),
            limits: self.limits.clone(),
        };
        let sup = self.supervisor.lock().ok().and_then(|s| s.clone());
        let spawned = match &sup {
            Some((cell, registry)) => {
                let projects = self.clone();
                registry.register(ChildSpec::new(name.clone(), move |_sup| {
                    let p = projects.clone();
                    Box::pin(async move {
                        let spawned = p.spawn(id).await;
                        spawned.map(|a| a.get_cell()).map_err(|f| f.detail)
                    })
                }));
                Actor::spawn_linked(Some(name), actor, (), cell.clone()).await
            }
            None => Actor::spawn(Some(name), actor, ()).await,
        };
        let (a, _) = spawned.map_err(|e| {
            Failure::new(ErrorCode::InternalError, ctx! {})
                .caused_by(format!("starting project actor {id}: {e}"))
        })?;
        if let Ok(mut m) = self.actors.lock() {
            m.insert(id, a.clone());
        }
        Ok(a)
    }

    /// Run `command` on project `id` through its actor: decided, committed, then answered.
    pub async fn run(&self, id: ProjectId, command: Command) -> Result<(), Failure> {
        let actor = self.actor(id).await?;
        match actor
            .call(|r| ProjectMsg::Run(Box::new(command), r), None)
            .await
        {
            Ok(ractor::rpc::CallResult::Success(r)) => r,
            Ok(_) | Err(_) => Err(Failure::new(ErrorCode::InternalError, ctx! {})
                .caused_by(format!("project actor {id} stopped before answering"))),
        }
    }

    fn view<T>(&self, read: impl FnOnce(&State) -> Option<T>, id: ProjectId) -> Result<T, Failure> {
        self.ledger.read(read).ok_or_else(|| not_found(id))
    }

    pub async fn record_file(&self, id: ProjectId, f: FileRecord) -> Result<FileView, Failure> {
        let file = f.file_id;
        self.run(id, Command::RecordFile(f)).await?;
        self.view(|s| s.projects.get(&id)?.files.get(&file).cloned(), id)
    }

    pub async fn delete_file(&self, id: ProjectId, file: FileId) -> Result<FileView, Failure> {
        let before = self.view(|s| Some(s.projects.get(&id)?.files.get(&file).cloned()), id)?;
        self.run(id, Command::DeleteFile(file)).await?;
        before.ok_or_else(|| not_found(id))
    }

    pub async fn import_dataset(
        &self,
        id: ProjectId,
        d: DatasetRecord,
    ) -> Result<DatasetView, Failure> {
        self.run(id, Command::ImportDataset(d)).await?;
        self.view(|s| s.projects.get(&id)?.dataset.clone(), id)
    }

    pub async fn create_split(
        &self,
        id: ProjectId,
        name: String,
        ratios: Vec<(String, f64)>,
        seed: u64,
    ) -> Result<SplitView, Failure> {
        let command = Command::CreateSplit {
            split_id: SplitId::new(),
            name: name.trim().to_string(),
            ratios,
            seed,
        };
        self.run(id, command).await?;
        let name = name.trim().to_string();
        self.view(|s| s.projects.get(&id)?.splits.get(&name).cloned(), id)
    }

    pub async fn create_job(&self, id: ProjectId, job: NewJob) -> Result<JobView, Failure> {
        let job_id = job.id;
        self.run(id, Command::CreateJob(Box::new(job))).await?;
        self.ledger
            .read(|s| s.jobs.get(&job_id).cloned())
            .ok_or_else(|| {
                Failure::new(
                    ErrorCode::JobNotFound,
                    ctx! {"job_id" => job_id.to_string()},
                )
            })
    }

    pub async fn finish_job(
        &self,
        id: ProjectId,
        job: JobId,
        events: Vec<Event>,
    ) -> Result<(), Failure> {
        self.run(id, Command::FinishJob(job, events)).await
    }

    pub async fn delete(&self, id: ProjectId) -> Result<(), Failure> {
        let r = self.run(id, Command::Delete).await;
        if r.is_ok() {
            if let Some(a) = self.actors.lock().ok().and_then(|mut m| m.remove(&id)) {
                a.stop(Some("project deleted".into()));
            }
        }
        r
    }
}

/// The actor of one project: it routes, commits and answers; `decide` judges.
pub struct ProjectActor {
    id: ProjectId,
    ledger: Ledger,
    limits: ProjectLimits,
}

impl ProjectActor {
    async fn run(&self, command: &Command) -> Result<(), Failure> {
        let events = self
            .ledger
            .read(|s| decide::decide(s, self.id, &self.limits, command))?;
        self.ledger.commit(events).await.map(|_| ())
    }
}

impl Actor for ProjectActor {
    type Msg = ProjectMsg;
    type State = ();
    type Arguments = ();

    async fn pre_start(&self, _me: ActorRef<Self::Msg>, _: ()) -> Result<(), ActorProcessingErr> {
        Ok(())
    }

    async fn handle(
        &self,
        _me: ActorRef<Self::Msg>,
        msg: Self::Msg,
        _: &mut (),
    ) -> Result<(), ActorProcessingErr> {
        let ProjectMsg::Run(command, reply) = msg;
        let _ = reply.send(self.run(&command).await);
        Ok(())
    }
}
