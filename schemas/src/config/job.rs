//! A job's config, parsed once per kind: the one place that says what each kind accepts.
//! Admission parses a submitted config with it; executors and the worker read the same types.

use crate::config::{EvaluateConfig, ExportConfig, GenerationConfig, TrainConfig};
use crate::{ctx, ErrorCode, Failure, JobKind};

/// A parsed, valid job config.
#[derive(Debug, Clone, PartialEq)]
pub enum JobConfig {
    DatasetPreview(GenerationConfig),
    DatasetGenerate(GenerationConfig),
    Train(Box<TrainConfig>),
    Export(ExportConfig),
    Evaluate(EvaluateConfig),
}

impl JobConfig {
    /// Parse `config` as a `kind` job's: a JSON object (`null` means `{}`), unknown fields and
    /// ill-typed or out-of-range values refused with the field's name.
    pub fn parse(kind: JobKind, config: &serde_json::Value) -> Result<JobConfig, Failure> {
        let empty = serde_json::json!({});
        let config = if config.is_null() { &empty } else { config };
        if !config.is_object() {
            return Err(Failure::new(
                ErrorCode::ValidationError,
                ctx! {"reason" => "config must be a JSON object", "field" => "config"},
            ));
        }
        Ok(match kind {
            JobKind::DatasetPreview => {
                JobConfig::DatasetPreview(GenerationConfig::from_json(config)?)
            }
            JobKind::DatasetGenerate => {
                JobConfig::DatasetGenerate(GenerationConfig::from_json(config)?)
            }
            JobKind::Train => JobConfig::Train(Box::new(TrainConfig::from_json(config)?)),
            JobKind::Export => JobConfig::Export(ExportConfig::from_json(config)?),
            JobKind::Evaluate => JobConfig::Evaluate(EvaluateConfig::from_json(config)?),
        })
    }

    pub fn kind(&self) -> JobKind {
        match self {
            JobConfig::DatasetPreview(_) => JobKind::DatasetPreview,
            JobConfig::DatasetGenerate(_) => JobKind::DatasetGenerate,
            JobConfig::Train(_) => JobKind::Train,
            JobConfig::Export(_) => JobKind::Export,
            JobConfig::Evaluate(_) => JobKind::Evaluate,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_kind_has_its_parse() {
        assert!(matches!(
            JobConfig::parse(JobKind::DatasetPreview, &serde_json::Value::Null),
            Ok(JobConfig::DatasetPreview(_))
        ));
        assert!(JobConfig::parse(JobKind::Train, &serde_json::json!({})).is_err());
        assert!(matches!(
            JobConfig::parse(JobKind::Train, &serde_json::json!({"base_model": "/m"})),
            Ok(JobConfig::Train(_))
        ));
        let e = JobConfig::parse(JobKind::Export, &serde_json::json!([1])).unwrap_err();
        assert_eq!(e.error_code, ErrorCode::ValidationError);
        assert_eq!(
            JobConfig::parse(JobKind::Export, &serde_json::json!({"format": "tflite"}))
                .unwrap_err()
                .error_code,
            ErrorCode::ExportFormatUnavailable
        );
    }
}
