//! Delivering an attempt's outcome to whichever scheduler instance is alive (found by name),
//! waiting out a restart: the executors' `OutcomeSink`.

use std::time::Duration;

use ractor::ActorRef;
use tunewright_schemas::JobId;

use super::SchedulerMsg;
use crate::executor::{Outcome, OutcomeSink};

/// How long an outcome waits for a live scheduler before it is left to start-up recovery:
/// a supervisor's restart backoff is seconds, so a minute covers several restarts.
const DELIVERY_TRIES: u32 = 600;
const DELIVERY_PAUSE: Duration = Duration::from_millis(100);

/// Outcomes go to the scheduler named `scheduler`.
pub struct SchedulerOutcomes {
    /// The scheduler's actor name.
    pub scheduler: String,
}

#[async_trait::async_trait]
impl OutcomeSink for SchedulerOutcomes {
    async fn deliver(&self, job_id: JobId, attempt: u32, outcome: Outcome) {
        for _ in 0..DELIVERY_TRIES {
            if let Some(cell) = ractor::registry::where_is(self.scheduler.clone()) {
                if cell.get_status() == ractor::ActorStatus::Running {
                    let sched: ActorRef<SchedulerMsg> = cell.into();
                    let (tx, rx) = ractor::concurrency::oneshot();
                    let msg = SchedulerMsg::AttemptFinished {
                        job_id,
                        attempt,
                        outcome: outcome.clone(),
                        ack: Some(tx.into()),
                    };
                    // Delivered only when acknowledged: a scheduler that crashes with the
                    // message in its mailbox loses it, and its restarted successor must get it
                    // again (a repeated report of a recorded outcome is ignored as stale).
                    if sched.send_message(msg).is_ok()
                        && matches!(
                            tokio::time::timeout(Duration::from_secs(10), rx).await,
                            Ok(Ok(()))
                        )
                    {
                        return;
                    }
                }
            }
            tokio::time::sleep(DELIVERY_PAUSE).await;
        }
        tracing::error!(job = %job_id, "no scheduler took an attempt's outcome within 60 s; the job will be recovered at restart");
    }
}
