//! `GET /api/v1/hardware`: devices, memory, libtorch and CUDA versions, from the service's
//! hardware probe. No GPU is a fact answered 200 with `error_code: GPU_NOT_AVAILABLE`
//! (docs/errors.md); a probe that fails is `GPU_PROBE_FAILED`. It also says where workers run
//! (the launcher).

use axum::extract::State;
use axum::Json;
use serde::Serialize;
use tunewright_actors::hardware::HardwareReport;
use tunewright_schemas::ErrorCode;
use utoipa::ToSchema;

use super::error::{ApiResult, ErrorBody};
use super::state::AppState;

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
    /// Where workers run: `{"kind": "local"}`, or `{"kind": "slurm", "partition", "account",
    /// "time_limit", "gres", "extra_options", "pending_timeout_secs"}` (docs/launchers.md).
    #[schema(value_type = Object)]
    pub launcher: serde_json::Value,
}

impl From<HardwareReport> for HardwareOut {
    fn from(r: HardwareReport) -> Self {
        let (error_code, detail) = if r.gpu_available {
            (None, None)
        } else {
            let code = ErrorCode::GpuNotAvailable;
            (
                Some(code.as_str().to_string()),
                Some(code.render(&Default::default())),
            )
        };
        HardwareOut {
            gpu_available: r.gpu_available,
            error_code,
            detail,
            devices: r
                .devices
                .into_iter()
                .map(|d| DeviceOut {
                    index: d.index,
                    name: d.name,
                    total_memory_bytes: d.total_memory_bytes,
                    free_memory_bytes: d.free_memory_bytes,
                })
                .collect(),
            libtorch_version: r.libtorch_version,
            cuda_version: r.cuda_version,
            cudnn_version: r.cudnn_version,
            cpu_threads: r.cpu_threads,
            probe: r.probe,
            launcher: serde_json::Value::Null,
        }
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
    let report = st.service()?.hardware().report().await?;
    let mut out = HardwareOut::from(report);
    out.launcher = st.0.config.launcher.clone();
    Ok(Json(out))
}
