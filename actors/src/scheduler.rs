//! The scheduler: the job queue and the job state machine of docs/jobs.md.
//!
//! queued -> running -> success | failed | cancelled, with running -> retrying -> running for
//! retryable failures (per-kind policy, backoff with jitter), a bound on how long a job may
//! wait to be picked up (`JOB_TIMEOUT`), cancellation in every state, and one training at a
//! time on the device. The queue is a projection of the log, so after a restart queued jobs
//! are still queued and a job that was running is known to have been interrupted: it goes
//! back to the queue (its executor resumes it) within a restart budget, or fails.
//!
//! Running attempts live in `RunningJobs`, shared across scheduler restarts, so a scheduler
//! that crashed and was restarted adopts the attempts still in flight.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ractor::{Actor, ActorProcessingErr, ActorRef, RpcReplyPort};
use rand::rngs::StdRng;
use rand::SeedableRng;
use serde::{Deserialize, Serialize};
use tokio::sync::watch;
use tunewright_events::event::*;
use tunewright_events::projection::JobView;
use tunewright_events::Event;
use tunewright_schemas::{ctx, ErrorCode, ErrorPhase, Failure, JobId, JobKind, JobStatus, Json};

use crate::analyzer::{analyze, AnalyzeInput};
use crate::executor::{
    ExecutorMsg, Executors, JobContext, Outcome, OutcomeSink, StopRequest, StopSignal,
};
use crate::ledger::Ledger;
use crate::policy::RetryPolicies;
use crate::project::Projects;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SchedulerConfig {
    pub policies: RetryPolicies,
    /// A job not picked up within this fails with `JOB_TIMEOUT`.
    pub queue_timeout: Duration,
    /// Attempts of non-training kinds that may run at once (training: one per device).
    pub max_parallel: usize,
    /// How often a job may be interrupted (service or worker death) and still resume.
    pub restart_budget: u32,
    /// How long shutdown waits for running attempts to checkpoint and stop.
    pub shutdown_grace: Duration,
    /// Seed of the retry jitter (None: from entropy).
    pub jitter_seed: Option<u64>,
}

impl Default for SchedulerConfig {
    fn default() -> Self {
        SchedulerConfig {
            policies: RetryPolicies::default(),
            queue_timeout: Duration::from_secs(3600),
            max_parallel: 4,
            restart_budget: 3,
            shutdown_grace: Duration::from_secs(30),
            jitter_seed: None,
        }
    }
}

/// An attempt in flight.
pub struct RunningJob {
    pub attempt: u32,
    pub kind: JobKind,
    pub stop: watch::Sender<Option<StopRequest>>,
}

pub type RunningJobs = Arc<Mutex<HashMap<JobId, RunningJob>>>;

pub struct SchedulerArgs {
    /// The scheduler's actor name (unique per service instance); executors report to it.
    pub name: String,
    pub ledger: Ledger,
    pub projects: Projects,
    pub executors: Executors,
    /// Actor names of the executor actors (supervised beside the scheduler, so an attempt
    /// handed to one survives a scheduler crash).
    pub executor_names: HashMap<JobKind, String>,
    pub config: SchedulerConfig,
    pub layout: tunewright_schemas::DataLayout,
    pub running: RunningJobs,
    /// Whether this is the first start of the scheduler in this process (recovery from the
    /// log) rather than a restart after a crash (adopt the attempts in flight).
    pub first_start: Arc<std::sync::atomic::AtomicBool>,
}

pub enum SchedulerMsg {
    /// Look at the queue and start what can start.
    Wake,
    AttemptFinished {
        job_id: JobId,
        attempt: u32,
        outcome: Result<serde_json::Value, Failure>,
        /// Answered once the outcome is recorded, so the reporter knows it reached a live
        /// scheduler (a message sent to one that is crashing is lost with it).
        ack: Option<RpcReplyPort<()>>,
    },
    RetryDue(JobId),
    QueueTimeout(JobId),
    Cancel(JobId, RpcReplyPort<Result<JobView, Failure>>),
    /// Stop starting jobs, ask running ones to checkpoint and stop, wait (bounded), answer.
    Shutdown(RpcReplyPort<()>),
    /// Fault injection for the supervision tests: the scheduler panics with this text.
    Crash(String),
}

pub struct Scheduler;

