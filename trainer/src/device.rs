//! Device selection and the hardware probe behind `GET /api/v1/hardware`: whether CUDA is
//! usable, the GPUs (name, total and free memory, from `nvidia-smi` when present), and the
//! libtorch and CUDA runtime versions.

use serde::Serialize;
use tch::{Cuda, Device};

/// What the user asked for: `auto`, `cpu` or `cuda` (`cuda:N` accepted).
pub fn select(requested: &str) -> Result<Device, DeviceChoiceError> {
    let r = requested.trim().to_ascii_lowercase();
    match r.as_str() {
        "auto" => Ok(if Cuda::is_available() {
            Device::Cuda(0)
        } else {
            Device::Cpu
        }),
        "cpu" => Ok(Device::Cpu),
        _ if r == "cuda" || r.starts_with("cuda:") => {
            if !Cuda::is_available() {
                return Err(DeviceChoiceError::NoGpu);
            }
            let idx: usize = match r.strip_prefix("cuda:") {
                None => 0,
                Some(n) => n
                    .parse()
                    .map_err(|_| DeviceChoiceError::Invalid(requested.to_string()))?,
            };
            if idx as i64 >= Cuda::device_count() {
                return Err(DeviceChoiceError::Invalid(requested.to_string()));
            }
            Ok(Device::Cuda(idx))
        }
        _ => Err(DeviceChoiceError::Invalid(requested.to_string())),
    }
}

/// Why a device request cannot be met.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum DeviceChoiceError {
    /// `cuda` was requested on a machine without a usable GPU (`TRAINING_NO_GPU`).
    #[error("device=cuda was requested but no CUDA GPU is available")]
    NoGpu,
    /// Not `auto`, `cpu`, `cuda` or an existing `cuda:N` (`VALIDATION_ERROR`).
    #[error("unknown device '{0}' (expected auto, cpu or cuda)")]
    Invalid(String),
}

impl DeviceChoiceError {
    pub fn to_failure(&self) -> tunewright_schemas::Failure {
        use tunewright_schemas::{ctx, ErrorCode, Failure};
        match self {
            DeviceChoiceError::NoGpu => Failure::new(ErrorCode::TrainingNoGpu, ctx! {}),
            DeviceChoiceError::Invalid(d) => Failure::new(
                ErrorCode::ValidationError,
                ctx! { "reason" => format!("unknown device '{d}' (expected auto, cpu or cuda)") },
            ),
        }
    }
}

/// One GPU as the probe sees it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct GpuInfo {
    pub index: i64,
    pub name: Option<String>,
    pub memory_total_mb: Option<u64>,
    pub memory_free_mb: Option<u64>,
}

/// The hardware report.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HardwareInfo {
    pub cuda_available: bool,
    pub cudnn_available: bool,
    pub device_count: i64,
    pub gpus: Vec<GpuInfo>,
    /// e.g. "2.11.0+cu130", from the loaded libtorch's `version.py`.
    pub libtorch_version: Option<String>,
    /// CUDA runtime version as libtorch reports it (e.g. 13000), when CUDA is compiled in.
    pub cuda_runtime_version: Option<i64>,
    pub cpu_threads: i32,
}

/// Probe the machine. Never fails: what cannot be learned is `None`.
pub fn probe() -> HardwareInfo {
    let cuda_available = Cuda::is_available();
    let device_count = if cuda_available {
        Cuda::device_count()
    } else {
        0
    };
    let smi = if cuda_available {
        nvidia_smi()
    } else {
        Vec::new()
    };
    let gpus = (0..device_count)
        .map(|i| {
            let row = smi.get(i as usize);
            GpuInfo {
                index: i,
                name: row.map(|r| r.0.clone()),
                memory_total_mb: row.map(|r| r.1),
                memory_free_mb: row.map(|r| r.2),
            }
        })
        .collect();
    HardwareInfo {
        cuda_available,
        cudnn_available: cuda_available && Cuda::cudnn_is_available(),
        device_count,
        gpus,
        libtorch_version: libtorch_version(),
        cuda_runtime_version: if tch::utils::has_cuda() && cuda_available {
            Some(tch::utils::version_cudart())
        } else {
            None
        },
        cpu_threads: tch::get_num_threads(),
    }
}

/// (name, total MiB, free MiB) per GPU from `nvidia-smi`, empty when it is unavailable.
fn nvidia_smi() -> Vec<(String, u64, u64)> {
    let out = std::process::Command::new("nvidia-smi")
        .args([
            "--query-gpu=name,memory.total,memory.free",
            "--format=csv,noheader,nounits",
        ])
        .output();
    let Ok(out) = out else { return Vec::new() };
    if !out.status.success() {
        return Vec::new();
    }
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|line| {
            let mut parts = line.split(',').map(str::trim);
            let name = parts.next()?.to_string();
            let total = parts.next()?.parse().ok()?;
            let free = parts.next()?.parse().ok()?;
            Some((name, total, free))
        })
        .collect()
}

/// The version of the libtorch this process loaded: the `torch/version.py` next to the
/// `lib/` directory that `/proc/self/maps` shows `libtorch_cpu.so` mapped from.
pub fn libtorch_version() -> Option<String> {
    let maps = std::fs::read_to_string("/proc/self/maps").ok()?;
    let lib = maps
        .lines()
        .filter_map(|l| l.split_whitespace().nth(5))
        .find(|p| p.ends_with("libtorch_cpu.so"))?;
    let torch_dir = std::path::Path::new(lib).parent()?.parent()?;
    let text = std::fs::read_to_string(torch_dir.join("version.py")).ok()?;
    text.lines()
        .find_map(|l| l.strip_prefix("__version__"))
        .map(|rest| {
            rest.trim_start_matches([' ', '=', ':'])
                .trim()
                .trim_matches(['\'', '"'])
                .to_string()
        })
        .or_else(|| {
            std::fs::read_to_string(torch_dir.join("build-version"))
                .ok()
                .map(|s| s.trim().to_string())
        })
}
