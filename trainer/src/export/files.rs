//! File plumbing of exports: tensors to safetensors bytes, sha256 of files, writing a
//! directory atomically (temp dir, fsync, rename) and re-reading safetensors to check them.

use std::borrow::Cow;
use std::collections::HashMap;
use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};

use safetensors::{Dtype, SafeTensors, View};
use sha2::{Digest, Sha256};
use tch::{Device, Kind, Tensor};

use crate::error::TrainerError;
use crate::model::weights::{dtype_of, kind_of};

/// A tensor's bytes ready for safetensors.
pub struct OwnedView {
    dtype: Dtype,
    shape: Vec<usize>,
    data: Vec<u8>,
}

impl OwnedView {
    pub fn from_tensor(t: &Tensor) -> Result<OwnedView, TrainerError> {
        let t = t
            .f_to_device(Device::Cpu)
            .and_then(|t| t.f_contiguous())
            .map_err(|e| TrainerError::torch("export", e))?;
        let kind = t.kind();
        let dtype = dtype_of(kind).ok_or_else(|| TrainerError::ExportWrite {
            reason: format!("cannot store dtype {kind:?}"),
        })?;
        let numel = t.numel();
        let mut data = vec![0u8; numel * kind.elt_size_in_bytes()];
        t.f_copy_data_u8(&mut data, numel)
            .map_err(|e| TrainerError::torch("export", e))?;
        Ok(OwnedView {
            dtype,
            shape: t.size().iter().map(|&d| d as usize).collect(),
            data,
        })
    }
}

impl View for &OwnedView {
    fn dtype(&self) -> Dtype {
        self.dtype
    }
    fn shape(&self) -> &[usize] {
        &self.shape
    }
    fn data(&self) -> Cow<'_, [u8]> {
        Cow::Borrowed(&self.data)
    }
    fn data_len(&self) -> usize {
        self.data.len()
    }
}

/// Write `tensors` to `path` as safetensors with `{"format": "pt"}` metadata, and fsync.
pub fn write_safetensors(path: &Path, tensors: &[(String, Tensor)]) -> Result<(), TrainerError> {
    let views = tensors
        .iter()
        .map(|(n, t)| Ok((n.clone(), OwnedView::from_tensor(t)?)))
        .collect::<Result<Vec<_>, TrainerError>>()?;
    let metadata = HashMap::from([("format".to_string(), "pt".to_string())]);
    safetensors::serialize_to_file(
        views.iter().map(|(n, v)| (n.as_str(), v)),
        Some(metadata),
        path,
    )
    .map_err(|e| match e {
        safetensors::SafeTensorError::IoError(io) => TrainerError::write(path, io),
        other => TrainerError::ExportWrite {
            reason: format!("{}: {other}", path.display()),
        },
    })?;
    fsync(path)
}

/// Read every tensor of a safetensors file onto the CPU in its stored dtype.
pub fn read_safetensors(path: &Path) -> Result<Vec<(String, Tensor)>, String> {
    let bytes = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let st = SafeTensors::deserialize(&bytes)
        .map_err(|e| format!("{}: not valid safetensors: {e}", path.display()))?;
    let mut out = Vec::new();
    let mut names: Vec<String> = st.names().into_iter().map(str::to_string).collect();
    names.sort();
    for name in names {
        let view = st
            .tensor(&name)
            .map_err(|e| format!("{}: {name}: {e}", path.display()))?;
        let kind = kind_of(view.dtype())
            .ok_or_else(|| format!("{}: {name}: unsupported dtype", path.display()))?;
        let shape: Vec<i64> = view.shape().iter().map(|&d| d as i64).collect();
        let t = Tensor::f_from_data_size(view.data(), &shape, kind)
            .map_err(|e| format!("{}: {name}: {e}", path.display()))?;
        out.push((name, t));
    }
    Ok(out)
}

/// The `__metadata__` of a safetensors file.
pub fn safetensors_metadata(path: &Path) -> Result<HashMap<String, String>, String> {
    let bytes = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let (_, meta) =
        SafeTensors::read_metadata(&bytes).map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(meta.metadata().clone().unwrap_or_default())
}

/// Whether every value of a float tensor is finite (non-float tensors always are).
pub fn all_finite(t: &Tensor) -> bool {
    if !matches!(
        t.kind(),
        Kind::Float | Kind::Double | Kind::Half | Kind::BFloat16
    ) {
        return true;
    }
    t.isfinite().all().int64_value(&[]) == 1
}

/// Lowercase hex sha256 of a file.
pub fn sha256_file(path: &Path) -> std::io::Result<String> {
    let mut f = File::open(path)?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(hex::encode(h.finalize()))
}

pub fn fsync(path: &Path) -> Result<(), TrainerError> {
    File::open(path)
        .and_then(|f| f.sync_all())
        .map_err(|e| TrainerError::write(path, e))
}

/// Write a small file and fsync it.
pub fn write_file(path: &Path, bytes: &[u8]) -> Result<(), TrainerError> {
    std::fs::write(path, bytes).map_err(|e| TrainerError::write(path, e))?;
    fsync(path)
}

/// A fresh temporary sibling directory of `out_dir` (same file system, so rename is atomic).
pub fn temp_dir_for(out_dir: &Path) -> Result<PathBuf, TrainerError> {
    let parent = out_dir
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    std::fs::create_dir_all(parent).map_err(|e| TrainerError::write(parent, e))?;
    let name = out_dir
        .file_name()
        .map(|n| n.to_string_lossy().to_string())
        .unwrap_or_else(|| "export".into());
    let tmp = parent.join(format!(".{name}.tmp-{}", std::process::id()));
    if tmp.exists() {
        std::fs::remove_dir_all(&tmp).map_err(|e| TrainerError::ExportWrite {
            reason: format!("{}: {e}", tmp.display()),
        })?;
    }
    std::fs::create_dir(&tmp).map_err(|e| TrainerError::write(&tmp, e))?;
    Ok(tmp)
}

/// Move the finished `tmp` into place as `out_dir` (replacing an earlier export there) and
/// fsync the parent directory. On failure `tmp` is removed.
pub fn publish(tmp: &Path, out_dir: &Path) -> Result<(), TrainerError> {
    let r = publish_inner(tmp, out_dir);
    if r.is_err() {
        let _ = std::fs::remove_dir_all(tmp);
    }
    r
}

fn publish_inner(tmp: &Path, out_dir: &Path) -> Result<(), TrainerError> {
    let err = |e: std::io::Error| TrainerError::write(out_dir, e);
    if let Ok(d) = File::open(tmp) {
        d.sync_all().map_err(err)?;
    }
    if out_dir.exists() {
        std::fs::remove_dir_all(out_dir).map_err(err)?;
    }
    std::fs::rename(tmp, out_dir).map_err(err)?;
    if let Some(parent) = out_dir.parent().filter(|p| !p.as_os_str().is_empty()) {
        if let Ok(d) = File::open(parent) {
            d.sync_all().map_err(err)?;
        }
    }
    Ok(())
}