pub struct SchedulerState {
    args: SchedulerArgs,
    due: HashSet<JobId>,
    rng: StdRng,
    shutting_down: bool,
}

fn job_failure_code(kind: JobKind) -> ErrorCode {
    match kind {
        JobKind::Train => ErrorCode::TrainingInterrupted,
        JobKind::DatasetGenerate | JobKind::DatasetPreview => ErrorCode::DatasetGenerationFailed,
        JobKind::Export => ErrorCode::ExportWriteFailed,
    }
}

fn phase_of(kind: JobKind) -> ErrorPhase {
    match kind {
        JobKind::Train => ErrorPhase::Training,
        JobKind::DatasetGenerate | JobKind::DatasetPreview => ErrorPhase::Generation,
        JobKind::Export => ErrorPhase::Export,
    }
}

/// Attach the analyzer's reading (docs/errors.md) to a failure that has none.
pub fn with_analysis(mut f: Failure, job: &JobView) -> Failure {
    if f.analysis.is_none() {
        let mut text = f.detail.clone();
        for c in &f.cause_chain {
            text.push('\n');
            text.push_str(c);
        }
        for l in &f.log_tail {
            text.push('\n');
            text.push_str(l);
        }
        let mut analysis = analyze(&AnalyzeInput {
            error_text: text,
            phase: Some(phase_of(job.kind)),
            config: Some(job.config.0.clone()),
            code: Some(f.error_code),
        });
        analysis.suggestions.retain(|s| applicable(job, s));
        f.analysis = Some(analysis);
    }
    f
}

/// Whether a suggestion's config changes can be applied to this job: for a `train` job with a
/// valid config, the changed config must still be one (the analyzer knows Hugging Face's keys,
/// some of which, like `gradient_checkpointing`, tunewright's trainer does not take).
fn applicable(job: &JobView, s: &tunewright_schemas::Suggestion) -> bool {
    use tunewright_schemas::config::TrainConfig;
    let Some(changes) = s.config_changes.0.as_object().filter(|c| !c.is_empty()) else {
        return true;
    };
    if job.kind != JobKind::Train || TrainConfig::from_json(&job.config.0).is_err() {
        return true;
    }
    let mut changed = job.config.0.clone();
    let Some(obj) = changed.as_object_mut() else {
        return true;
    };
    for (k, v) in changes {
        obj.insert(k.clone(), v.clone());
    }
    TrainConfig::from_json(&changed).is_ok()
}

impl Actor for Scheduler {
    type Msg = SchedulerMsg;
    type State = SchedulerState;
    type Arguments = SchedulerArgs;

    async fn pre_start(
        &self,
        me: ActorRef<Self::Msg>,
        args: SchedulerArgs,
    ) -> Result<SchedulerState, ActorProcessingErr> {
        let rng = match args.config.jitter_seed {
            Some(s) => StdRng::seed_from_u64(s),
            None => StdRng::from_os_rng(),
        };
        let mut st = SchedulerState {
            args,
            due: HashSet::new(),
            rng,
            shutting_down: false,
        };
        let first = st
            .args
            .first_start
            .swap(false, std::sync::atomic::Ordering::AcqRel);
        recover(&me, &mut st, first).await?;
        let _ = me.send_message(SchedulerMsg::Wake);
        Ok(st)
    }

    async fn handle(
        &self,
        me: ActorRef<Self::Msg>,
        msg: Self::Msg,
        st: &mut SchedulerState,
    ) -> Result<(), ActorProcessingErr> {
        match msg {
            SchedulerMsg::Wake => dispatch(&me, st).await?,
            SchedulerMsg::AttemptFinished {
                job_id,
                attempt,
                outcome,
                ack,
            } => {
                finished(&me, st, job_id, attempt, outcome).await?;
                if let Some(ack) = ack {
                    let _ = ack.send(());
                }
                dispatch(&me, st).await?;
            }
            SchedulerMsg::RetryDue(job_id) => {
                st.due.insert(job_id);
                dispatch(&me, st).await?;
            }
            SchedulerMsg::QueueTimeout(job_id) => queue_timeout(st, job_id).await?,
            SchedulerMsg::Cancel(job_id, reply) => {
                let r = cancel(st, job_id).await;
                let _ = reply.send(r);
                dispatch(&me, st).await?;
            }
            SchedulerMsg::Shutdown(reply) => {
                st.shutting_down = true;
                if let Ok(running) = st.args.running.lock() {
                    for r in running.values() {
                        let _ = r.stop.send(Some(StopRequest::Shutdown));
                    }
                }
                let running = st.args.running.clone();
                let grace = st.args.config.shutdown_grace;
                tokio::spawn(async move {
                    let deadline = tokio::time::Instant::now() + grace;
                    while running.lock().map(|m| !m.is_empty()).unwrap_or(false)
                        && tokio::time::Instant::now() < deadline
                    {
                        tokio::time::sleep(Duration::from_millis(20)).await;
                    }
                    let _ = reply.send(());
                });
            }
            SchedulerMsg::Crash(text) => panic!("{text}"),
        }
        Ok(())
    }
}

