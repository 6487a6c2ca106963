//! The JSON form of a stored event, as the HTTP API and `replay list --json` show it:
//! `{seq, ts, stream, type, data}`.

use super::StoredEvent;
use crate::timestamp::format_ts;

/// The event's payload as JSON (the `data` of its JSON form).
pub fn event_data(e: &StoredEvent) -> serde_json::Value {
    match serde_json::to_value(&e.event) {
        Ok(serde_json::Value::Object(mut m)) => m.remove("data").unwrap_or(serde_json::Value::Null),
        _ => serde_json::Value::Null,
    }
}

/// The whole JSON form of an event.
pub fn event_json(e: &StoredEvent) -> serde_json::Value {
    serde_json::json!({
        "seq": e.seq,
        "ts": format_ts(e.ts_ms),
        "stream": e.stream.to_string(),
        "type": e.event.type_name(),
        "data": event_data(e),
    })
}
