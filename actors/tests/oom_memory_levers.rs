//! The OOM analysis names the memory levers a run did not use: `load_in_4bit` with the GiB it
//! would save, computed from the base weights' bytes that a TRAINING_OOM failure's context
//! carries (merged into the map the analyzer reads), and `gradient_checkpointing`; neither
//! where the run already used it. Every suggested change is a valid train config.

use serde_json::{json, Value};
use tunewright_actors::analyzer::{analyze, AnalyzeInput};
use tunewright_schemas::config::TrainConfig;
use tunewright_schemas::{ErrorCode, ErrorPhase};

const OOM: &str = "CUDA out of memory. Tried to allocate 2.00 GiB. GPU 0 has a total capacity of 79.18 GiB of which 1.02 GiB is free.";

fn changes(config: Value) -> Vec<(Value, String)> {
    analyze(&AnalyzeInput {
        error_text: OOM.into(),
        phase: Some(ErrorPhase::Training),
        config: Some(config),
        code: Some(ErrorCode::TrainingOom),
    })
    .suggestions
    .into_iter()
    .map(|s| (s.config_changes.0, s.detail))
    .collect()
}

#[test]
fn qlora_and_checkpointing_are_suggested_with_the_memory_saved() {
    let config =
        json!({"base_model": "/m", "per_device_train_batch_size": 8, "max_seq_length": 1024});
    let mut seen = config.clone();
    // What the worker's TRAINING_OOM context says of an 8B model in bf16.
    let context = json!({
        "base_model_parameters": 8_030_261_248i64, "base_weights_bytes": 16_060_522_496i64,
        "base_weights_bytes_4bit": 5_700_000_000i64, "load_in_4bit": false,
        "gradient_checkpointing": false
    });
    for (k, v) in context.as_object().unwrap() {
        seen[k] = v.clone();
    }
    let got = changes(seen);
    let qlora = got
        .iter()
        .find(|(c, _)| *c == json!({"load_in_4bit": true}))
        .expect("load_in_4bit is suggested");
    // 16,060,522,496 - 5,700,000,000 bytes = 9.65 GiB.
    assert!(qlora.1.contains("saving 9.65 GiB"), "{}", qlora.1);
    assert!(qlora.1.contains("14.96 GiB"), "{}", qlora.1);
    assert!(got
        .iter()
        .any(|(c, _)| *c == json!({"gradient_checkpointing": true})));
    for (c, _) in &got {
        let mut next = config.clone();
        for (k, v) in c.as_object().unwrap() {
            next[k] = v.clone();
        }
        assert!(
            TrainConfig::from_json(&next).is_ok(),
            "{c} gives an invalid config"
        );
    }
}

#[test]
fn levers_already_on_are_not_suggested_again() {
    let got = changes(json!({
        "base_model": "/m", "load_in_4bit": true, "gradient_checkpointing": true
    }));
    assert!(!got.iter().any(|(c, _)| c.get("load_in_4bit").is_some()));
    assert!(!got
        .iter()
        .any(|(c, _)| c.get("gradient_checkpointing").is_some()));
    // Without the model's size, the suggestion still stands, without invented numbers.
    let got = changes(json!({"base_model": "/m"}));
    let qlora = got
        .iter()
        .find(|(c, _)| *c == json!({"load_in_4bit": true}))
        .unwrap();
    assert!(!qlora.1.contains("GiB"), "{}", qlora.1);
}
