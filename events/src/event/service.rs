//! Events of the service itself: start, stop, actor failures, restarts and escalation.

use serde::Serialize;

#[derive(Debug, Clone, PartialEq, Serialize, bincode::Encode, bincode::Decode)]
pub struct ServiceStarted {
    pub version: String,
    pub pid: u32,
    /// Events replayed at start-up before this one.
    pub recovered_events: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, bincode::Encode, bincode::Decode)]
pub struct ServiceStopped {
    pub reason: String,
}

/// A supervised actor failed (panicked or returned an error).
#[derive(Debug, Clone, PartialEq, Serialize, bincode::Encode, bincode::Decode)]
pub struct ActorFailed {
    pub actor: String,
    pub error: String,
    /// Restarts of this actor within the current window, this failure included.
    pub restart_count: u32,
}

#[derive(Debug, Clone, PartialEq, Serialize, bincode::Encode, bincode::Decode)]
pub struct ActorRestarted {
    pub actor: String,
    pub restart_count: u32,
    pub backoff_ms: u64,
}

/// Too many restarts in the window: the supervisor escalates and the service exits non-zero.
#[derive(Debug, Clone, PartialEq, Serialize, bincode::Encode, bincode::Decode)]
pub struct SupervisorGaveUp {
    pub actor: String,
    pub restarts: u32,
    pub window_ms: u64,
}

impl ServiceStarted {
    pub const NAME: &'static str = "service_started";
}
impl ServiceStopped {
    pub const NAME: &'static str = "service_stopped";
}
impl ActorFailed {
    pub const NAME: &'static str = "actor_failed";
}
impl ActorRestarted {
    pub const NAME: &'static str = "actor_restarted";
}
impl SupervisorGaveUp {
    pub const NAME: &'static str = "supervisor_gave_up";
}
