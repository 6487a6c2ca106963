//! The scheduler's clocks: messages sent to itself later (a retry that is due, a job's
//! never-picked-up bound) and the wall clock events record. Timers are tokio sleeps, so tests
//! with a paused clock drive them.

use std::time::Duration;

use ractor::ActorRef;

use super::SchedulerMsg;

/// Send `msg` to the scheduler after `after`.
pub fn schedule(me: &ActorRef<SchedulerMsg>, after: Duration, msg: SchedulerMsg) {
    let me = me.clone();
    tokio::spawn(async move {
        tokio::time::sleep(after).await;
        let _ = me.send_message(msg);
    });
}

/// Milliseconds since the Unix epoch.
pub fn wall_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}
