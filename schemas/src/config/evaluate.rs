//! The `evaluate` job's config (docs/jobs.md, "Evaluate"): which training (`train_job`), which
//! of its weights (`checkpoint_step`: a recorded checkpoint's step, or `"final"` for the
//! finished adapter, the default), which split (`split`: default the training's own) and how
//! much of it (`max_examples` scored, `prompts` of them answered greedily, `max_new_tokens`
//! per answer). Unknown fields and ill-typed or out-of-range values are `VALIDATION_ERROR`
//! naming the field.

use serde_json::Value;

use crate::{ctx, ErrorCode, Failure, JobId};

/// Examples scored at most, by default and at most.
pub const DEFAULT_MAX_EXAMPLES: u64 = 200;
pub const MAX_MAX_EXAMPLES: u64 = 100_000;
/// Prompts answered at most.
pub const MAX_PROMPTS: u64 = 1_000;
/// New tokens per answer, by default and at most.
pub const DEFAULT_MAX_NEW_TOKENS: u64 = 128;
pub const MAX_MAX_NEW_TOKENS: u64 = 4_096;

/// Which weights of a training are evaluated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum CheckpointChoice {
    /// The adapter the finished training wrote.
    #[default]
    Final,
    /// The checkpoint the training recorded at this optimizer step.
    Step(u64),
}

impl CheckpointChoice {
    /// As the config and the API write it: the step, or `"final"`.
    pub fn to_json(self) -> serde_json::Value {
        match self {
            CheckpointChoice::Final => serde_json::json!("final"),
            CheckpointChoice::Step(s) => serde_json::json!(s),
        }
    }
}

/// An evaluate job's config as users write it.
#[derive(Debug, Clone, PartialEq)]
pub struct EvaluateConfig {
    pub train_job: JobId,
    pub checkpoint: CheckpointChoice,
    /// The project's split whose `val` part is scored; `None`: the training's split, and
    /// without one the whole dataset.
    pub split: Option<String>,
    pub max_examples: u64,
    pub prompts: u64,
    pub max_new_tokens: u64,
}

/// The fields an evaluate config may have.
const FIELDS: &[&str] = &[
    "train_job",
    "checkpoint_step",
    "split",
    "max_examples",
    "prompts",
    "max_new_tokens",
];

fn invalid(field: &str, reason: String) -> Failure {
    Failure::new(
        ErrorCode::ValidationError,
        ctx! {"reason" => format!("evaluate config: {reason}"), "field" => field.to_string()},
    )
}

/// A non-negative integer field within `lo..=hi` (`default` when absent).
fn number(
    o: &serde_json::Map<String, Value>,
    field: &str,
    default: u64,
    lo: u64,
    hi: u64,
) -> Result<u64, Failure> {
    let v = match o.get(field) {
        None | Some(Value::Null) => default,
        Some(v) => v
            .as_u64()
            .ok_or_else(|| invalid(field, format!("{field} must be a whole number, got {v}")))?,
    };
    if v < lo || v > hi {
        return Err(invalid(
            field,
            format!("{field} must be between {lo} and {hi}, got {v}"),
        ));
    }
    Ok(v)
}

