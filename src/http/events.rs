//! `GET /api/v1/events`: the log as pages (`after`, `stream`, `limit`), each event as
//! `{seq, ts, stream, type, data}` (the shape `replay list --json` prints).

use axum::extract::State;
use axum::Json;
use serde::Deserialize;
use tunewright_events::event::event_data;
use tunewright_events::timestamp::format_ts;
use tunewright_events::{EventLog, StoredEvent, StreamId};
use utoipa::{IntoParams, ToSchema};

use super::dto::{page_limit, EventOut, EventPage};
use super::error::{ApiError, ApiResult, ErrorBody};
use super::rejection::ApiQuery;
use super::state::AppState;

#[derive(Debug, Deserialize, ToSchema, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct EventQuery {
    /// Only events with a greater seq (default 0: from the start).
    pub after: Option<u64>,
    /// Only this stream: a project id, a job id or `service`.
    pub stream: Option<String>,
    /// At most this many, 1 to 1000 (default 100).
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<u32>,
}

pub fn event_out(e: &StoredEvent) -> EventOut {
    EventOut {
        seq: e.seq,
        ts: format_ts(e.ts_ms),
        stream: e.stream.to_string(),
        event_type: e.event.type_name().to_string(),
        data: event_data(e),
    }
}

pub fn parse_stream(s: Option<&str>) -> Result<Option<StreamId>, ApiError> {
    s.map(|s| s.parse::<StreamId>().map_err(ApiError::validation))
        .transpose()
}

/// Read a page of the log off the async runtime.
pub async fn read_page(
    log: EventLog,
    stream: Option<StreamId>,
    after: u64,
    limit: usize,
) -> Result<Vec<StoredEvent>, ApiError> {
    let read = tokio::task::spawn_blocking(move || match stream {
        Some(s) => log.read_stream(s, after, limit),
        None => log.read_after(after, limit),
    })
    .await
    .map_err(ApiError::internal)?;
    read.map_err(|e| ApiError(tunewright_actors::ledger::log_failure(e)))
}

/// Events in log order.
#[utoipa::path(get, path = "/api/v1/events", tag = "events",
    params(EventQuery),
    responses(
        (status = 200, description = "A page of events", body = EventPage),
        (status = 400, description = "VALIDATION_ERROR", body = ErrorBody),
        (status = 401, description = "UNAUTHORIZED", body = ErrorBody),
        (status = 503, description = "SERVICE_UNAVAILABLE", body = ErrorBody),
    ))]
pub async fn list_events(
    State(st): State<AppState>,
    ApiQuery(q): ApiQuery<EventQuery>,
) -> ApiResult<Json<EventPage>> {
    let limit = page_limit(q.limit)?;
    let stream = parse_stream(q.stream.as_deref())?;
    let log = st.service()?.log().clone();
    let page = read_page(log, stream, q.after.unwrap_or(0), limit).await?;
    let next = (page.len() == limit)
        .then(|| page.last().map(|e| e.seq))
        .flatten();
    Ok(Json(EventPage {
        items: page.iter().map(event_out).collect(),
        next,
    }))
}
