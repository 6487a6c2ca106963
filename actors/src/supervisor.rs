//! The supervisor: starts the actors linked, restarts a failed one after an exponential
//! backoff, and gives up after too many restarts in a window (OTP's intensity and period),
//! escalating so the process exits non-zero for its own supervisor (systemd).
//!
//! Every failure, restart and the giving up are events. Children are `ChildSpec`s in a
//! `ChildRegistry`: fixed ones (the scheduler) and ones added while running (project actors).

use std::collections::{HashMap, VecDeque};
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ractor::{Actor, ActorCell, ActorProcessingErr, ActorRef, SupervisionEvent};
use serde::{Deserialize, Serialize};
use tokio::sync::watch;
use tokio::time::Instant;
use tunewright_events::event::{ActorFailed, ActorRestarted, SupervisorGaveUp};
use tunewright_events::Event;

use crate::ledger::Ledger;

type StartFuture = Pin<Box<dyn Future<Output = Result<ActorCell, String>> + Send>>;

/// How to (re)start one child, linked to the supervisor cell given.
#[derive(Clone)]
pub struct ChildSpec {
    pub name: String,
    start: Arc<dyn Fn(ActorCell) -> StartFuture + Send + Sync>,
}

impl ChildSpec {
    pub fn new(
        name: impl Into<String>,
        start: impl Fn(ActorCell) -> StartFuture + Send + Sync + 'static,
    ) -> Self {
        ChildSpec {
            name: name.into(),
            start: Arc::new(start),
        }
    }
}

/// The children the supervisor knows how to restart, by actor name.
#[derive(Clone, Default)]
pub struct ChildRegistry(Arc<Mutex<HashMap<String, ChildSpec>>>);

impl ChildRegistry {
    pub fn register(&self, spec: ChildSpec) {
        if let Ok(mut m) = self.0.lock() {
            m.insert(spec.name.clone(), spec);
        }
    }

    pub fn forget(&self, name: &str) {
        if let Ok(mut m) = self.0.lock() {
            m.remove(name);
        }
    }

    fn get(&self, name: &str) -> Option<ChildSpec> {
        self.0.lock().ok().and_then(|m| m.get(name).cloned())
    }
}

/// OTP-style restart intensity and the backoff between restarts.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RestartPolicy {
    /// More restarts than this of one actor within `window` and the supervisor gives up.
    pub max_restarts: u32,
    pub window: Duration,
    pub base_backoff: Duration,
    pub max_backoff: Duration,
}

impl Default for RestartPolicy {
    fn default() -> Self {
        RestartPolicy {
            max_restarts: 5,
            window: Duration::from_secs(60),
            base_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(10),
        }
    }
}

impl RestartPolicy {
    pub fn backoff(&self, restart: u32) -> Duration {
        let exp = 2u32.saturating_pow(restart.saturating_sub(1).min(30));
        self.base_backoff.saturating_mul(exp).min(self.max_backoff)
    }
}

pub struct Supervisor;

pub struct SupervisorArgs {
    pub ledger: Ledger,
    pub registry: ChildRegistry,
    /// Children to start now, in order.
    pub initial: Vec<String>,
    pub policy: RestartPolicy,
    /// Set to the reason when the supervisor gives up.
    pub gave_up: watch::Sender<Option<String>>,
}

pub struct SupervisorState {
    args: SupervisorArgs,
    restarts: HashMap<String, VecDeque<Instant>>,
    stopping: bool,
}

pub enum SupervisorMsg {
    /// Start the named child again (sent after its backoff).
    Restart {
        name: String,
        count: u32,
        backoff: Duration,
    },
    /// Stop supervising: children stopping from now on are not restarted.
    Stopping,
}

impl Actor for Supervisor {
    type Msg = SupervisorMsg;
    type State = SupervisorState;
    type Arguments = SupervisorArgs;

    async fn pre_start(
        &self,
        me: ActorRef<Self::Msg>,
        args: SupervisorArgs,
    ) -> Result<SupervisorState, ActorProcessingErr> {
        for name in &args.initial {
            let spec = args
                .registry
                .get(name)
                .ok_or_else(|| format!("no child spec named {name}"))?;
            (spec.start)(me.get_cell())
                .await
                .map_err(|e| format!("starting {name}: {e}"))?;
        }
        Ok(SupervisorState {
            args,
            restarts: HashMap::new(),
            stopping: false,
        })
    }

