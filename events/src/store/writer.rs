//! The single writer: one OS thread that group-commits appends.
//!
//! Appenders send their encoded events on a channel. The writer blocks for one request, then
//! takes every request already waiting (up to `MAX_BATCH_EVENTS`), writes them all in one redb
//! transaction, commits durably (fsync), runs the commit observer, publishes to subscribers and
//! only then answers each appender with its stored events. A failed commit answers every
//! appender of the batch with the error and assigns no sequence numbers.

use std::sync::mpsc::{Receiver, TryRecvError};
use std::sync::{Arc, RwLock};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use redb::Database;
use tokio::sync::broadcast;

use super::record::{self, Encoded};
use super::tables::{BY_STREAM, EVENTS};
use super::{CommitObserver, LogError};
use crate::event::StoredEvent;

pub enum Reply {
    Async(tokio::sync::oneshot::Sender<Result<Vec<StoredEvent>, LogError>>),
    Blocking(std::sync::mpsc::Sender<Result<Vec<StoredEvent>, LogError>>),
}

impl Reply {
    fn send(self, r: Result<Vec<StoredEvent>, LogError>) {
        // An appender that stopped waiting is not an error of the log.
        match self {
            Reply::Async(tx) => {
                let _ = tx.send(r);
            }
            Reply::Blocking(tx) => {
                let _ = tx.send(r);
            }
        }
    }
}

pub struct Request {
    pub events: Vec<Encoded>,
    pub reply: Reply,
    pub queued_at: Instant,
}

pub struct Writer {
    pub db: Arc<Database>,
    /// Most events one transaction takes (1 = one transaction per append: no group commit).
    pub max_batch_events: usize,
    pub next_seq: u64,
    pub observer: Arc<RwLock<Option<CommitObserver>>>,
    pub live: broadcast::Sender<Arc<StoredEvent>>,
    pub last_seq: Arc<std::sync::atomic::AtomicU64>,
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

impl Writer {
    pub fn run(mut self, rx: Receiver<Request>) {
        let mut buf = Vec::new();
        while let Ok(first) = rx.recv() {
            let mut batch = vec![first];
            let mut count = batch[0].events.len();
            while count < self.max_batch_events {
                match rx.try_recv() {
                    Ok(r) => {
                        count += r.events.len();
                        batch.push(r);
                    }
                    Err(TryRecvError::Empty) | Err(TryRecvError::Disconnected) => break,
                }
            }
            self.commit(batch, &mut buf);
        }
    }

    fn commit(&mut self, batch: Vec<Request>, buf: &mut Vec<u8>) {
        let ts_ms = now_ms();
        let start_seq = self.next_seq;
        match self.write(&batch, ts_ms, buf) {
            Ok(()) => {}
            Err(e) => {
                let msg = e.to_string();
                tracing::error!(error = %msg, "event log commit failed");
                for r in batch {
                    r.reply.send(Err(LogError::Storage(msg.clone())));
                }
                return;
            }
        }
        let mut seq = start_seq;
        let mut answers = Vec::with_capacity(batch.len());
        let mut all = Vec::with_capacity(batch.iter().map(|r| r.events.len()).sum());
        for r in batch {
            let mut stored = Vec::with_capacity(r.events.len());
            for e in r.events {
                stored.push(StoredEvent {
                    seq,
                    ts_ms,
                    stream: e.event.stream(),
                    event: e.event,
                });
                seq += 1;
            }
            all.extend(stored.iter().cloned());
            answers.push((r.reply, stored, r.queued_at));
        }
        self.next_seq = seq;
        self.last_seq
            .store(seq - 1, std::sync::atomic::Ordering::Release);
        metrics::histogram!("tunewright_group_commit_batch_size").record(all.len() as f64);
        metrics::counter!("tunewright_events_appended_total").increment(all.len() as u64);
        if let Ok(guard) = self.observer.read() {
            if let Some(observe) = guard.as_ref() {
                observe(&all);
            }
        }
        for e in all {
            let _ = self.live.send(Arc::new(e));
        }
        for (reply, stored, queued_at) in answers {
            metrics::histogram!("tunewright_event_append_seconds")
                .record(queued_at.elapsed().as_secs_f64());
            reply.send(Ok(stored));
        }
    }

    fn write(&self, batch: &[Request], ts_ms: i64, buf: &mut Vec<u8>) -> Result<(), LogError> {
        let txn = self.db.begin_write()?;
        {
            let mut events = txn.open_table(EVENTS)?;
            let mut index = txn.open_table(BY_STREAM)?;
            let mut seq = self.next_seq;
            for r in batch {
                for e in &r.events {
                    record::frame(e, ts_ms, buf);
                    events.insert(seq, buf.as_slice())?;
                    index.insert((e.stream.as_slice(), seq), ())?;
                    seq += 1;
                }
            }
        }
        txn.commit()?;
        Ok(())
    }
}
