//! SIGTERM and SIGINT: the request to stop.

use tokio::signal::unix::{signal, SignalKind};

/// Resolves with the signal's name when SIGTERM or SIGINT arrives.
pub async fn stop_requested() -> &'static str {
    let term = signal(SignalKind::terminate());
    let int = signal(SignalKind::interrupt());
    match (term, int) {
        (Ok(mut t), Ok(mut i)) => tokio::select! {
            _ = t.recv() => "SIGTERM",
            _ = i.recv() => "SIGINT",
        },
        _ => {
            let _ = tokio::signal::ctrl_c().await;
            "SIGINT"
        }
    }
}
