//! `GET /api/v1/events/stream`: committed events as server-sent events, `id:` = seq.
//!
//! A client resumes with `Last-Event-ID` (or `?after=`) and gets every later event once, in
//! order: the live subscription is taken first, the log is read from the cursor until caught
//! up, then live events follow, skipping seqs already sent. A gap in the live feed (a lagging
//! subscriber) sends the stream back to the log. Streams end when the service drains. A cursor
//! beyond the log's end (the client followed another log: a restored or salvaged one) is not
//! waited on in silence: the stream starts with an `event: reset` naming both seqs, whose `id:`
//! moves the client's cursor to the log's end, and goes on live from there.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::sync::Arc;

use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use futures::{Stream, StreamExt};
use serde::Deserialize;
use tokio::sync::{broadcast, watch};
use tunewright_events::{EventLog, StoredEvent, StreamId};
use utoipa::{IntoParams, ToSchema};

use super::error::{ApiError, ApiResult, ErrorBody};
use super::events::{event_out, parse_stream, read_page};
use super::rejection::ApiQuery;
use super::state::AppState;

const CATCH_UP_PAGE: usize = 512;

#[derive(Debug, Deserialize, ToSchema, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct StreamQuery {
    /// Start after this seq (default: now). `Last-Event-ID` takes precedence.
    pub after: Option<u64>,
    /// Only this stream: a project id, a job id or `service`.
    pub stream: Option<String>,
}

/// The per-connection feed: log catch-up, then live, deduplicated by seq.
pub struct Feed {
    log: EventLog,
    live: broadcast::Receiver<Arc<StoredEvent>>,
    cursor: u64,
    filter: Option<StreamId>,
    backlog: VecDeque<StoredEvent>,
    catching_up: bool,
    shutdown: watch::Receiver<bool>,
}

impl Feed {
    pub fn new(
        log: EventLog,
        after: u64,
        filter: Option<StreamId>,
        shutdown: watch::Receiver<bool>,
    ) -> Feed {
        // Subscribe before reading the log: nothing committed in between is missed.
        let live = log.subscribe();
        Feed {
            log,
            live,
            cursor: after,
            filter,
            backlog: VecDeque::new(),
            catching_up: true,
            shutdown,
        }
    }

    fn wanted(&self, e: &StoredEvent) -> bool {
        self.filter.is_none_or(|s| s == e.stream)
    }

    /// The next event for this client; `None` when the stream ends.
    pub async fn next_event(&mut self) -> Option<StoredEvent> {
        loop {
            if *self.shutdown.borrow() {
                return None;
            }
            if let Some(e) = self.backlog.pop_front() {
                if e.seq <= self.cursor {
                    continue;
                }
                self.cursor = e.seq;
                if self.wanted(&e) {
                    return Some(e);
                }
                continue;
            }
            if self.catching_up {
                match read_page(self.log.clone(), None, self.cursor, CATCH_UP_PAGE).await {
                    Ok(page) if page.is_empty() => self.catching_up = false,
                    Ok(page) => self.backlog.extend(page),
                    Err(e) => {
                        tracing::warn!(error = %e, "event stream: reading the log failed");
                        return None;
                    }
                }
                continue;
            }
            tokio::select! {
                _ = self.shutdown.changed() => return None,
                r = self.live.recv() => match r {
                    Ok(e) if e.seq <= self.cursor => continue,
                    Ok(e) if e.seq == self.cursor + 1 => {
                        self.cursor = e.seq;
                        if self.wanted(&e) {
                            return Some((*e).clone());
                        }
                    }
                    // A gap: the log has what the live feed skipped.
                    Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) => self.catching_up = true,
                    Err(broadcast::error::RecvError::Closed) => return None,
                },
            }
        }
    }
}

fn to_sse(e: &StoredEvent) -> SseEvent {
    let body = serde_json::to_string(&event_out(e)).unwrap_or_else(|_| "{}".into());
    SseEvent::default().id(e.seq.to_string()).data(body)
}

/// Live events as `text/event-stream`.
#[utoipa::path(get, path = "/api/v1/events/stream", tag = "events",
    params(StreamQuery, ("Last-Event-ID" = Option<String>, Header, description = "Resume after this seq")),
    responses(
        (status = 200, description = "Server-sent events; each `data:` is an event as `GET /api/v1/events` shows it, `id:` its seq", content_type = "text/event-stream", body = String),
        (status = 400, description = "VALIDATION_ERROR", body = ErrorBody),
        (status = 401, description = "UNAUTHORIZED", body = ErrorBody),
        (status = 503, description = "SERVICE_UNAVAILABLE", body = ErrorBody),
    ))]
pub async fn event_stream(
    State(st): State<AppState>,
    headers: HeaderMap,
    ApiQuery(q): ApiQuery<StreamQuery>,
) -> ApiResult<Sse<impl Stream<Item = Result<SseEvent, Infallible>>>> {
    let filter = parse_stream(q.stream.as_deref())?;
    let last_id = match headers.get("last-event-id") {
        Some(v) => Some(
            v.to_str()
                .ok()
                .and_then(|s| s.trim().parse::<u64>().ok())
                .ok_or_else(|| ApiError::validation("Last-Event-ID must be an event seq"))?,
        ),
        None => None,
    };
    let log = st.service()?.log().clone();
    let last_seq = log.last_seq();
    let asked = last_id.or(q.after).unwrap_or(last_seq);
    let reset = (asked > last_seq).then(|| reset_event(asked, last_seq));
    let feed = Feed::new(log, asked.min(last_seq), filter, st.shutdown_signal());
    let events = futures::stream::unfold(feed, |mut feed| async move {
        let e = feed.next_event().await?;
        Some((Ok(to_sse(&e)), feed))
    });
    let stream = futures::stream::iter(reset.map(Ok)).chain(events);
    Ok(Sse::new(stream).keep_alive(KeepAlive::default()))
}

/// The first event of a stream whose cursor is beyond the log's end.
fn reset_event(asked: u64, last_seq: u64) -> SseEvent {
    let body = serde_json::json!({
        "reason": "the cursor is beyond the end of this log (it was restored or salvaged, or the client followed another service); the stream continues from the log's end",
        "last_event_id": asked,
        "last_seq": last_seq,
    });
    SseEvent::default()
        .event("reset")
        .id(last_seq.to_string())
        .data(body.to_string())
}
