//! What the scheduler's parts share: its configuration, its messages, its arguments and the
//! state it keeps between messages (the attempts in flight, the retries due, the timers armed).

use std::collections::{HashMap, HashSet};
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ractor::RpcReplyPort;
use rand::rngs::StdRng;
use serde::{Deserialize, Serialize};
use tokio::sync::watch;
use tunewright_events::projection::JobView;
use tunewright_schemas::{DataLayout, Failure, JobId, JobKind};

use crate::executor::{Executors, Outcome, StopRequest};
use crate::hardware::HardwareProbe;
use crate::ledger::Ledger;
use crate::policy::RetryPolicies;
use crate::project::Projects;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SchedulerConfig {
    pub policies: RetryPolicies,
    /// A job no one picks up within this fails with `JOB_TIMEOUT` (a training waiting for a
    /// busy device is not "no one": its bound starts over).
    pub queue_timeout: Duration,
    /// Attempts of non-training kinds that may run at once (trainings: one per device).
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

/// Shared across scheduler restarts, so a restarted scheduler adopts the attempts in flight.
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
    pub layout: DataLayout,
    pub running: RunningJobs,
    /// What the analyzer's suggestions are held to (a GPU must exist for `device: "cuda"`).
    pub hardware: HardwareProbe,
    /// Whether this is the first start of the scheduler in this process (recovery from the
    /// log) rather than a restart after a crash (adopt the attempts in flight).
    pub first_start: Arc<AtomicBool>,
}

pub enum SchedulerMsg {
    /// Look at the queue and start what can start.
    Wake,
    AttemptFinished {
        job_id: JobId,
        attempt: u32,
        outcome: Outcome,
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

pub struct SchedulerState {
    pub args: SchedulerArgs,
    /// `retrying` jobs whose next attempt is due.
    pub due: HashSet<JobId>,
    /// Never-started jobs whose queue bound is armed.
    pub armed: HashSet<JobId>,
    pub rng: StdRng,
    pub shutting_down: bool,
    /// Start-up recovery that could not write the log yet (its `first start` flag): run again
    /// before the next message (docs/storage.md).
    pub recovery_pending: Option<bool>,
    /// Whether a `Wake` is already scheduled to retry after the log could not be written.
    pub log_retry_armed: bool,
}

impl SchedulerState {
    /// Whether a training attempt holds the device.
    pub fn device_busy(&self) -> bool {
        self.args
            .running
            .lock()
            .map(|m| m.values().any(|r| r.kind == JobKind::Train))
            .unwrap_or(true)
    }

    /// What the hardware probe says about a GPU, for trainings' suggestions.
    pub async fn gpu_for(&self, kind: JobKind) -> Option<bool> {
        if kind == JobKind::Train {
            self.args.hardware.gpu_available().await
        } else {
            None
        }
    }
}
