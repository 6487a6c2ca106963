//! Which config a failure's suggestions change, the keys it has, and whether a change is one
//! it accepts. The answer comes from the config types themselves (their serialised fields,
//! their `from_json`), so a suggestion can never name a field that does not exist or a value
//! the job would refuse.

use serde_json::{Map, Value};
use tunewright_schemas::config::{GenerationConfig, TrainConfig};
use tunewright_schemas::{ErrorPhase, ErrorType};

/// The job config a suggestion applies to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConfigKind {
    /// A `train` job's `TrainConfig`.
    Train,
    /// A dataset job's `GenerationConfig`.
    Generation,
}

/// A placeholder that makes a train config parse when the caller gave none: only the
/// *changes* are being checked.
const PLACEHOLDER_MODEL: &str = "/model";

impl ConfigKind {
    /// Dataset generation's failures (the LLM service's) change the generation config.
    pub fn of(phase: ErrorPhase, t: ErrorType) -> ConfigKind {
        use ErrorType::*;
        let llm = matches!(
            t,
            NetworkTimeout
                | NetworkUnreachable
                | RateLimit
                | AuthFailed
                | LlmResponseInvalid
                | LlmModelNotFound
                | LlmServerError
        );
        if llm || phase == ErrorPhase::Generation {
            ConfigKind::Generation
        } else {
            ConfigKind::Train
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            ConfigKind::Train => "train",
            ConfigKind::Generation => "generation",
        }
    }

    /// Every field of the config, as its JSON object's keys.
    pub fn keys(self) -> Vec<String> {
        minimal(self)
            .as_object()
            .map(|o| o.keys().cloned().collect())
            .unwrap_or_default()
    }

    /// Whether `base` with `changes` applied is still a config this kind accepts. `base` is
    /// the job's config when it is one; otherwise the smallest valid config is used.
    pub fn accepts(self, base: Option<&Value>, changes: &Map<String, Value>) -> bool {
        let keys = self.keys();
        if changes.keys().any(|k| !keys.contains(k)) {
            return false;
        }
        let mut merged = match base.filter(|b| parses(self, b)) {
            Some(b) => b.clone(),
            None => minimal(self),
        };
        let Some(obj) = merged.as_object_mut() else {
            return false;
        };
        for (k, v) in changes {
            obj.insert(k.clone(), v.clone());
        }
        parses(self, &merged)
    }
}

fn parses(kind: ConfigKind, v: &Value) -> bool {
    match kind {
        ConfigKind::Train => TrainConfig::from_json(&with_model(v)).is_ok(),
        ConfigKind::Generation => GenerationConfig::from_json(v).is_ok(),
    }
}

/// A train config without `base_model` (a partial one, as a CLI user writes it) is checked as
/// if it named one.
fn with_model(v: &Value) -> Value {
    let mut v = v.clone();
    if let Some(o) = v.as_object_mut() {
        o.entry("base_model")
            .or_insert_with(|| Value::String(PLACEHOLDER_MODEL.into()));
    }
    v
}

/// The smallest valid config of the kind, every field present.
fn minimal(kind: ConfigKind) -> Value {
    let v = match kind {
        ConfigKind::Train => {
            TrainConfig::from_json(&serde_json::json!({"base_model": PLACEHOLDER_MODEL}))
                .ok()
                .and_then(|c| serde_json::to_value(c).ok())
        }
        ConfigKind::Generation => serde_json::to_value(GenerationConfig::default()).ok(),
    };
    v.unwrap_or_else(|| Value::Object(Map::new()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn changes(v: Value) -> Map<String, Value> {
        v.as_object().cloned().unwrap_or_default()
    }

    #[test]
    fn keys_are_the_configs_fields() {
        let train = ConfigKind::Train.keys();
        assert!(train.contains(&"per_device_train_batch_size".to_string()));
        assert!(train.contains(&"lora_r".to_string()));
        let generation = ConfigKind::Generation.keys();
        assert!(generation.contains(&"request_timeout_secs".to_string()));
        assert!(generation.contains(&"llm_api_key_env".to_string()));
        assert!(!generation.contains(&"api_key".to_string()));
        assert!(!generation.contains(&"llm_api_key".to_string()));
    }

    #[test]
    fn unknown_keys_and_refused_values_are_not_accepted() {
        let t = ConfigKind::Train;
        assert!(t.accepts(None, &changes(json!({"learning_rate": 1e-5}))));
        assert!(!t.accepts(None, &changes(json!({"learning_rte": 1e-5}))));
        assert!(!t.accepts(None, &changes(json!({"learning_rate": -1.0}))));
        assert!(!t.accepts(
            None,
            &changes(json!({"per_device_train_batch_size": "eight"}))
        ));
        let g = ConfigKind::Generation;
        assert!(g.accepts(None, &changes(json!({"request_timeout_secs": 240}))));
        assert!(!g.accepts(None, &changes(json!({"request_timeout_secs": 99999}))));
        assert!(!g.accepts(None, &changes(json!({"api_key": "sk-x"}))));
        assert!(!g.accepts(None, &changes(json!({"llm_api_key": "sk-x"}))));
    }

    #[test]
    fn the_jobs_own_config_is_the_base() {
        // Halving chunk_tokens is fine alone but not with this job's overlap.
        let job = json!({"chunk_tokens": 512, "chunk_overlap_tokens": 200});
        let c = changes(json!({"chunk_tokens": 256}));
        assert!(ConfigKind::Generation.accepts(None, &c));
        assert!(!ConfigKind::Generation.accepts(Some(&job), &c));
        // A partial train config (no base_model) still serves as the base.
        let job = json!({"per_device_train_batch_size": 8});
        assert!(ConfigKind::Train.accepts(
            Some(&job),
            &changes(json!({"gradient_accumulation_steps": 2}))
        ));
    }
}
