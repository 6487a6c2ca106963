//! `GET /api/v1/hardware`: devices, memory, libtorch and CUDA versions. No GPU is a fact
//! answered 200 with `error_code: GPU_NOT_AVAILABLE` (seed 003 §3.6); a probe that fails is
//! `GPU_PROBE_FAILED`.
//!
//! The service process never initialises CUDA itself (the trainer's worker owns the device):
//! the probe runs in a short-lived `tunewright worker probe` child (argument vector, no shell)
//! that prints one JSON object. Results are cached briefly; one probe runs at a time.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use axum::extract::State;
use axum::Json;
use serde::Serialize;
use tokio::sync::Mutex;
use tunewright_schemas::{ctx, ErrorCode, Failure};
use utoipa::ToSchema;

use super::error::{ApiError, ApiResult, ErrorBody};
use super::state::AppState;

const CACHE_FOR: Duration = Duration::from_secs(30);
const PROBE_TIMEOUT: Duration = Duration::from_secs(90);

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct DeviceOut {
    pub index: u64,
    pub name: String,
    pub total_memory_bytes: Option<u64>,
    pub free_memory_bytes: Option<u64>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct HardwareOut {
    pub gpu_available: bool,
    /// `GPU_NOT_AVAILABLE` when no CUDA GPU was found (a fact, not a request error).
    pub error_code: Option<String>,
    pub detail: Option<String>,
    pub devices: Vec<DeviceOut>,
    pub libtorch_version: Option<String>,
    pub cuda_version: Option<String>,
    pub cudnn_version: Option<String>,
    pub cpu_threads: u64,
    /// The probe's own report, as printed.
    #[schema(value_type = Object)]
    pub probe: serde_json::Value,
}

/// Runs and caches the probe.
pub struct HardwareProbe {
    program: PathBuf,
    args: Vec<String>,
    cached: Mutex<Option<(Instant, HardwareOut)>>,
}

impl HardwareProbe {
    /// Probe with `program args..` (normally this binary with `worker probe`).
    pub fn new(program: PathBuf, args: Vec<String>) -> Self {
        HardwareProbe {
            program,
            args,
            cached: Mutex::new(None),
        }
    }

    /// `tunewright worker probe` of the running binary.
    pub fn of_this_binary() -> Self {
        let program = std::env::current_exe().unwrap_or_else(|_| PathBuf::from("tunewright"));
        HardwareProbe::new(program, vec!["worker".into(), "probe".into()])
    }

    pub async fn report(&self) -> Result<HardwareOut, Failure> {
        let mut cached = self.cached.lock().await;
        if let Some((at, out)) = cached.as_ref() {
            if at.elapsed() < CACHE_FOR {
                return Ok(out.clone());
            }
        }
        let out = self.run().await?;
        *cached = Some((Instant::now(), out.clone()));
        Ok(out)
    }

    async fn run(&self) -> Result<HardwareOut, Failure> {
        let failed =
            |reason: String| Failure::new(ErrorCode::GpuProbeFailed, ctx! {"reason" => reason});
        let child = tokio::process::Command::new(&self.program)
            .args(&self.args)
            .stdin(std::process::Stdio::null())
            .kill_on_drop(true)
            .output();
        let output = tokio::time::timeout(PROBE_TIMEOUT, child)
            .await
            .map_err(|_| {
                failed(format!(
                    "the probe did not finish within {} s",
                    PROBE_TIMEOUT.as_secs()
                ))
            })?
            .map_err(|e| failed(format!("the probe could not be started: {e}")))?;
        if !output.status.success() {
            let tail: String = String::from_utf8_lossy(&output.stderr)
                .lines()
                .rev()
                .take(3)
                .collect::<Vec<_>>()
                .join(" | ");
            tracing::info!(status = %output.status, stderr = %tail, "`worker probe` unavailable; probing in this process");
            return in_process().await;
        }
        let text = String::from_utf8_lossy(&output.stdout);
        let json = text
            .lines()
            .rev()
            .find_map(|l| {
                serde_json::from_str::<serde_json::Value>(l.trim())
                    .ok()
                    .filter(|v| v.is_object())
            })
            .or_else(|| {
                serde_json::from_str(&text)
                    .ok()
                    .filter(|v: &serde_json::Value| v.is_object())
            })
            .ok_or_else(|| failed("the probe printed no JSON object".into()))?;
        Ok(interpret(json))
    }
}

/// The trainer crate's probe, run on a blocking thread of this process (used when the worker
/// binary offers no `probe`).
async fn in_process() -> Result<HardwareOut, Failure> {
    let failed =
        |reason: String| Failure::new(ErrorCode::GpuProbeFailed, ctx! {"reason" => reason});
    let info = tokio::task::spawn_blocking(|| {
        std::panic::catch_unwind(tunewright_trainer::device::probe)
            .map_err(|_| "the probe panicked".to_string())
            .and_then(|info| serde_json::to_value(info).map_err(|e| e.to_string()))
    })
    .await
    .map_err(|e| failed(e.to_string()))?
    .map_err(failed)?;
    Ok(interpret(info))
}

fn str_of(v: &serde_json::Value, keys: &[&str]) -> Option<String> {
    keys.iter().find_map(|k| v.get(*k)).and_then(|x| match x {
        serde_json::Value::String(s) => Some(s.clone()),
        serde_json::Value::Number(n) => Some(n.to_string()),
        _ => None,
    })
}

fn u64_of(v: &serde_json::Value, keys: &[&str]) -> Option<u64> {
    keys.iter().find_map(|k| v.get(*k)).and_then(|x| x.as_u64())
}

/// Read the probe's report (field names tolerated in a few spellings).
pub fn interpret(json: serde_json::Value) -> HardwareOut {
    let devices: Vec<DeviceOut> = json
        .get("devices")
        .or_else(|| json.get("gpus"))
        .and_then(|d| d.as_array())
        .map(|a| {
            a.iter()
                .enumerate()
                .map(|(i, d)| DeviceOut {
                    index: u64_of(d, &["index", "ordinal"]).unwrap_or(i as u64),
                    name: str_of(d, &["name"]).unwrap_or_else(|| format!("cuda:{i}")),
                    total_memory_bytes: u64_of(d, &["total_memory_bytes", "memory_total_bytes"])
                        .or_else(|| u64_of(d, &["memory_total_mb"]).map(|m| m << 20)),
                    free_memory_bytes: u64_of(d, &["free_memory_bytes", "memory_free_bytes"])
                        .or_else(|| u64_of(d, &["memory_free_mb"]).map(|m| m << 20)),
                })
                .collect()
        })
        .unwrap_or_default();
    let flag = ["gpu_available", "cuda_available", "cuda"]
        .iter()
        .find_map(|k| json.get(*k).and_then(|v| v.as_bool()));
    let gpu_available = flag.unwrap_or(!devices.is_empty()) && !devices.is_empty();
    let (error_code, detail) = if gpu_available {
        (None, None)
    } else {
        let code = ErrorCode::GpuNotAvailable;
        (
            Some(code.as_str().to_string()),
            Some(code.render(&Default::default())),
        )
    };
    HardwareOut {
        gpu_available,
        error_code,
        detail,
        devices,
        libtorch_version: str_of(&json, &["libtorch_version", "torch_version"]),
        cuda_version: str_of(&json, &["cuda_version"]).or_else(|| {
            // libtorch reports the CUDA runtime as e.g. 12080 for 12.8.
            u64_of(&json, &["cuda_runtime_version"])
                .map(|n| format!("{}.{}", n / 1000, (n % 1000) / 10))
        }),
        cudnn_version: str_of(&json, &["cudnn_version"]),
        cpu_threads: std::thread::available_parallelism()
            .map(|n| n.get() as u64)
            .unwrap_or(1),
        probe: json,
    }
}

/// The machine's devices.
#[utoipa::path(get, path = "/api/v1/hardware", tag = "service",
    responses(
        (status = 200, description = "Devices and versions; `error_code` GPU_NOT_AVAILABLE when there is no CUDA GPU", body = HardwareOut),
        (status = 401, description = "UNAUTHORIZED", body = ErrorBody),
        (status = 500, description = "GPU_PROBE_FAILED", body = ErrorBody),
    ))]
