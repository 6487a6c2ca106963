//! A suggestion's parts, shared by `suggest` and `suggest_generation`: the job's config as
//! suggestions read it (its numbers by key) and a suggestion's constructor.

use serde_json::{Map, Value};
use tunewright_schemas::{Json, Suggestion};

/// The job's config, as the JSON object the caller gave.
pub(super) type Config = Map<String, Value>;

pub(super) fn num(c: Option<&Config>, key: &str) -> Option<f64> {
    c?.get(key)?.as_f64()
}

pub(super) fn int(c: Option<&Config>, key: &str) -> Option<u64> {
    c?.get(key)?.as_u64()
}

pub(super) fn s(action: &str, detail: String, changes: Value) -> Suggestion {
    Suggestion {
        action: action.into(),
        detail,
        config_changes: Json(changes),
    }
}

/// Bytes as GiB with two decimals, as descriptions and suggestions state them.
pub fn gib(bytes: f64) -> String {
    format!("{:.2} GiB", bytes / 1024f64.powi(3))
}
