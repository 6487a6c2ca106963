//! `WeightFiles`: a checkpoint's safetensors files (single or sharded with
//! `model.safetensors.index.json`), memory-mapped, handing out tensors by name with their
//! shape checked. Errors name the file and the tensor.

use std::collections::BTreeMap;
use std::fs::File;
use std::path::{Path, PathBuf};

use memmap2::Mmap;
use safetensors::{Dtype, SafeTensors};
use tch::{Device, Kind, Tensor};

use crate::error::TrainerError;

/// The memory-mapped safetensors files of one checkpoint.
pub struct WeightFiles {
    files: Vec<(PathBuf, Mmap)>,
    /// Tensor name -> index into `files`.
    index: BTreeMap<String, usize>,
}

impl WeightFiles {
    /// Open `model.safetensors`, or the shards listed by `model.safetensors.index.json`.
    pub fn open(dir: &Path) -> Result<WeightFiles, TrainerError> {
        let index_path = dir.join("model.safetensors.index.json");
        let single = dir.join("model.safetensors");
        let paths: Vec<PathBuf> = if index_path.exists() {
            let text = std::fs::read_to_string(&index_path)
                .map_err(|e| TrainerError::load(&index_path, format!("unreadable: {e}")))?;
            let v: serde_json::Value = serde_json::from_str(&text)
                .map_err(|e| TrainerError::load(&index_path, format!("not valid JSON: {e}")))?;
            let map = v
                .get("weight_map")
                .and_then(|m| m.as_object())
                .ok_or_else(|| TrainerError::load(&index_path, "no 'weight_map' object"))?;
            let mut names: Vec<String> = map
                .values()
                .filter_map(|f| f.as_str().map(str::to_string))
                .collect();
            names.sort();
            names.dedup();
            for n in &names {
                if n.contains('/') || n.contains("..") {
                    return Err(TrainerError::load(
                        &index_path,
                        format!("shard name '{n}' is not a plain file name"),
                    ));
                }
            }
            names.into_iter().map(|n| dir.join(n)).collect()
        } else if single.exists() {
            vec![single]
        } else {
            let mut found: Vec<PathBuf> = std::fs::read_dir(dir)
                .map_err(|e| TrainerError::load(dir, format!("unreadable directory: {e}")))?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| {
                    p.extension().is_some_and(|x| x == "safetensors")
                        && p.file_name()
                            .is_some_and(|n| n.to_string_lossy().starts_with("model"))
                })
                .collect();
            found.sort();
            if found.is_empty() {
                return Err(TrainerError::load(
                    dir,
                    "no model*.safetensors file in the directory",
                ));
            }
            found
        };
        let mut files = Vec::new();
        let mut index = BTreeMap::new();
        for (i, path) in paths.into_iter().enumerate() {
            let file = File::open(&path)
                .map_err(|e| TrainerError::load(&path, format!("cannot open: {e}")))?;
            // SAFETY: the file is opened read-only; a concurrent truncation by another process
            // is outside what we guard against (as in every safetensors loader).
            let mmap = unsafe { Mmap::map(&file) }
                .map_err(|e| TrainerError::load(&path, format!("cannot map: {e}")))?;
            let st = SafeTensors::deserialize(&mmap).map_err(|e| {
                TrainerError::load(&path, format!("not a valid safetensors file: {e}"))
            })?;
            for name in st.names() {
                index.insert(name.to_string(), i);
            }
            drop(st);
            files.push((path, mmap));
        }
        Ok(WeightFiles { files, index })
    }

    pub fn contains(&self, name: &str) -> bool {
        self.index.contains_key(name)
    }

    pub fn names(&self) -> impl Iterator<Item = &String> {
        self.index.keys()
    }

    /// The file that holds `name` (the single file's path when absent, for messages).
    pub fn file_of(&self, name: &str) -> PathBuf {
        self.index
            .get(name)
            .and_then(|&i| self.files.get(i))
            .or_else(|| self.files.first())
            .map(|(p, _)| p.clone())
            .unwrap_or_default()
    }

    /// The tensor `name` with shape `shape`, converted to `kind` on `device`, not requiring grad.
    pub fn get(
        &self,
        name: &str,
        shape: &[i64],
        device: Device,
        kind: Kind,
    ) -> Result<Tensor, TrainerError> {
        let (path, tensor) = self.get_raw(name)?;
        if tensor.size() != shape {
            return Err(TrainerError::load(
                &path,
                format!(
                    "tensor '{name}' has shape {:?}, expected {:?}",
                    tensor.size(),
                    shape
                ),
            ));
        }
        tensor
            .f_to_device(device)
            .and_then(|t| t.f_to_kind(kind))
            .map_err(|e| match TrainerError::torch("model load", e) {
                oom @ TrainerError::Oom { .. } => oom,
                other => TrainerError::load(&path, format!("tensor '{name}': {other}")),
            })
    }

    /// The tensor `name` as stored (CPU, its own dtype), with the file it came from.
    pub fn get_raw(&self, name: &str) -> Result<(PathBuf, Tensor), TrainerError> {
        let Some(&i) = self.index.get(name) else {
            return Err(TrainerError::load(
                &self.file_of(name),
                format!("tensor '{name}' is missing"),
            ));
        };
        let (path, mmap) = &self.files[i];
        let st = SafeTensors::deserialize(mmap)
            .map_err(|e| TrainerError::load(path, format!("not a valid safetensors file: {e}")))?;
        let view = st
            .tensor(name)
            .map_err(|e| TrainerError::load(path, format!("tensor '{name}': {e}")))?;
        let kind = kind_of(view.dtype()).ok_or_else(|| {
            TrainerError::load(
                path,
                format!("tensor '{name}' has unsupported dtype {:?}", view.dtype()),
            )
        })?;
        let shape: Vec<i64> = view.shape().iter().map(|&d| d as i64).collect();
        let t = Tensor::f_from_data_size(view.data(), &shape, kind).map_err(|e| {
            match TrainerError::torch("model load", e) {
                oom @ TrainerError::Oom { .. } => oom,
                other => TrainerError::load(path, format!("tensor '{name}': {other}")),
            }
        })?;
        drop(st);
        release_pages(mmap);
        Ok((path.clone(), t))
    }
}

