//! The running service: logging, metrics, the HTTP endpoint, the actors, systemd
//! notification, signals and the shutdown sequence.
//!
//! Start: logging and metrics; refuse a non-loopback address without a token; bind (so
//! `/health` answers and `/ready` says 503 during recovery); recover the log and start the
//! actors; sweep upload leftovers; then `READY=1` and the watchdog.
//! Stop (SIGTERM/SIGINT): `STOPPING=1`; refuse work (503) and end live streams; let the HTTP
//! requests in flight finish (bounded); ask the actors to checkpoint and stop, record the
//! stop, flush and close the log; exit 0. A supervisor that gives up exits non-zero.

pub mod args;
pub mod executors;
pub mod logging;
pub mod notify;
pub mod signals;
pub mod sweep;

use std::net::SocketAddr;
use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

use tunewright_actors::hardware::ProbeCommand;
use tunewright_actors::{Service, ServiceConfig};

use crate::http::{AppState, HttpConfig};
use args::ServeArgs;

/// Exit code when the configuration is refused before starting.
const EXIT_CONFIG: u8 = 2;
/// Exit code when the service fails or its supervisor gives up.
const EXIT_FAILED: u8 = 1;

/// The token for `/api` routes: `--token-file`, else `TUNEWRIGHT_TOKEN`.
fn resolve_token(file: Option<&Path>) -> Result<Option<String>, String> {
    if let Some(path) = file {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read the token file {}: {e}", path.display()))?;
        let token = text.trim().to_string();
        if token.is_empty() {
            return Err(format!("the token file {} is empty", path.display()));
        }
        return Ok(Some(token));
    }
    Ok(std::env::var("TUNEWRIGHT_TOKEN")
        .ok()
        .map(|t| t.trim().to_string())
        .filter(|t| !t.is_empty()))
}

/// Refuse a non-loopback address without a token.
pub fn check_exposure(listen: SocketAddr, token: Option<&str>) -> Result<(), String> {
    if !listen.ip().is_loopback() && token.is_none() {
        return Err(format!(
            "UNAUTHORIZED: refusing to listen on {listen} without a bearer token: set --token-file or TUNEWRIGHT_TOKEN, or listen on 127.0.0.1"
        ));
    }
    Ok(())
}

pub async fn serve(args: ServeArgs) -> ExitCode {
    let token = match resolve_token(args.token_file.as_deref())
        .and_then(|t| check_exposure(args.listen, t.as_deref()).map(|_| t))
    {
        Ok(t) => t,
        Err(e) => {
            eprintln!("tunewright serve: {e}");
            return ExitCode::from(EXIT_CONFIG);
        }
    };
    if let Err(e) = std::fs::create_dir_all(&args.data_dir) {
        eprintln!(
            "tunewright serve: cannot create the data dir {}: {e}",
            args.data_dir.display()
        );
        return ExitCode::from(EXIT_CONFIG);
    }
    let log_dir = args
        .log_dir
        .clone()
        .unwrap_or_else(|| args.data_dir.join("logs"));
    let _log_guard = match logging::init(&log_dir) {
        Ok(g) => Some(g),
        Err(e) => {
            eprintln!("tunewright serve: {e} (logging to the console only)");
            None
        }
    };
    let metrics = crate::http::metrics::install();
    match run(args, token, metrics).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = %e, "tunewright serve failed");
            eprintln!("tunewright serve: {e}");
            ExitCode::from(EXIT_FAILED)
        }
    }
}

