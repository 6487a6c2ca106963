//! Every config change the rules suggest is one the job's config accepts: run over every
//! corpus text, with and without a realistic config of the kind the failure belongs to
//! (`TrainConfig` for training, `GenerationConfig` for dataset jobs), each change is applied
//! to that config and the result must still parse.

use serde_json::{json, Map, Value};
use tunewright_actors::analyzer::{analyze, AnalyzeInput, ConfigKind};
use tunewright_schemas::Analysis;

fn train_config() -> Value {
    json!({
        "base_model": "/models/tiny",
        "per_device_train_batch_size": 16,
        "gradient_accumulation_steps": 1,
        "learning_rate": 2e-4,
        "max_seq_length": 4096,
        "lora_r": 64,
        "lora_alpha": 128.0,
        "warmup_steps": 0,
        "max_grad_norm": 1.0,
        "keep_checkpoints": 3
    })
}

fn generation_config() -> Value {
    json!({"chunk_tokens": 2048, "chunk_overlap_tokens": 128, "request_timeout_secs": 60, "examples_per_chunk": 8})
}

fn corpus_texts() -> Vec<String> {
    include_str!("fixtures/analyzer_corpus.jsonl")
        .lines()
        .map(|l| {
            let v: Value = serde_json::from_str(l).unwrap();
            v["error"].as_str().unwrap().to_string()
        })
        .collect()
}

/// The problems with `a`'s suggestions, given the config it was computed from.
fn refused(a: &Analysis, config: Option<&Value>) -> Vec<String> {
    let kind = ConfigKind::of(a.error_phase, a.error_type);
    let mut out = Vec::new();
    for s in &a.suggestions {
        let Some(changes) = s.config_changes.0.as_object() else {
            out.push(format!("{}: config_changes is not an object", s.action));
            continue;
        };
        let checked: Map<String, Value> = changes
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        if !kind.accepts(config, &checked) {
            out.push(format!(
                "{} / {}: {:?} refused by the {} config",
                a.error_type,
                s.action,
                s.config_changes.0,
                kind.as_str()
            ));
        }
    }
    out
}

#[test]
fn every_suggested_change_is_accepted_by_its_config() {
    let mut problems = Vec::new();
    let mut changes_seen = 0;
    for text in corpus_texts() {
        let bare = analyze(&AnalyzeInput {
            error_text: text.clone(),
            ..Default::default()
        });
        problems.extend(refused(&bare, None));
        let config = match ConfigKind::of(bare.error_phase, bare.error_type) {
            ConfigKind::Train => train_config(),
            ConfigKind::Generation => generation_config(),
        };
        let with = analyze(&AnalyzeInput {
            error_text: text,
            config: Some(config.clone()),
            ..Default::default()
        });
        changes_seen += with
            .suggestions
            .iter()
            .filter(|s| s.config_changes.0 != json!({}))
            .count();
        problems.extend(refused(&with, Some(&config)));
    }
    problems.sort();
    problems.dedup();
    assert!(problems.is_empty(), "{problems:#?}");
    // The check saw real changes, not only empty ones.
    assert!(changes_seen > 100, "only {changes_seen} config changes");
}

#[test]
fn generation_failures_name_generation_keys_never_a_key_itself() {
    for text in [
        "httpx.ReadTimeout: timed out",
        "openai.AuthenticationError: Error code: 401 - {'error': {'message': 'Incorrect API key provided'}}",
        "LLM response invalid: expected a JSON array of examples",
    ] {
        let a = analyze(&AnalyzeInput {
            error_text: text.into(),
            config: Some(generation_config()),
            ..Default::default()
        });
        assert_eq!(
            ConfigKind::of(a.error_phase, a.error_type),
            ConfigKind::Generation,
            "{text}"
        );
        let all = serde_json::to_string(&a.suggestions).unwrap();
        assert!(!all.contains("\"api_key\""), "{all}");
        assert!(!all.contains("llm_api_key\""), "{all}");
    }
    let timeout = analyze(&AnalyzeInput {
        error_text: "httpx.ReadTimeout: timed out".into(),
        config: Some(generation_config()),
        ..Default::default()
    });
    assert!(timeout.suggestions.iter().any(|s| s
        .config_changes
        .0
        .get("request_timeout_secs")
        .is_some()));
}

/// The codes tunewright raises for a hung worker and a full disk decide the type, whatever the
/// text says, and come with their fixes.
#[test]
fn a_stall_and_a_full_disk_are_analysed_from_their_codes() {
    use tunewright_schemas::{ErrorCode, ErrorPhase};
    let full = analyze(&AnalyzeInput {
        error_text: "Storage full: /data/jobs/j/checkpoints (12.0 KB free)".into(),
        phase: Some(ErrorPhase::Checkpoint),
        config: Some(train_config()),
        code: Some(ErrorCode::StorageFull),
    });
    assert_eq!(full.error_type.as_str(), "disk_full");
    assert_eq!(full.error_code, ErrorCode::StorageFull);
    assert!(
        full.suggestions
            .iter()
            .any(|s| s.action == "Free disk space"),
        "{:?}",
        full.suggestions
    );
    let stalled = analyze(&AnalyzeInput {
        error_text: "The worker made no progress for 130 s (bound 120 s) in pre-flight".into(),
        phase: Some(ErrorPhase::Preflight),
        config: Some(train_config()),
        code: Some(ErrorCode::TrainingStalled),
    });
    assert_eq!(stalled.error_type.as_str(), "stalled");
    assert_eq!(stalled.error_code, ErrorCode::TrainingStalled);
    assert!(!stalled.suggestions.is_empty());
}
