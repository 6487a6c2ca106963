//! The `export` job's config: which training to export (`train_job`, default the project's
//! newest successful one), in which format, and for GGUF (`gguf`, `ollama`) the tensor
//! encoding (`quantization`: f16, bf16 or q8_0; docs/exports.md). An unknown format is
//! `EXPORT_FORMAT_UNAVAILABLE` (422), any other mistake `VALIDATION_ERROR` naming the field.

use serde::{Deserialize, Serialize};

use crate::{ctx, ErrorCode, Failure, JobId, ModelFamily};

/// How a GGUF file stores the weight matrices (norms and biases stay f32).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Quantization {
    #[default]
    F16,
    Bf16,
    /// Blocks of 32 values: an f16 scale and 32 signed bytes.
    Q8_0,
}

impl Quantization {
    pub const ALL: &'static [Quantization] =
        &[Quantization::F16, Quantization::Bf16, Quantization::Q8_0];

    pub fn name(&self) -> &'static str {
        match self {
            Quantization::F16 => "f16",
            Quantization::Bf16 => "bf16",
            Quantization::Q8_0 => "q8_0",
        }
    }

    /// A quantization by name (case and blanks ignored); `VALIDATION_ERROR` otherwise.
    pub fn from_name(name: &str) -> Result<Quantization, Failure> {
        let n = name.trim().to_ascii_lowercase();
        Quantization::ALL
            .iter()
            .copied()
            .find(|q| q.name() == n)
            .ok_or_else(|| {
                Failure::new(
                    ErrorCode::ValidationError,
                    ctx! {
                        "reason" => format!(
                            "quantization '{}' is not one of f16, bf16, q8_0",
                            name.chars().take(40).collect::<String>()
                        ),
                        "field" => "quantization"
                    },
                )
            })
    }
}

/// Why a GGUF export (`gguf`, `ollama`) of a `family` model is refused, or None where
/// llama.cpp's architecture for it is exact: Llama, Mistral without a sliding window (llama.cpp
/// attends over the whole context), Qwen2, Qwen3 (docs/exports.md).
pub fn gguf_refusal(family: ModelFamily, sliding_window: Option<i64>) -> Option<String> {
    match (family, sliding_window) {
        (ModelFamily::Llama | ModelFamily::Qwen2 | ModelFamily::Qwen3, _) => None,
        (ModelFamily::Mistral, None) => None,
        (ModelFamily::Mistral, Some(w)) => Some(format!(
            "llama.cpp attends over the whole context, but this mistral model slides a window of {w} tokens"
        )),
        (other, _) => Some(format!(
            "GGUF export of the {} family is not yet available (llama, mistral, qwen2 and qwen3 are)",
            other.name()
        )),
    }
}

/// `EXPORT_FORMAT_UNAVAILABLE` for `format` (a GGUF format) of a `family` model, naming it.
pub fn gguf_unavailable(
    format: ExportFormat,
    family: ModelFamily,
    sliding_window: Option<i64>,
) -> Option<Failure> {
    gguf_refusal(family, sliding_window).map(|reason| {
        Failure::new(
            ErrorCode::ExportFormatUnavailable,
            ctx! {
                "format" => format!("{} for {}", format.name(), family.name()),
                "available" => "peft, merged".to_string(),
                "reason" => reason
            },
        )
    })
}

/// The formats tunewright writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum ExportFormat {
    /// `adapter_model.safetensors` + `adapter_config.json`, loadable by `PeftModel.from_pretrained`.
    #[default]
    Peft,
    /// Full weights with the adapter merged in, loadable by `AutoModelForCausalLM.from_pretrained`.
    Merged,
    /// One `model.gguf` for llama.cpp: merged weights, hyper-parameters, tokenizer, chat template.
    Gguf(Quantization),
    /// The GGUF plus an Ollama `Modelfile` (template and stop parameters).
    Ollama(Quantization),
}

impl ExportFormat {
    pub const ALL: &'static [ExportFormat] = &[
        ExportFormat::Peft,
        ExportFormat::Merged,
        ExportFormat::Gguf(Quantization::F16),
        ExportFormat::Ollama(Quantization::F16),
    ];

    pub fn name(&self) -> &'static str {
        match self {
            ExportFormat::Peft => "peft",
            ExportFormat::Merged => "merged",
            ExportFormat::Gguf(_) => "gguf",
            ExportFormat::Ollama(_) => "ollama",
        }
    }

    /// The GGUF encoding, for the formats that write a GGUF file.
    pub fn quantization(&self) -> Option<Quantization> {
        match self {
            ExportFormat::Gguf(q) | ExportFormat::Ollama(q) => Some(*q),
            _ => None,
        }
    }

    /// This format with the GGUF encoding `q` (`VALIDATION_ERROR` for formats without one).
    pub fn with_quantization(self, q: Quantization) -> Result<ExportFormat, Failure> {
        match self {
            ExportFormat::Gguf(_) => Ok(ExportFormat::Gguf(q)),
            ExportFormat::Ollama(_) => Ok(ExportFormat::Ollama(q)),
            other => Err(Failure::new(
                ErrorCode::ValidationError,
                ctx! {
                    "reason" => format!("quantization applies to the gguf and ollama formats, not {}", other.name()),
                    "field" => "quantization"
                },
            )),
        }
    }

    /// A format by name (case and surrounding blanks ignored; `adapter`/`lora` mean `peft`,
    /// `merged_safetensors`/`safetensors` mean `merged`); `EXPORT_FORMAT_UNAVAILABLE` otherwise.
    pub fn from_name(name: &str) -> Result<ExportFormat, Failure> {
        match name.trim().to_ascii_lowercase().as_str() {
            "peft" | "adapter" | "lora" => Ok(ExportFormat::Peft),
            "merged" | "merged_safetensors" | "safetensors" => Ok(ExportFormat::Merged),
            "gguf" | "llama.cpp" | "llamacpp" => Ok(ExportFormat::Gguf(Quantization::default())),
            "ollama" => Ok(ExportFormat::Ollama(Quantization::default())),
            _ => Err(Failure::new(
                ErrorCode::ExportFormatUnavailable,
                ctx! {
                    "format" => name.chars().take(80).collect::<String>(),
                    "available" => ExportFormat::ALL.iter().map(|f| f.name()).collect::<Vec<_>>().join(", ")
                },
            )),
        }
    }
}

