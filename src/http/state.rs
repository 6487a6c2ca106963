//! What every handler shares: the limits, the service once recovery is done, the draining
//! flag set on SIGTERM, the shutdown signal that ends live streams, the metrics handle and the
//! studio's sign-in sessions.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use metrics_exporter_prometheus::PrometheusHandle;
use tokio::sync::watch;
use tunewright_actors::Service;
use tunewright_schemas::{ctx, ErrorCode};

use super::error::ApiError;
use super::session::SessionStore;

/// Limits and settings of the HTTP endpoint.
#[derive(Debug, Clone)]
pub struct HttpConfig {
    pub data_dir: PathBuf,
    /// Largest document upload, in bytes (`FILE_TOO_LARGE` beyond).
    pub max_file_bytes: u64,
    /// Largest dataset upload, in bytes.
    pub max_dataset_bytes: u64,
    /// Largest JSON request body, in bytes (`REQUEST_TOO_LARGE` beyond).
    pub max_json_bytes: u64,
    /// Time a request may take to be answered (`REQUEST_TIMEOUT` beyond).
    pub request_timeout: Duration,
    /// The same for uploads.
    pub upload_timeout: Duration,
    /// Bearer token required on `/api` routes, when set.
    pub token: Option<String>,
    /// Where workers run, as `/api/v1/hardware` shows it.
    pub launcher: serde_json::Value,
}

impl HttpConfig {
    pub fn new(data_dir: PathBuf) -> Self {
        HttpConfig {
            data_dir,
            max_file_bytes: 50 * 1024 * 1024,
            max_dataset_bytes: 200 * 1024 * 1024,
            max_json_bytes: 1024 * 1024,
            request_timeout: Duration::from_secs(30),
            upload_timeout: Duration::from_secs(600),
            token: None,
            launcher: serde_json::json!({"kind": "local"}),
        }
    }
}

pub struct Shared {
    pub config: HttpConfig,
    service: OnceLock<Service>,
    draining: AtomicBool,
    shutdown: watch::Sender<bool>,
    pub metrics: Option<PrometheusHandle>,
    /// Studio sign-in sessions (used where `config.token` is set).
    pub sessions: SessionStore,
}

/// Cheap to clone.
#[derive(Clone)]
pub struct AppState(pub Arc<Shared>);

impl std::ops::Deref for AppState {
    type Target = Shared;
    fn deref(&self) -> &Shared {
        &self.0
    }
}

impl AppState {
    pub fn new(config: HttpConfig, metrics: Option<PrometheusHandle>) -> Self {
        let (shutdown, _) = watch::channel(false);
        AppState(Arc::new(Shared {
            config,
            service: OnceLock::new(),
            draining: AtomicBool::new(false),
            shutdown,
            metrics,
            sessions: SessionStore::default(),
        }))
    }

    /// Recovery is done: the API starts answering.
    pub fn set_service(&self, service: Service) {
        let _ = self.0.service.set(service);
    }

    /// The running service, or `SERVICE_UNAVAILABLE` while recovering or stopping.
    pub fn service(&self) -> Result<&Service, ApiError> {
        match self.0.service.get() {
            Some(s) => Ok(s),
            None => Err(unavailable("recovering the event log")),
        }
    }

    pub fn service_if_started(&self) -> Option<&Service> {
        self.0.service.get()
    }

    pub fn is_ready(&self) -> bool {
        !self.is_draining() && self.0.service.get().is_some_and(|s| s.is_ready())
    }

    /// Stop taking work: mutations answer 503 from now on, live streams end.
    pub fn start_draining(&self) {
        self.0.draining.store(true, Ordering::Release);
        let _ = self.0.shutdown.send(true);
    }

    pub fn is_draining(&self) -> bool {
        self.0.draining.load(Ordering::Acquire)
    }

    /// Resolves when draining starts.
    pub fn shutdown_signal(&self) -> watch::Receiver<bool> {
        self.0.shutdown.subscribe()
    }
}

pub fn unavailable(reason: &str) -> ApiError {
    ApiError::new(ErrorCode::ServiceUnavailable, ctx! {"reason" => reason})
}