/// Rebuild the queue from the log. On the process's first start, attempts that were running
/// are interrupted; after a scheduler crash, attempts still in flight are adopted.
async fn recover(
    me: &ActorRef<SchedulerMsg>,
    st: &mut SchedulerState,
    first_start: bool,
) -> Result<(), ActorProcessingErr> {
    let jobs: Vec<JobView> = st.args.ledger.read(|s| {
        s.jobs
            .values()
            .filter(|j| !j.status.is_terminal())
            .cloned()
            .collect()
    });
    let now_ms = wall_ms();
    for job in jobs {
        match job.status {
            JobStatus::Running => {
                let in_flight = !first_start
                    && st
                        .args
                        .running
                        .lock()
                        .map(|m| m.contains_key(&job.id))
                        .unwrap_or(false);
                if in_flight {
                    continue;
                }
                interrupt(
                    st,
                    &job,
                    "the process running the job stopped while it was running",
                )
                .await?;
            }
            JobStatus::Retrying => {
                let wait = job
                    .retry_due_at_ms
                    .map(|d| (d - now_ms).max(0) as u64)
                    .unwrap_or(0);
                schedule(
                    me,
                    Duration::from_millis(wait),
                    SchedulerMsg::RetryDue(job.id),
                );
            }
            // Never picked up yet: its wait-to-be-picked-up bound keeps running.
            JobStatus::Queued if job.attempts == 0 => {
                let waited = (now_ms - job.created_at_ms).max(0) as u64;
                let left = job.queue_timeout_ms.saturating_sub(waited);
                schedule(
                    me,
                    Duration::from_millis(left),
                    SchedulerMsg::QueueTimeout(job.id),
                );
            }
            _ => {}
        }
    }
    Ok(())
}

async fn interrupt(
    st: &mut SchedulerState,
    job: &JobView,
    reason: &str,
) -> Result<(), ActorProcessingErr> {
    let interrupted = Event::JobInterrupted(JobInterrupted {
        job_id: job.id,
        attempt: job.attempts,
        reason: reason.into(),
    });
    let resumable = st
        .args
        .executors
        .get(job.kind)
        .map(|e| e.resumable())
        .unwrap_or(false);
    let interruptions = job.interruptions + 1;
    if resumable && interruptions <= st.args.config.restart_budget {
        st.args.ledger.commit(vec![interrupted]).await?;
        tracing::warn!(job = %job.id, interruptions, "job interrupted; queued to resume");
        return Ok(());
    }
    let why = if resumable {
        format!(
            "{reason}; interrupted {interruptions} times, over the budget of {}",
            st.args.config.restart_budget
        )
    } else {
        format!("{reason}; {} jobs cannot resume", job.kind)
    };
    let failure = with_analysis(
        Failure::new(job_failure_code(job.kind), ctx! {"reason" => why.clone()}).caused_by(why),
        job,
    );
    st.args
        .projects
        .finish_job(
            job.project_id,
            job.id,
            vec![
                interrupted,
                Event::JobFailed(JobFailed {
                    job_id: job.id,
                    failure,
                }),
            ],
        )
        .await?;
    Ok(())
}

fn schedule(me: &ActorRef<SchedulerMsg>, after: Duration, msg: SchedulerMsg) {
    let me = me.clone();
    tokio::spawn(async move {
        tokio::time::sleep(after).await;
        let _ = me.send_message(msg);
    });
}