pub async fn hardware(State(st): State<AppState>) -> ApiResult<Json<HardwareOut>> {
    st.hardware.report().await.map(Json).map_err(ApiError::from)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_devices_is_gpu_not_available() {
        let out = interpret(
            serde_json::json!({"cuda_available": false, "devices": [], "torch_version": "2.11.0"}),
        );
        assert!(!out.gpu_available);
        assert_eq!(out.error_code.as_deref(), Some("GPU_NOT_AVAILABLE"));
        assert_eq!(out.libtorch_version.as_deref(), Some("2.11.0"));
    }

    #[test]
    fn the_trainer_probe_shape_is_read() {
        let out = interpret(
            serde_json::json!({"cuda_available": true, "cudnn_available": true,
            "device_count": 1, "gpus": [{"index": 0, "name": "NVIDIA H100", "memory_total_mb": 81559, "memory_free_mb": 80000}],
            "libtorch_version": "2.11.0+cu130", "cuda_runtime_version": 13000, "cpu_threads": 16}),
        );
        assert!(out.gpu_available);
        assert_eq!(out.devices[0].total_memory_bytes, Some(81559 << 20));
        assert_eq!(out.cuda_version.as_deref(), Some("13.0"));
        assert_eq!(out.libtorch_version.as_deref(), Some("2.11.0+cu130"));
    }

    #[test]
    fn devices_are_read() {
        let out = interpret(
            serde_json::json!({"cuda_available": true, "cuda_version": "12.8",
            "devices": [{"index": 0, "name": "H100", "total_memory_bytes": 80u64 << 30}]}),
        );
        assert!(out.gpu_available);
        assert_eq!(out.error_code, None);
        assert_eq!(out.devices[0].total_memory_bytes, Some(80u64 << 30));
    }
}
