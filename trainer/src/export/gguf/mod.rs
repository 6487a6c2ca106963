//! GGUF export for llama.cpp (docs/exports.md): merged weights under llama.cpp's tensor names
//! (q/k rows permuted for the `llama` architecture), matrices in f16, bf16 or q8_0 and norms,
//! biases and rope factors in f32, the hyper-parameters and the tokenizer with its chat
//! template as metadata. `format.rs` is the container, `quant.rs` the encodings, `arch.rs`
//! the names per family, `vocab.rs` the tokenizer; `read_back` turns a written file into a
//! Hugging Face directory our loader reads (the self-check).

pub mod arch;
pub mod format;
pub mod quant;
pub mod vocab;

use std::path::Path;

use tch::{Device, Kind, Tensor};
use tunewright_schemas::config::{gguf_unavailable, ExportFormat, Quantization};
use tunewright_schemas::Failure;

use super::files::{write_file, write_safetensors};
use crate::error::TrainerError;
use crate::model::{ModelConfig, WeightFiles};
use format::{GgmlType, GgufFile, GgufTensor, MetaValue};

/// The GGUF file name in an export directory.
pub const GGUF_FILE: &str = "model.gguf";

/// llama.cpp's `general.file_type` of each encoding.
fn file_type(q: Quantization) -> u32 {
    match q {
        Quantization::F16 => 1,
        Quantization::Bf16 => 32,
        Quantization::Q8_0 => 7,
    }
}

/// The encoding of a tensor: 1-D tensors (norms, biases) in f32; matrices in `q` (q8_0 only
/// where rows are whole blocks of 32, else f16, as llama.cpp's converter falls back).
fn kind_for(shape: &[i64], q: Quantization) -> GgmlType {
    if shape.len() < 2 {
        return GgmlType::F32;
    }
    match q {
        Quantization::F16 => GgmlType::F16,
        Quantization::Bf16 => GgmlType::Bf16,
        Quantization::Q8_0 if shape[shape.len() - 1] % 32 == 0 => GgmlType::Q8_0,
        Quantization::Q8_0 => GgmlType::F16,
    }
}

/// `EXPORT_FORMAT_UNAVAILABLE` for a family GGUF cannot carry exactly.
pub fn unavailable(config: &ModelConfig) -> Option<Failure> {
    gguf_unavailable(
        ExportFormat::Gguf(Quantization::F16),
        config.family,
        arch::sliding_window(config),
    )
}

/// What was written.
#[derive(Debug, Clone, PartialEq)]
pub struct GgufSummary {
    pub arch: String,
    pub tensors: usize,
    pub bytes: u64,
}

/// Write the merged model in `model_dir` as GGUF at `path`.
pub fn write_gguf(
    model_dir: &Path,
    q: Quantization,
    name: &str,
    path: &Path,
) -> Result<GgufSummary, TrainerError> {
    let config = ModelConfig::from_dir(model_dir)?;
    if let Some(f) = unavailable(&config) {
        return Err(TrainerError::Rejected(f));
    }
    let arch = arch::gguf_arch(&config).unwrap_or("llama");
    let files = WeightFiles::open(model_dir)?;
    let mut file = GgufFile::default();
    let s = |v: &str| MetaValue::Str(v.to_string());
    file.metadata.push(("general.architecture".into(), s(arch)));
    file.metadata.push(("general.name".into(), s(name)));
    file.metadata
        .push(("general.file_type".into(), MetaValue::U32(file_type(q))));
    file.metadata
        .push(("general.quantization_version".into(), MetaValue::U32(2)));
    file.metadata.extend(arch::hyper_parameters(arch, &config));
    file.metadata.extend(vocab::metadata(
        model_dir,
        config.family,
        config.vocab_size,
    )?);
    let _guard = tch::no_grad_guard();
    let mut names: Vec<&String> = files.names().collect();
    names.sort();
    for hf in names {
        if hf == "lm_head.weight" && config.tie_word_embeddings {
            continue;
        }
        let Some(gguf) = arch::gguf_name(hf) else {
            continue;
        };
        let (_, w) = files.get_raw(hf)?;
        let mut w = w.to_kind(Kind::Float);
        if let Some(heads) = arch::permute_heads(arch, hf, &config) {
            w = arch::permute(&w, heads);
        }
        let kind = kind_for(&w.size(), q);
        file.tensors.push(GgufTensor {
            name: gguf,
            shape: w.size().iter().map(|d| *d as u64).collect(),
            kind,
            data: quant::encode(&w, kind)?,
        });
    }
    if let Some(factors) = arch::rope_freqs(&config) {
        let t = Tensor::from_slice(&factors);
        file.tensors.push(GgufTensor {
            name: "rope_freqs.weight".into(),
            shape: vec![factors.len() as u64],
            kind: GgmlType::F32,
            data: quant::encode(&t, GgmlType::F32)?,
        });
    }
    let bytes = format::write(path, &file)?;
    Ok(GgufSummary {
        arch: arch.to_string(),
        tensors: file.tensors.len(),
        bytes,
    })
}

/// Read the GGUF at `path` back into a Hugging Face directory `out` (dequantized f32 weights,
/// q/k rows un-permuted, `lm_head` from the embeddings where tied) with `model_dir`'s config
/// and tokenizer files, for our loader.
pub fn read_back(path: &Path, model_dir: &Path, out: &Path) -> Result<(), TrainerError> {
    let bad = |reason: String| TrainerError::ExportWrite {
        reason: format!("reading back {}: {reason}", path.display()),
    };
    let config = ModelConfig::from_dir(model_dir)?;
    let arch = arch::gguf_arch(&config).map_err(bad)?;
    let file = format::read(path).map_err(bad)?;
    if file.get("general.architecture").and_then(MetaValue::as_str) != Some(arch) {
        return Err(bad("general.architecture differs".into()));
    }
    let mut tensors = Vec::new();
    for t in &file.tensors {
        if t.name == "rope_freqs.weight" {
            continue;
        }
        let hf = arch::hf_name(&t.name, config.num_hidden_layers)
            .ok_or_else(|| bad(format!("unexpected tensor '{}'", t.name)))?;
        let values = quant::decode(&t.data, t.kind);
        let shape: Vec<i64> = t.shape.iter().map(|d| *d as i64).collect();
        let mut w = Tensor::from_slice(&values)
            .reshape(&shape)
            .to_device(Device::Cpu);
        if let Some(heads) = arch::permute_heads(arch, &hf, &config) {
            w = arch::unpermute(&w, heads);
        }
        tensors.push((hf, w));
    }
    write_safetensors(&out.join("model.safetensors"), &tensors)?;
    // A read-back holds one unsharded file: no shard index.
    for name in crate::export::merge::MODEL_FILES {
        let src = model_dir.join(name);
        if src.is_file() {
            let bytes = std::fs::read(&src).map_err(|e| bad(e.to_string()))?;
            write_file(&out.join(name), &bytes)?;
        }
    }
    Ok(())
}