fn wall_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// Start every queued (or due) job that can start.
async fn dispatch(
    me: &ActorRef<SchedulerMsg>,
    st: &mut SchedulerState,
) -> Result<(), ActorProcessingErr> {
    if st.shutting_down {
        return Ok(());
    }
    let mut candidates: Vec<JobView> = st.args.ledger.read(|s| {
        s.jobs
            .values()
            .filter(|j| {
                j.status == JobStatus::Queued
                    || (j.status == JobStatus::Retrying && st.due.contains(&j.id))
            })
            .cloned()
            .collect()
    });
    candidates.sort_by_key(|j| (j.created_at_ms, j.id));
    for job in candidates {
        let (train_busy, others) = {
            let running = st
                .args
                .running
                .lock()
                .map_err(|_| "running jobs lock poisoned")?;
            if running.contains_key(&job.id) {
                continue;
            }
            (
                running.values().any(|r| r.kind == JobKind::Train),
                running
                    .values()
                    .filter(|r| r.kind != JobKind::Train)
                    .count(),
            )
        };
        if job.kind == JobKind::Train && train_busy {
            continue;
        }
        if job.kind != JobKind::Train && others >= st.args.config.max_parallel {
            continue;
        }
        let Some(executor) = st
            .args
            .executor_names
            .get(&job.kind)
            .and_then(|n| ractor::registry::where_is(n.clone()))
            .filter(|c| c.get_status() == ractor::ActorStatus::Running)
            .map(ActorRef::<ExecutorMsg>::from)
        else {
            continue;
        };
        let Some(project) = st
            .args
            .ledger
            .read(|s| s.projects.get(&job.project_id).cloned())
        else {
            continue;
        };
        let attempt = job.attempts + 1;
        st.args
            .ledger
            .commit(vec![Event::JobAttemptStarted(JobAttemptStarted {
                job_id: job.id,
                attempt,
            })])
            .await?;
        st.due.remove(&job.id);
        let Some(job) = st.args.ledger.read(|s| s.jobs.get(&job.id).cloned()) else {
            continue;
        };
        let (stop_tx, stop) = StopSignal::channel();
        if let Ok(mut running) = st.args.running.lock() {
            running.insert(
                job.id,
                RunningJob {
                    attempt,
                    kind: job.kind,
                    stop: stop_tx,
                },
            );
        }
        metrics::counter!("tunewright_job_attempts_total", "kind" => job.kind.as_str())
            .increment(1);
        let ctx = JobContext {
            events: crate::executor::EventSink::new(st.args.ledger.clone(), job.id),
            job,
            project,
            attempt,
            layout: st.args.layout.clone(),
            stop,
            projects: st.args.projects.clone(),
        };
        if let Err(e) = executor.send_message(ExecutorMsg::Execute(Box::new(ctx))) {
            tracing::error!(error = %e, "executor unavailable");
        }
    }
    let _ = me;
    Ok(())
}

async fn finished(
    me: &ActorRef<SchedulerMsg>,
    st: &mut SchedulerState,
    job_id: JobId,
    attempt: u32,
    outcome: Result<serde_json::Value, Failure>,
) -> Result<(), ActorProcessingErr> {
    let was_running = st
        .args
        .running
        .lock()
        .ok()
        .and_then(|mut m| m.remove(&job_id));
    let Some(job) = st.args.ledger.read(|s| s.jobs.get(&job_id).cloned()) else {
        return Ok(());
    };
    if job.status != JobStatus::Running || job.attempts != attempt || was_running.is_none() {
        // Cancelled meanwhile, or a stale report: the outcome changes nothing.
        return Ok(());
    }
    let kind = job.kind.as_str();
    match outcome {
        Ok(result) => {
            metrics::counter!("tunewright_jobs_total", "kind" => kind, "status" => "success")
                .increment(1);
            st.args
                .projects
                .finish_job(
                    job.project_id,
                    job_id,
                    vec![Event::JobSucceeded(JobSucceeded {
                        job_id,
                        attempt,
                        result: Json(result),
                    })],
                )
                .await?;
        }
        Err(_) if st.shutting_down => {
            // Stopped for the shutdown: stays `running` in the log, resumes after restart.
            tracing::info!(job = %job_id, "attempt stopped for shutdown; it resumes at the next start");
        }
        Err(failure) => {
            let failure = with_analysis(failure, &job);
            metrics::counter!("tunewright_job_failures_total", "code" => failure.error_code.as_str()).increment(1);
            let policy = st.args.config.policies.get(job.kind).clone();
            if policy.should_retry(failure.error_code, attempt, job.max_retries) {
                let delay = policy.backoff(attempt, &mut st.rng);
                metrics::counter!("tunewright_job_retries_total", "kind" => kind).increment(1);
                st.args
                    .ledger
                    .commit(vec![
                        Event::JobAttemptFailed(JobAttemptFailed {
                            job_id,
                            attempt,
                            failure: failure.clone(),
                            will_retry: true,
                        }),
                        Event::JobRetryScheduled(JobRetryScheduled {
                            job_id,
                            next_attempt: attempt + 1,
                            delay_ms: delay.as_millis() as u64,
                            due_at_ms: wall_ms() + delay.as_millis() as i64,
                            reason: failure.error_code,
                        }),
                    ])
                    .await?;
                schedule(me, delay, SchedulerMsg::RetryDue(job_id));
            } else {
                metrics::counter!("tunewright_jobs_total", "kind" => kind, "status" => "failed")
                    .increment(1);
                st.args
                    .projects
                    .finish_job(
                        job.project_id,
                        job_id,
                        vec![
                            Event::JobAttemptFailed(JobAttemptFailed {
                                job_id,
                                attempt,
                                failure: failure.clone(),
                                will_retry: false,
                            }),
                            Event::JobFailed(JobFailed { job_id, failure }),
                        ],
                    )
                    .await?;
            }
        }
    }
    Ok(())
}

