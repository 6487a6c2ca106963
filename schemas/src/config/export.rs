//! The `export` job's config: which training to export (`train_job`, default the project's
//! newest successful one) and in which format. An unknown format is
//! `EXPORT_FORMAT_UNAVAILABLE` (422), any other mistake `VALIDATION_ERROR` naming the field.

use serde::{Deserialize, Serialize};

use crate::{ctx, ErrorCode, Failure, JobId};

/// The formats tunewright writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum ExportFormat {
    /// `adapter_model.safetensors` + `adapter_config.json`, loadable by `PeftModel.from_pretrained`.
    #[default]
    Peft,
    /// Full weights with the adapter merged in, loadable by `AutoModelForCausalLM.from_pretrained`.
    Merged,
}

impl ExportFormat {
    pub const ALL: &'static [ExportFormat] = &[ExportFormat::Peft, ExportFormat::Merged];

    pub fn name(&self) -> &'static str {
        match self {
            ExportFormat::Peft => "peft",
            ExportFormat::Merged => "merged",
        }
    }

    /// A format by name (case and surrounding blanks ignored; `adapter`/`lora` mean `peft`,
    /// `merged_safetensors`/`safetensors` mean `merged`); `EXPORT_FORMAT_UNAVAILABLE` otherwise.
    pub fn from_name(name: &str) -> Result<ExportFormat, Failure> {
        match name.trim().to_ascii_lowercase().as_str() {
            "peft" | "adapter" | "lora" => Ok(ExportFormat::Peft),
            "merged" | "merged_safetensors" | "safetensors" => Ok(ExportFormat::Merged),
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
