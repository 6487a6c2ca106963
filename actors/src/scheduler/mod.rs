//! The scheduler: the one owner of what runs when. The job state machine of docs/jobs.md:
//! queued -> running -> success | failed | cancelled, with running -> retrying -> running for
//! retryable failures, the never-picked-up bound, cancellation in every state, and one training
//! at a time on the device with the others in its FIFO queue. The queue is a fold of the log,
//! so after a restart queued jobs are still queued and a job that was running is known to have
//! been interrupted.
//!
//! - `dispatch`: what starts when. - `outcome`: success, retry or failure of an attempt.
//! - `recovery`: the queue rebuilt at start. - `cancel`. - `queue_timeout`.
//! - `timers`: messages to itself later. - `delivery`: outcomes reaching a live scheduler.
//! - `state`: what the parts share.
//!
//! A log that cannot be written (a full disk; docs/storage.md) does not crash the scheduler:
//! nothing was recorded, so a restart would only fail the same way (a restart storm). The
//! message's work is left undone (a queued job stays queued, an outcome is delivered again by
//! its sink, an unfinished recovery is run again) and a `Wake` is scheduled to try again.

mod cancel;
mod delivery;
mod dispatch;
mod outcome;
mod queue_timeout;
mod recovery;
mod state;
mod timers;

use std::time::Duration;

use ractor::{Actor, ActorProcessingErr, ActorRef};
use rand::rngs::StdRng;
use rand::SeedableRng;

pub use delivery::SchedulerOutcomes;
pub use state::{
    RunningJob, RunningJobs, SchedulerArgs, SchedulerConfig, SchedulerMsg, SchedulerState,
};

use crate::executor::StopRequest;

pub struct Scheduler;

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
            due: Default::default(),
            armed: Default::default(),
            rng,
            shutting_down: false,
            recovery_pending: None,
            log_retry_armed: false,
        };
        let first = st
            .args
            .first_start
            .swap(false, std::sync::atomic::Ordering::AcqRel);
        if let Err(e) = recovery::recover(&me, &mut st, first).await {
            log_unwritable(&me, &mut st, e)?;
            st.recovery_pending = Some(first);
        }
        let _ = me.send_message(SchedulerMsg::Wake);
        Ok(st)
    }

    async fn handle(
        &self,
        me: ActorRef<Self::Msg>,
        msg: Self::Msg,
        st: &mut SchedulerState,
    ) -> Result<(), ActorProcessingErr> {
        match handle_msg(&me, msg, st).await {
            Ok(()) => Ok(()),
            Err(e) => log_unwritable(&me, st, e),
        }
    }
}

/// How long the scheduler waits before trying again after the log could not be written.
const LOG_RETRY: Duration = Duration::from_secs(2);

/// A failure to write the log: logged, and one `Wake` scheduled (not one per failure: outcomes
/// are redelivered often); any other error is returned.
fn log_unwritable(
    me: &ActorRef<SchedulerMsg>,
    st: &mut SchedulerState,
    e: ActorProcessingErr,
) -> Result<(), ActorProcessingErr> {
    let is_log = e
        .downcast_ref::<tunewright_schemas::Failure>()
        .is_some_and(|f| {
            matches!(
                f.error_code,
                tunewright_schemas::ErrorCode::StorageFull
                    | tunewright_schemas::ErrorCode::EventLogError
            )
        });
    if !is_log {
        return Err(e);
    }
    tracing::warn!(error = %e, retry_secs = LOG_RETRY.as_secs(), "the scheduler could not write the event log; trying again later");
    if !st.log_retry_armed {
        st.log_retry_armed = true;
        timers::schedule(me, LOG_RETRY, SchedulerMsg::Wake);
    }
    Ok(())
}

async fn handle_msg(
    me: &ActorRef<SchedulerMsg>,
    msg: SchedulerMsg,
    st: &mut SchedulerState,
) -> Result<(), ActorProcessingErr> {
    let me = me.clone();
    if matches!(msg, SchedulerMsg::Wake) {
        st.log_retry_armed = false;
    }
    if let Some(first) = st.recovery_pending {
        recovery::recover(&me, st, first).await?;
        st.recovery_pending = None;
    }
    {
        match msg {
            SchedulerMsg::Wake => dispatch::dispatch(&me, st).await?,
            SchedulerMsg::AttemptFinished {
                job_id,
                attempt,
                outcome,
                ack,
            } => {
                // Acknowledged only once recorded: if the log cannot be written, the ack is
                // dropped and the sink delivers the outcome again.
                outcome::finished(&me, st, job_id, attempt, outcome).await?;
                if let Some(ack) = ack {
                    let _ = ack.send(());
                }
                dispatch::dispatch(&me, st).await?;
            }
            SchedulerMsg::RetryDue(job_id) => {
                st.due.insert(job_id);
                dispatch::dispatch(&me, st).await?;
            }
            SchedulerMsg::QueueTimeout(job_id) => {
                queue_timeout::queue_timeout(&me, st, job_id).await?
            }
            SchedulerMsg::Cancel(job_id, reply) => {
                let r = cancel::cancel(st, job_id).await;
                let _ = reply.send(r);
                dispatch::dispatch(&me, st).await?;
            }
            SchedulerMsg::Shutdown(reply) => shutdown(st, reply),
            SchedulerMsg::Crash(text) => panic!("{text}"),
        }
        Ok(())
    }
}

/// Stop starting jobs, ask running attempts to checkpoint and stop, answer when they have (or
/// the grace period is over).
fn shutdown(st: &mut SchedulerState, reply: ractor::RpcReplyPort<()>) {
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