/// Drop the file's pages from this process's resident memory once a tensor has been copied
/// out: otherwise every page read stays resident until the checkpoint is closed, and loading
/// holds the whole file besides the weights built from it (twice a QLoRA model's 4-bit size
/// and more). Pages read again later come back from the file (or the page cache).
fn release_pages(mmap: &Mmap) {
    // SAFETY: the mapping is a read-only view of a file; nothing borrows it here (the tensor
    // was copied out and the safetensors view dropped), and MADV_DONTNEED on such a mapping
    // only makes later reads fault the same file contents in again. A failure only keeps
    // the pages resident.
    let _ = unsafe { mmap.unchecked_advise(memmap2::UncheckedAdvice::DontNeed) };
}

/// The tch kind of a safetensors dtype (the float and integer types checkpoints use).
pub fn kind_of(d: Dtype) -> Option<Kind> {
    Some(match d {
        Dtype::F32 => Kind::Float,
        Dtype::F16 => Kind::Half,
        Dtype::BF16 => Kind::BFloat16,
        Dtype::F64 => Kind::Double,
        Dtype::I64 => Kind::Int64,
        Dtype::I32 => Kind::Int,
        Dtype::I16 => Kind::Int16,
        Dtype::I8 => Kind::Int8,
        Dtype::U8 => Kind::Uint8,
        Dtype::BOOL => Kind::Bool,
        _ => return None,
    })
}

/// The safetensors dtype of a tch kind.
pub fn dtype_of(k: Kind) -> Option<Dtype> {
    Some(match k {
        Kind::Float => Dtype::F32,
        Kind::Half => Dtype::F16,
        Kind::BFloat16 => Dtype::BF16,
        Kind::Double => Dtype::F64,
        Kind::Int64 => Dtype::I64,
        Kind::Int => Dtype::I32,
        Kind::Int16 => Dtype::I16,
        Kind::Int8 => Dtype::I8,
        Kind::Uint8 => Dtype::U8,
        Kind::Bool => Dtype::BOOL,
        _ => return None,
    })
}