impl EvaluateConfig {
    pub fn from_json(v: &Value) -> Result<EvaluateConfig, Failure> {
        let empty = serde_json::Map::new();
        let o = match v {
            Value::Null => &empty,
            Value::Object(o) => o,
            _ => return Err(invalid("config", "the config must be a JSON object".into())),
        };
        if let Some(unknown) = o.keys().find(|k| !FIELDS.contains(&k.as_str())) {
            let name: String = unknown.chars().take(40).collect();
            return Err(invalid(
                &name,
                format!(
                    "unknown field `{name}`, expected one of {}",
                    FIELDS
                        .iter()
                        .map(|f| format!("`{f}`"))
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            ));
        }
        let train_job = match o.get("train_job") {
            Some(Value::String(s)) => s
                .parse::<JobId>()
                .map_err(|e| invalid("train_job", format!("train_job: {e}")))?,
            Some(other) => {
                return Err(invalid(
                    "train_job",
                    format!("train_job must be a job id, got {other}"),
                ))
            }
            None => {
                return Err(invalid(
                    "train_job",
                    "train_job (the training to evaluate) is required".into(),
                ))
            }
        };
        let checkpoint = match o.get("checkpoint_step") {
            None | Some(Value::Null) => CheckpointChoice::Final,
            Some(Value::String(s)) if s.trim().eq_ignore_ascii_case("final") => {
                CheckpointChoice::Final
            }
            Some(v) => match v.as_u64() {
                Some(step) => CheckpointChoice::Step(step),
                None => {
                    return Err(invalid(
                        "checkpoint_step",
                        format!(
                            "checkpoint_step must be a step number or \"final\", got {}",
                            v.to_string().chars().take(40).collect::<String>()
                        ),
                    ))
                }
            },
        };
        let split = match o.get("split") {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) if !s.trim().is_empty() => Some(s.trim().to_string()),
            Some(other) => {
                return Err(invalid(
                    "split",
                    format!("split must name a split of the project, got {other}"),
                ))
            }
        };
        Ok(EvaluateConfig {
            train_job,
            checkpoint,
            split,
            max_examples: number(o, "max_examples", DEFAULT_MAX_EXAMPLES, 1, MAX_MAX_EXAMPLES)?,
            prompts: number(o, "prompts", 0, 0, MAX_PROMPTS)?,
            max_new_tokens: number(
                o,
                "max_new_tokens",
                DEFAULT_MAX_NEW_TOKENS,
                1,
                MAX_MAX_NEW_TOKENS,
            )?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(v: serde_json::Value) -> Result<EvaluateConfig, Failure> {
        EvaluateConfig::from_json(&v)
    }

    #[test]
    fn defaults_and_fields() {
        let id = JobId::new();
        let c = parse(serde_json::json!({"train_job": id.to_string()})).unwrap();
        assert_eq!(c.train_job, id);
        assert_eq!(c.checkpoint, CheckpointChoice::Final);
        assert_eq!(
            (c.split, c.max_examples, c.prompts, c.max_new_tokens),
            (None, DEFAULT_MAX_EXAMPLES, 0, DEFAULT_MAX_NEW_TOKENS)
        );
        let c = parse(serde_json::json!({
            "train_job": id.to_string(), "checkpoint_step": 4, "split": "main",
            "max_examples": 10, "prompts": 2, "max_new_tokens": 8,
        }))
        .unwrap();
        assert_eq!(c.checkpoint, CheckpointChoice::Step(4));
        assert_eq!(c.split.as_deref(), Some("main"));
        assert_eq!((c.max_examples, c.prompts, c.max_new_tokens), (10, 2, 8));
        let c = parse(serde_json::json!({"train_job": id.to_string(), "checkpoint_step": "final"}))
            .unwrap();
        assert_eq!(c.checkpoint, CheckpointChoice::Final);
    }

    #[test]
    fn mistakes_are_validation_errors_naming_the_field() {
        let id = JobId::new().to_string();
        for (bad, field) in [
            (serde_json::json!({}), "train_job"),
            (serde_json::json!({"train_job": "job_nope"}), "train_job"),
            (
                serde_json::json!({"train_job": id, "checkpoint_step": "last"}),
                "checkpoint_step",
            ),
            (
                serde_json::json!({"train_job": id, "checkpoint_step": -1}),
                "checkpoint_step",
            ),
            (
                serde_json::json!({"train_job": id, "max_examples": 0}),
                "max_examples",
            ),
            (
                serde_json::json!({"train_job": id, "prompts": "two"}),
                "prompts",
            ),
            (
                serde_json::json!({"train_job": id, "temperature": 0.5}),
                "temperature",
            ),
            (serde_json::json!({"train_job": id, "split": " "}), "split"),
        ] {
            let e = parse(bad.clone()).unwrap_err();
            assert_eq!(e.error_code, ErrorCode::ValidationError, "{bad}");
            assert!(e.detail.contains(field), "{bad}: {}", e.detail);
        }
    }
}