/// An export job's config as users write it.
#[derive(Debug, Clone, PartialEq)]
pub struct ExportConfig {
    /// The training job to export; `None`: the project's newest successful training.
    pub train_job: Option<JobId>,
    pub format: ExportFormat,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawExportConfig {
    #[serde(default, alias = "train_job_id")]
    train_job: Option<String>,
    #[serde(default)]
    format: Option<String>,
    #[serde(default)]
    quantization: Option<String>,
}

impl ExportConfig {
    pub fn from_json(v: &serde_json::Value) -> Result<ExportConfig, Failure> {
        let raw: RawExportConfig = serde_json::from_value(v.clone()).map_err(|e| {
            Failure::new(
                ErrorCode::ValidationError,
                ctx! {"reason" => format!("export config: {e}")},
            )
        })?;
        let format = match raw.format.as_deref() {
            None => ExportFormat::default(),
            Some(name) => ExportFormat::from_name(name)?,
        };
        let format = match raw.quantization.as_deref() {
            None => format,
            Some(q) => format.with_quantization(Quantization::from_name(q)?)?,
        };
        let train_job = raw
            .train_job
            .map(|id| {
                id.parse::<JobId>().map_err(|e| {
                    Failure::new(
                        ErrorCode::ValidationError,
                        ctx! {"reason" => format!("train_job: {e}"), "field" => "train_job"},
                    )
                })
            })
            .transpose()?;
        Ok(ExportConfig { train_job, format })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_and_fields() {
        let c = ExportConfig::from_json(&serde_json::json!({})).unwrap();
        assert_eq!((c.format, c.train_job), (ExportFormat::Peft, None));
        let id = JobId::new();
        let c = ExportConfig::from_json(
            &serde_json::json!({"format": "MERGED", "train_job": id.to_string()}),
        )
        .unwrap();
        assert_eq!((c.format, c.train_job), (ExportFormat::Merged, Some(id)));
        let c = ExportConfig::from_json(&serde_json::json!({"format": "gguf"})).unwrap();
        assert_eq!(c.format, ExportFormat::Gguf(Quantization::F16));
        let c = ExportConfig::from_json(
            &serde_json::json!({"format": "ollama", "quantization": "Q8_0"}),
        )
        .unwrap();
        assert_eq!(c.format, ExportFormat::Ollama(Quantization::Q8_0));
        for bad in [
            serde_json::json!({"format": "gguf", "quantization": "q4_k"}),
            serde_json::json!({"format": "merged", "quantization": "f16"}),
        ] {
            let e = ExportConfig::from_json(&bad).unwrap_err();
            assert_eq!(e.error_code, ErrorCode::ValidationError, "{bad}");
            assert!(e.detail.contains("quantization"), "{}", e.detail);
        }
        assert_eq!(gguf_refusal(ModelFamily::Qwen3, None), None);
        assert_eq!(gguf_refusal(ModelFamily::Mistral, None), None);
        let f = gguf_unavailable(
            ExportFormat::Gguf(Quantization::F16),
            ModelFamily::Gemma2,
            None,
        )
        .unwrap();
        assert_eq!(f.error_code, ErrorCode::ExportFormatUnavailable);
        assert!(f.detail.contains("'gguf for gemma2'"), "{}", f.detail);
        assert!(gguf_refusal(ModelFamily::Mistral, Some(4096))
            .unwrap()
            .contains("window of 4096"));
        let e = ExportConfig::from_json(&serde_json::json!({"format": "onnx"})).unwrap_err();
        assert_eq!(e.error_code, ErrorCode::ExportFormatUnavailable);
        assert_eq!(e.error_code.http_status(), 422);
        assert!(
            e.detail
                .starts_with("Export format 'onnx' is not yet available"),
            "{}",
            e.detail
        );
        let e = ExportConfig::from_json(&serde_json::json!({"fromat": "peft"})).unwrap_err();
        assert_eq!(e.error_code, ErrorCode::ValidationError);
        assert!(e.detail.contains("fromat"), "{}", e.detail);
        let e = ExportConfig::from_json(&serde_json::json!({"train_job": "job_nope"})).unwrap_err();
        assert_eq!(e.error_code, ErrorCode::ValidationError);
    }
}
