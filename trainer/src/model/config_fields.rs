//! Reading a Hugging Face `config.json`'s fields: the error a missing or ill-typed one gives,
//! shared by the config and the family spec that read it.

use serde_json::Value;

use crate::error::TrainerError;

/// A `config.json` that cannot be used (the caller adds the file's path).
pub(super) fn bad(reason: impl Into<String>) -> TrainerError {
    TrainerError::ModelLoad {
        path: Default::default(),
        reason: reason.into(),
    }
}

/// An integer field, if present.
pub(super) fn opt_i64(v: &Value, key: &str) -> Option<i64> {
    v.get(key).and_then(Value::as_i64)
}