async fn run(
    args: ServeArgs,
    token: Option<String>,
    metrics: Option<metrics_exporter_prometheus::PrometheusHandle>,
) -> Result<(), String> {
    let mut http = HttpConfig::new(args.data_dir.clone());
    http.max_file_bytes = ServeArgs::mb(args.max_file_mb);
    http.max_dataset_bytes = ServeArgs::mb(args.max_dataset_mb);
    http.max_json_bytes = args.max_json_kb * 1024;
    http.launcher = args.placement().describe();
    http.request_timeout = Duration::from_secs(args.request_timeout_secs.max(1));
    http.upload_timeout = Duration::from_secs(args.upload_timeout_secs.max(1));
    http.token = token;
    let state = AppState::new(http, metrics);

    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .map_err(|e| format!("cannot listen on {}: {e}", args.listen))?;
    let addr = listener
        .local_addr()
        .map_err(|e| format!("cannot read the bound address: {e}"))?;
    // Parsed by tests and scripts: keep the wording.
    println!("tunewright listening on http://{addr}");
    tracing::info!(%addr, data_dir = %args.data_dir.display(), "listening; recovering the event log");
    notify::status("recovering the event log");

    let (stop_http, http_stopped) = tokio::sync::oneshot::channel::<()>();
    let app = crate::http::router(state.clone());
    let limits = crate::http::listener::ConnectionLimits {
        max_connections: args.max_connections.max(1),
        header_read_timeout: Duration::from_secs(args.header_read_timeout_secs.max(1)),
        idle_timeout: Duration::from_secs(args.idle_timeout_secs.max(1)),
    };
    let server = tokio::spawn(async move {
        crate::http::listener::serve(listener, app, limits, async move {
            let _ = http_stopped.await;
        })
        .await;
        Ok::<(), std::io::Error>(())
    });

    let mut config = ServiceConfig::new(&args.data_dir);
    config.probe = Some(ProbeCommand::of_worker(args.worker_binary()));
    config.limits.max_total_file_bytes = ServeArgs::mb(args.max_project_files_mb);
    let service = match Service::start(config, executors::build(&args)).await {
        Ok(s) => s,
        Err(f) => {
            let _ = stop_http.send(());
            let _ = tokio::time::timeout(Duration::from_secs(5), server).await;
            return Err(format!(
                "the service did not start: {f} {:?}",
                f.cause_chain
            ));
        }
    };
    let (parts, orphans) = service.read(|s| sweep::sweep_uploads(&args.data_dir, s));
    if parts + orphans > 0 {
        tracing::info!(parts, orphans, "removed upload leftovers of an earlier run");
    }
    let temp_dirs = sweep::sweep_temp_dirs(&args.data_dir);
    if temp_dirs > 0 {
        tracing::info!(
            temp_dirs,
            "removed checkpoint and export temp dirs of an earlier run"
        );
    }
    state.set_service(service.clone());
    let last_seq = service.log().last_seq();
    tracing::info!(last_seq, "ready");
    notify::ready(&format!("ready: {} events, listening on {addr}", last_seq));
    let watchdog = {
        let st = state.clone();
        notify::spawn_watchdog(move || st.service_if_started().is_some())
    };

    let reopen_bound = Duration::from_secs(args.log_reopen_timeout_secs.max(1));
    let outcome = tokio::select! {
        sig = signals::stop_requested() => Ok(sig),
        reason = service.escalated() => Err(format!("supervisor gave up: {reason}")),
        r = log_lost(service.log().clone(), reopen_bound) => Err(r),
        r = async { server_finished_early().await } => Err(r),
    };
    let reason = match &outcome {
        Ok(sig) => format!("signal {sig}"),
        Err(r) => r.clone(),
    };
    tracing::info!(%reason, "stopping");
    notify::stopping(&format!("stopping: {reason}"));
    state.start_draining();
    tokio::time::sleep(Duration::from_secs(args.drain_secs)).await;
    let _ = stop_http.send(());
    let bound = Duration::from_secs(args.stop_timeout_secs.max(2));
    let http_grace = bound / 3;
    match tokio::time::timeout(http_grace, server).await {
        Ok(Ok(Ok(()))) => {}
        Ok(Ok(Err(e))) => tracing::warn!(error = %e, "the HTTP server ended with an error"),
        Ok(Err(e)) => tracing::warn!(error = %e, "the HTTP server task failed"),
        Err(_) => tracing::warn!(
            secs = http_grace.as_secs(),
            "requests still in flight after the grace period"
        ),
    }
    let stopped = tokio::time::timeout(bound - http_grace, service.shutdown(&reason)).await;
    if let Some(w) = watchdog {
        w.abort();
    }
    match stopped {
        Ok(Ok(())) => tracing::info!("stopped cleanly"),
        Ok(Err(f)) => {
            return Err(match &outcome {
                Err(why) => format!("{why}; then stopping failed: {f}"),
                Ok(_) => format!("stopping failed: {f}"),
            })
        }
        Err(_) => return Err("the actors did not stop within the bound".into()),
    }
    outcome.map(|_| ())
}

/// Resolves when the event log has failed to reopen for longer than `bound` after a failed
/// append: the service cannot recover by itself, so it exits non-zero for systemd (once, not a
/// restart storm: a restart either finds the log usable or refuses it; docs/storage.md).
async fn log_lost(log: tunewright_events::EventLog, bound: Duration) -> String {
    loop {
        tokio::time::sleep(Duration::from_secs(1).min(bound)).await;
        if let Some(since) = log.reopen_failing_since() {
            if since.elapsed() >= bound {
                let why = log.writable().err().unwrap_or_default();
                return format!(
                    "the event log could not be reopened for {} s: {why}",
                    bound.as_secs()
                );
            }
        }
    }
}

/// The HTTP server only ends when told to; this never resolves (kept for the select's shape).
async fn server_finished_early() -> String {
    std::future::pending::<String>().await
}
