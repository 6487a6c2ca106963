//! Opt-in remediation of a failed training run (config `remediate_oom` /
//! `remediate_divergence`; `"remediation": true|{"oom","divergence"}` also accepted): after an OOM, half the micro-batch with double the
//! gradient accumulation (same effective batch), and once the micro-batch is 1, a shorter
//! `max_seq_length`; after a divergence, a lower learning rate from the last good checkpoint.

use serde_json::{json, Value};
use tunewright_schemas::ErrorCode;

/// A config change and what it means, for a `TrainingRemediated` event.
#[derive(Debug, Clone, PartialEq)]
pub struct Remedy {
    pub action: String,
    pub changes: Value,
}

pub fn enabled(config: &Value, cause: ErrorCode) -> bool {
    let (key, flag) = match cause {
        ErrorCode::TrainingOom => ("oom", "remediate_oom"),
        ErrorCode::TrainingDiverged => ("divergence", "remediate_divergence"),
        _ => return false,
    };
    if config.get(flag).and_then(Value::as_bool) == Some(true) {
        return true;
    }
    match config.get("remediation") {
        Some(Value::Bool(b)) => *b,
        Some(Value::Object(m)) => m.get(key).and_then(Value::as_bool).unwrap_or(false),
        _ => false,
    }
}

fn int(config: &Value, key: &str, default: u64) -> u64 {
    config.get(key).and_then(Value::as_u64).unwrap_or(default)
}

/// The next remedy for `cause` under `config`, or `None` when nothing is left to try.
pub fn next(config: &Value, cause: ErrorCode) -> Option<Remedy> {
    match cause {
        ErrorCode::TrainingOom => {
            let batch = int(config, "per_device_train_batch_size", 1);
            let accum = int(config, "gradient_accumulation_steps", 1);
            if batch > 1 {
                let nb = batch / 2;
                let na = accum * 2;
                return Some(Remedy {
                    action: format!(
                        "halved the micro-batch {batch} -> {nb} and raised gradient accumulation {accum} -> {na}"
                    ),
                    changes: json!({"per_device_train_batch_size": nb, "gradient_accumulation_steps": na}),
                });
            }
            let seq = int(config, "max_seq_length", 512);
            if seq > 32 {
                let ns = seq / 2;
                return Some(Remedy {
                    action: format!("shortened max_seq_length {seq} -> {ns}"),
                    changes: json!({"max_seq_length": ns}),
                });
            }
            None
        }
        ErrorCode::TrainingDiverged => {
            let lr = config
                .get("learning_rate")
                .and_then(Value::as_f64)
                .unwrap_or(2e-4);
            if lr < 1e-8 {
                return None;
            }
            let nl = lr / 4.0;
            Some(Remedy {
                action: format!(
                    "rolled back to the last good checkpoint at learning rate {lr} -> {nl}"
                ),
                changes: json!({"learning_rate": nl}),
            })
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn oom_halves_batch_keeping_effective_batch_then_shortens_sequences() {
        let c = json!({"per_device_train_batch_size": 8, "gradient_accumulation_steps": 2, "max_seq_length": 256});
        let r = next(&c, ErrorCode::TrainingOom).unwrap();
        assert_eq!(
            r.changes,
            json!({"per_device_train_batch_size": 4, "gradient_accumulation_steps": 4})
        );
        let c1 = json!({"per_device_train_batch_size": 1, "max_seq_length": 256});
        assert_eq!(
            next(&c1, ErrorCode::TrainingOom).unwrap().changes,
            json!({"max_seq_length": 128})
        );
        let c2 = json!({"per_device_train_batch_size": 1, "max_seq_length": 32});
        assert_eq!(next(&c2, ErrorCode::TrainingOom), None);
    }

    #[test]
    fn divergence_lowers_learning_rate_and_opt_in_is_required() {
        let c = json!({"learning_rate": 1.0});
        assert_eq!(
            next(&c, ErrorCode::TrainingDiverged).unwrap().changes,
            json!({"learning_rate": 0.25})
        );
        assert!(!enabled(&c, ErrorCode::TrainingDiverged));
        assert!(enabled(
            &json!({"remediation": true}),
            ErrorCode::TrainingOom
        ));
        assert!(enabled(
            &json!({"remediation": {"divergence": true}}),
            ErrorCode::TrainingDiverged
        ));
        assert!(!enabled(
            &json!({"remediation": {"divergence": true}}),
            ErrorCode::TrainingOom
        ));
    }
}
