//! The analyzer against a corpus of real failure texts (libtorch, CUDA, NCCL, the OS, Python
//! fine-tuning stacks, HTTP APIs), each with the error type it must be recognised as; and a
//! robustness check on arbitrary input.

use rand::{Rng, SeedableRng};
use tunewright_actors::analyzer::{analyze, AnalyzeInput};
use tunewright_schemas::{ErrorPhase, ErrorType};

#[derive(serde::Deserialize)]
struct Case {
    error: String,
    phase: Option<String>,
    error_type: String,
}

#[test]
fn every_corpus_message_is_recognised() {
    let text = include_str!("fixtures/analyzer_corpus.jsonl");
    let cases: Vec<Case> = text
        .lines()
        .map(|l| serde_json::from_str(l).expect("corpus line"))
        .collect();
    assert!(
        cases.len() >= 60,
        "the corpus needs at least 60 real messages, has {}",
        cases.len()
    );
    let mut wrong = Vec::new();
    for c in &cases {
        let phase = c
            .phase
            .as_deref()
            .map(|p| p.parse::<ErrorPhase>().expect("phase"));
        let expected: ErrorType = c.error_type.parse().expect("error type");
        let a = analyze(&AnalyzeInput {
            error_text: c.error.clone(),
            phase,
            config: None,
            code: None,
        });
        if a.error_type != expected {
            wrong.push(format!(
                "{:?}: got {}, want {}",
                c.error, a.error_type, expected
            ));
        }
        assert!(!a.description.is_empty());
        assert!(!a.suggestions.is_empty(), "no suggestion for {:?}", c.error);
    }
    assert!(
        wrong.is_empty(),
        "{} misread:\n{}",
        wrong.len(),
        wrong.join("\n")
    );
}

#[test]
fn suggestions_are_computed_from_the_config() {
    let a = analyze(&AnalyzeInput {
        error_text: "CUDA out of memory. Tried to allocate 1.00 GiB".into(),
        phase: Some(ErrorPhase::Training),
        config: Some(
            serde_json::json!({"per_device_train_batch_size": 16, "gradient_accumulation_steps": 1, "max_seq_length": 4096, "lora_r": 64}),
        ),
        code: None,
    });
    let changes: Vec<serde_json::Value> = a
        .suggestions
        .iter()
        .map(|s| s.config_changes.0.clone())
        .collect();
    assert!(changes.contains(
        &serde_json::json!({"per_device_train_batch_size": 8, "gradient_accumulation_steps": 2})
    ));
    assert!(changes.contains(&serde_json::json!({"max_seq_length": 2048})));
    assert!(changes.contains(&serde_json::json!({"gradient_checkpointing": true})));
    assert!(changes.contains(&serde_json::json!({"lora_r": 32})));

    let a = analyze(&AnalyzeInput {
        error_text: "Token indices sequence length is longer than the specified maximum sequence length for this model (5000 > 4096)".into(),
        ..Default::default()
    });
    assert_eq!(
        a.suggestions[0].config_changes.0,
        serde_json::json!({"max_seq_length": 8192})
    );

    // Without a config: specific, but no invented numbers.
    let a = analyze(&AnalyzeInput {
        error_text: "Loss is NaN".into(),
        ..Default::default()
    });
    assert_eq!(a.suggestions[0].config_changes.0, serde_json::json!({}));
    assert!(a.suggestions[0].detail.contains("learning_rate"));
}

#[test]
fn the_known_code_decides_when_the_text_says_nothing() {
    let a = analyze(&AnalyzeInput {
        error_text: "worker reported failure".into(),
        code: Some(tunewright_schemas::ErrorCode::TrainingDiverged),
        ..Default::default()
    });
    assert_eq!(a.error_type, ErrorType::Diverged);
    assert_eq!(
        a.error_code,
        tunewright_schemas::ErrorCode::TrainingDiverged
    );
}

#[test]
fn arbitrary_input_never_panics() {
    let mut rng = rand::rngs::StdRng::seed_from_u64(1);
    let alphabet: Vec<char> =
        "aZ09 (){}[]>.:'\"\\\n\t$`%ñ€\u{0}tried to allocate GiB step=nan cuda "
            .chars()
            .collect();
    for _ in 0..2000 {
        let n = rng.random_range(0..300);
        let text: String = (0..n)
            .map(|_| alphabet[rng.random_range(0..alphabet.len())])
            .collect();
        let config = match rng.random_range(0..4) {
            0 => None,
            1 => Some(
                serde_json::json!({"per_device_train_batch_size": rng.random::<u64>(), "learning_rate": rng.random::<f64>()}),
            ),
            2 => Some(
                serde_json::json!({"per_device_train_batch_size": -3, "max_seq_length": "long", "lora_r": null}),
            ),
            _ => Some(serde_json::json!([1, 2, 3])),
        };
        let _ = analyze(&AnalyzeInput {
            error_text: text,
            phase: None,
            config,
            code: None,
        });
    }
}
