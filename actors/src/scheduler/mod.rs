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
        };
        let first = st
            .args
            .first_start
            .swap(false, std::sync::atomic::Ordering::AcqRel);
        recovery::recover(&me, &mut st, first).await?;
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
            SchedulerMsg::Wake => dispatch::dispatch(&me, st).await?,
            SchedulerMsg::AttemptFinished {
                job_id,
                attempt,
                outcome,
                ack,
            } => {
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