    async fn handle(
        &self,
        me: ActorRef<Self::Msg>,
        msg: Self::Msg,
        st: &mut SupervisorState,
    ) -> Result<(), ActorProcessingErr> {
        match msg {
            SupervisorMsg::Stopping => st.stopping = true,
            SupervisorMsg::Restart {
                name,
                count,
                backoff,
            } => {
                if st.stopping {
                    return Ok(());
                }
                let Some(spec) = st.args.registry.get(&name) else {
                    return Ok(());
                };
                match (spec.start)(me.get_cell()).await {
                    Ok(_) => {
                        let ev = Event::ActorRestarted(ActorRestarted {
                            actor: name.clone(),
                            restart_count: count,
                            backoff_ms: backoff.as_millis() as u64,
                        });
                        if let Err(e) = st.args.ledger.commit(vec![ev]).await {
                            tracing::error!(actor = %name, error = %e.detail, "recording a restart failed");
                        }
                        tracing::warn!(actor = %name, restart = count, "actor restarted");
                    }
                    Err(e) => {
                        // A child that cannot even start counts as failing again.
                        tracing::error!(actor = %name, error = %e, "restart failed");
                        self.on_child_failure(&me, st, name, format!("restart failed: {e}"))
                            .await?;
                    }
                }
            }
        }
        Ok(())
    }

    async fn handle_supervisor_evt(
        &self,
        me: ActorRef<Self::Msg>,
        evt: SupervisionEvent,
        st: &mut SupervisorState,
    ) -> Result<(), ActorProcessingErr> {
        // Overridden: ractor's default would stop the supervisor with the child.
        let (cell, error) = match evt {
            SupervisionEvent::ActorFailed(cell, err) => (cell, err.to_string()),
            SupervisionEvent::ActorTerminated(cell, _, reason) => {
                if st.stopping
                    || reason.as_deref() == Some("project deleted")
                    || reason.as_deref() == Some("shutdown")
                {
                    if let Some(n) = cell.get_name() {
                        st.args.registry.forget(&n);
                    }
                    return Ok(());
                }
                (
                    cell,
                    format!(
                        "stopped unexpectedly: {}",
                        reason.unwrap_or_else(|| "no reason".into())
                    ),
                )
            }
            _ => return Ok(()),
        };
        if st.stopping {
            return Ok(());
        }
        let Some(name) = cell.get_name() else {
            return Ok(());
        };
        self.on_child_failure(&me, st, name, error).await
    }
}

impl Supervisor {
    async fn on_child_failure(
        &self,
        me: &ActorRef<SupervisorMsg>,
        st: &mut SupervisorState,
        name: String,
        error: String,
    ) -> Result<(), ActorProcessingErr> {
        let now = Instant::now();
        let window = st.args.policy.window;
        let times = st.restarts.entry(name.clone()).or_default();
        while times
            .front()
            .is_some_and(|t| now.duration_since(*t) > window)
        {
            times.pop_front();
        }
        times.push_back(now);
        let count = times.len() as u32;
        tracing::error!(actor = %name, error = %error, restarts_in_window = count, "actor failed");
        let mut events = vec![Event::ActorFailed(ActorFailed {
            actor: name.clone(),
            error: error.clone(),
            restart_count: count,
        })];
        if count > st.args.policy.max_restarts {
            events.push(Event::SupervisorGaveUp(SupervisorGaveUp {
                actor: name.clone(),
                restarts: count - 1,
                window_ms: window.as_millis() as u64,
            }));
            let _ = st.args.ledger.commit(events).await;
            let reason =
                format!("actor {name} failed {count} times within {window:?}; giving up: {error}");
            st.stopping = true;
            let _ = st.args.gave_up.send(Some(reason.clone()));
            // Escalate: the supervisor fails, and the service exits non-zero.
            return Err(reason.into());
        }
        if let Err(e) = st.args.ledger.commit(events).await {
            tracing::error!(error = %e.detail, "recording an actor failure failed");
        }
        let backoff = st.args.policy.backoff(count);
        let me = me.clone();
        tokio::spawn(async move {
            tokio::time::sleep(backoff).await;
            let _ = me.send_message(SupervisorMsg::Restart {
                name,
                count,
                backoff,
            });
        });
        Ok(())
    }
}
