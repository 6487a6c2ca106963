//! The running service: wiring of the event log, the HTTP endpoint, signals and shutdown.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use axum::routing::get;
use axum::Router;
use tunewright_events::event::{ServiceStarted, ServiceStopped};
use tunewright_events::{Event, EventLog};

use crate::cli::serve::ServeArgs;

#[derive(Clone)]
struct AppState {
    ready: Arc<AtomicBool>,
}

pub async fn serve(args: ServeArgs) -> Result<(), String> {
    std::fs::create_dir_all(&args.data_dir)
        .map_err(|e| format!("cannot create data dir {}: {e}", args.data_dir.display()))?;
    let log = EventLog::open(&args.data_dir.join("events.redb")).map_err(|e| e.to_string())?;
    let recovered = log.last_seq();
    let ready = Arc::new(AtomicBool::new(false));
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .map_err(|e| format!("cannot listen on {}: {e}", args.listen))?;
    log.append(vec![Event::ServiceStarted(ServiceStarted {
        version: env!("CARGO_PKG_VERSION").into(),
        pid: std::process::id(),
        recovered_events: recovered,
    })])
    .await
    .map_err(|e| e.to_string())?;
    ready.store(true, Ordering::Release);
    eprintln!(
        "tunewright: listening on http://{} (data dir {})",
        args.listen,
        args.data_dir.display()
    );
    let app = Router::new()
        .route(
            "/health",
            get(|| async { axum::Json(serde_json::json!({"status": "ok"})) }),
        )
        .route("/ready", get(ready_handler))
        .with_state(AppState {
            ready: ready.clone(),
        });
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown_signal())
        .await
        .map_err(|e| format!("HTTP server failed: {e}"))?;
    ready.store(false, Ordering::Release);
    log.append(vec![Event::ServiceStopped(ServiceStopped {
        reason: "signal".into(),
    })])
    .await
    .map_err(|e| e.to_string())?;
    log.close().map_err(|e| e.to_string())
}

async fn ready_handler(
    axum::extract::State(s): axum::extract::State<AppState>,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    if s.ready.load(Ordering::Acquire) {
        axum::Json(serde_json::json!({"status": "ready"})).into_response()
    } else {
        (
            axum::http::StatusCode::SERVICE_UNAVAILABLE,
            axum::Json(serde_json::json!({
                "detail": "The service is not ready: recovering", "error_code": "SERVICE_UNAVAILABLE", "context": {}
            })),
        )
            .into_response()
    }
}

async fn shutdown_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let term = signal(SignalKind::terminate());
    let int = signal(SignalKind::interrupt());
    match (term, int) {
        (Ok(mut t), Ok(mut i)) => {
            tokio::select! { _ = t.recv() => {}, _ = i.recv() => {} }
        }
        _ => {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}
