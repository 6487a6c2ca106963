//! The hardware probe: which devices this machine has, asked of a short-lived child process
//! (`tunewright-worker probe`, argument vector, no shell) so the service never initialises CUDA
//! itself. The report is cached briefly and one probe runs at a time; admission reads it to
//! refuse `device: "cuda"` where there is no GPU, `GET /api/v1/hardware` shows it.
//!
//! No GPU is a fact (`GPU_NOT_AVAILABLE`, see docs/errors.md), not a failure; a probe that
//! cannot run is `GPU_PROBE_FAILED`.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use tokio::sync::Mutex;
use tunewright_schemas::{ctx, ErrorCode, Failure};

/// How long a report stays fresh: devices rarely change, and a probe costs a process start.
const CACHE_FOR: Duration = Duration::from_secs(30);
/// Bound on one probe (loading the CUDA libraries can take several seconds).
const PROBE_TIMEOUT: Duration = Duration::from_secs(90);

/// The command that prints the hardware report as one JSON object.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProbeCommand {
    pub program: PathBuf,
    pub args: Vec<String>,
}

impl ProbeCommand {
    /// `tunewright-worker probe` of the worker binary `program`.
    pub fn of_worker(program: PathBuf) -> Self {
        ProbeCommand {
            program,
            args: vec!["probe".into()],
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DeviceReport {
    pub index: u64,
    pub name: String,
    pub total_memory_bytes: Option<u64>,
    pub free_memory_bytes: Option<u64>,
}

/// What the probe found.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HardwareReport {
    pub gpu_available: bool,
    pub devices: Vec<DeviceReport>,
    pub libtorch_version: Option<String>,
    pub cuda_version: Option<String>,
    pub cudnn_version: Option<String>,
    pub cpu_threads: u64,
    /// The probe's own report, as printed.
    pub probe: serde_json::Value,
}

/// Runs and caches the probe. Cheap to clone.
#[derive(Clone)]
pub struct HardwareProbe {
    command: Option<ProbeCommand>,
    cached: Arc<Mutex<Option<(Instant, HardwareReport)>>>,
}

impl HardwareProbe {
    /// A probe running `command`; `None` when this service has no way to probe (then nothing
    /// is known about the devices).
    pub fn new(command: Option<ProbeCommand>) -> Self {
        HardwareProbe {
            command,
            cached: Arc::new(Mutex::new(None)),
        }
    }

    /// The report, probing when the cached one is stale.
    pub async fn report(&self) -> Result<HardwareReport, Failure> {
        let Some(command) = &self.command else {
            return Err(failed(
                "this service has no hardware probe configured".into(),
            ));
        };
        let mut cached = self.cached.lock().await;
        if let Some((at, report)) = cached.as_ref() {
            if at.elapsed() < CACHE_FOR {
                return Ok(report.clone());
            }
        }
        let report = run(command).await?;
        *cached = Some((Instant::now(), report.clone()));
        Ok(report)
    }

    /// Whether a CUDA GPU is known to be present: `None` when it cannot be known (no probe, or
    /// the probe failed), so a caller decides what an unknown means.
    pub async fn gpu_available(&self) -> Option<bool> {
        self.report().await.ok().map(|r| r.gpu_available)
    }
}

fn failed(reason: String) -> Failure {
    Failure::new(ErrorCode::GpuProbeFailed, ctx! {"reason" => reason})
}

async fn run(command: &ProbeCommand) -> Result<HardwareReport, Failure> {
    let child = tokio::process::Command::new(&command.program)
        .args(&command.args)
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
        return Err(failed(format!(
            "the probe {}: {tail}",
            crate::trainer::process::describe(output.status)
        )));
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
        .ok_or_else(|| failed("the probe printed no JSON object".into()))?;
    Ok(interpret(json))
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

fn device(i: usize, d: &serde_json::Value) -> DeviceReport {
    DeviceReport {
        index: u64_of(d, &["index", "ordinal"]).unwrap_or(i as u64),
        name: str_of(d, &["name"]).unwrap_or_else(|| format!("cuda:{i}")),
        total_memory_bytes: u64_of(d, &["total_memory_bytes", "memory_total_bytes"])
            .or_else(|| u64_of(d, &["memory_total_mb"]).map(|m| m << 20)),
        free_memory_bytes: u64_of(d, &["free_memory_bytes", "memory_free_bytes"])
            .or_else(|| u64_of(d, &["memory_free_mb"]).map(|m| m << 20)),
    }
}

/// Read the probe's report (field names tolerated in a few spellings).
pub fn interpret(json: serde_json::Value) -> HardwareReport {
    let devices: Vec<DeviceReport> = json
        .get("devices")
        .or_else(|| json.get("gpus"))
        .and_then(|d| d.as_array())
        .map(|a| a.iter().enumerate().map(|(i, d)| device(i, d)).collect())
        .unwrap_or_default();
    let flag = ["gpu_available", "cuda_available", "cuda"]
        .iter()
        .find_map(|k| json.get(*k).and_then(|v| v.as_bool()));
    HardwareReport {
        gpu_available: flag.unwrap_or(!devices.is_empty()) && !devices.is_empty(),
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_devices_is_no_gpu() {
        let out = interpret(
            serde_json::json!({"cuda_available": false, "devices": [], "torch_version": "2.11.0"}),
        );
        assert!(!out.gpu_available);
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
        assert_eq!(out.devices[0].total_memory_bytes, Some(80u64 << 30));
    }

    #[tokio::test]
    async fn a_probe_that_cannot_run_is_gpu_probe_failed() {
        let p = HardwareProbe::new(Some(ProbeCommand {
            program: "/nonexistent/tunewright".into(),
            args: vec![],
        }));
        let e = p.report().await.unwrap_err();
        assert_eq!(e.error_code, ErrorCode::GpuProbeFailed);
        assert_eq!(p.gpu_available().await, None);
        assert_eq!(
            HardwareProbe::new(None)
                .report()
                .await
                .unwrap_err()
                .error_code,
            ErrorCode::GpuProbeFailed
        );
    }
}
