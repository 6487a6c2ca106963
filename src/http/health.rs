//! `GET /health` (the process answers) and `GET /ready` (recovered, actors up, the event log
//! writable, not draining; else 503 `SERVICE_UNAVAILABLE` with the reason: a full disk is
//! named with its free space, docs/storage.md).

use axum::extract::State;
use axum::Json;
use serde::Serialize;
use utoipa::ToSchema;

use super::error::{ApiResult, ErrorBody};
use super::state::{unavailable, AppState};

#[derive(Debug, Serialize, ToSchema)]
pub struct HealthOut {
    /// `ok`.
    pub status: String,
    pub version: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ReadyOut {
    /// `ready`.
    pub status: String,
    /// Seq of the last committed event.
    pub last_seq: u64,
}

/// Liveness.
#[utoipa::path(get, path = "/health", tag = "service",
    responses((status = 200, description = "The process answers", body = HealthOut)))]
pub async fn health() -> Json<HealthOut> {
    Json(HealthOut {
        status: "ok".into(),
        version: env!("CARGO_PKG_VERSION").into(),
    })
}

/// Readiness.
#[utoipa::path(get, path = "/ready", tag = "service",
    responses(
        (status = 200, description = "Ready", body = ReadyOut),
        (status = 503, description = "SERVICE_UNAVAILABLE: recovering, stopping, or the event log cannot be written (e.g. a full disk)", body = ErrorBody),
    ))]
pub async fn ready(State(st): State<AppState>) -> ApiResult<Json<ReadyOut>> {
    if st.is_draining() {
        return Err(unavailable("shutting down"));
    }
    let service = st.service()?;
    if !service.is_ready() {
        return Err(unavailable("the actors are not up"));
    }
    if let Err(reason) = service.log().writable() {
        return Err(unavailable(&format!(
            "the event log cannot be written (reads still work): {reason}"
        )));
    }
    Ok(Json(ReadyOut {
        status: "ready".into(),
        last_seq: service.log().last_seq(),
    }))
}