async fn queue_timeout(st: &mut SchedulerState, job_id: JobId) -> Result<(), ActorProcessingErr> {
    let Some(job) = st.args.ledger.read(|s| s.jobs.get(&job_id).cloned()) else {
        return Ok(());
    };
    if job.status != JobStatus::Queued || job.attempts > 0 {
        return Ok(());
    }
    let secs = job.queue_timeout_ms / 1000;
    let failure = with_analysis(
        Failure::new(
            ErrorCode::JobTimeout,
            ctx! {"job_id" => job_id.to_string(), "timeout_secs" => secs},
        ),
        &job,
    );
    metrics::counter!("tunewright_jobs_total", "kind" => job.kind.as_str(), "status" => "failed")
        .increment(1);
    st.args
        .projects
        .finish_job(
            job.project_id,
            job_id,
            vec![Event::JobFailed(JobFailed { job_id, failure })],
        )
        .await?;
    Ok(())
}

async fn cancel(st: &mut SchedulerState, job_id: JobId) -> Result<JobView, Failure> {
    let Some(job) = st.args.ledger.read(|s| s.jobs.get(&job_id).cloned()) else {
        return Err(Failure::new(
            ErrorCode::JobNotFound,
            ctx! {"job_id" => job_id.to_string()},
        ));
    };
    if job.status.is_terminal() {
        return Err(Failure::new(
            ErrorCode::JobAlreadyFinished,
            ctx! {"job_id" => job_id.to_string(), "status" => job.status.as_str()},
        ));
    }
    if job.status == JobStatus::Running {
        // The attempt is told to stop; it keeps its device slot until it has really stopped.
        if let Ok(running) = st.args.running.lock() {
            if let Some(r) = running.get(&job_id) {
                let _ = r.stop.send(Some(StopRequest::Cancel));
            }
        }
    }
    st.due.remove(&job_id);
    st.args
        .projects
        .finish_job(
            job.project_id,
            job_id,
            vec![Event::JobCancelled(JobCancelled {
                job_id,
                from_status: job.status,
                reason: "cancelled by the user".into(),
            })],
        )
        .await?;
    metrics::counter!("tunewright_jobs_total", "kind" => job.kind.as_str(), "status" => "cancelled").increment(1);
    st.args
        .ledger
        .read(|s| s.jobs.get(&job_id).cloned())
        .ok_or_else(|| {
            Failure::new(
                ErrorCode::JobNotFound,
                ctx! {"job_id" => job_id.to_string()},
            )
        })
}

/// Outcomes go to whichever scheduler instance is alive (found by name), waiting out a
/// restart.
pub struct SchedulerOutcomes {
    /// The scheduler's actor name.
    pub scheduler: String,
}

#[async_trait::async_trait]
impl OutcomeSink for SchedulerOutcomes {
    async fn deliver(&self, job_id: JobId, attempt: u32, outcome: Outcome) {
        report(&self.scheduler, job_id, attempt, outcome).await
    }
}

async fn report(scheduler: &str, job_id: JobId, attempt: u32, outcome: Outcome) {
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
