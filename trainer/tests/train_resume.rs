//! Exact resume: a run stopped at a checkpoint and resumed ends bit-for-bit where an
//! uninterrupted run ends. Alone in its test binary (its own process): torch's RNG and
//! thread pool are process-wide, and other tests training at the same time would perturb them.

use std::path::{Path, PathBuf};

use tunewright_schemas::config::TrainConfig;
use tunewright_trainer::train::{
    train, CheckpointRecord, Control, ProgressReport, TrainHooks, TrainSpec,
};

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
fn a_resumed_run_ends_bit_for_bit_like_an_uninterrupted_one() {
    tch::set_num_threads(1);
    let straight = tempfile::tempdir().unwrap();
    let mut rec = Recorder::default();
    train(&spec(straight.path(), serde_json::json!({})), &mut rec).unwrap();

    let resumed = tempfile::tempdir().unwrap();
    let mut first = Recorder {
        stop_after: Some(4),
        ..Default::default()
    };
    let out = train(&spec(resumed.path(), serde_json::json!({})), &mut first).unwrap();
    assert_eq!(out.stopped.as_deref(), Some("checkpointed and stopped"));
    let ck = first.checkpoints.last().unwrap().clone();
    assert_eq!(ck.step, 4);
    let mut s = spec(resumed.path(), serde_json::json!({}));
    s.resume_from = Some(ck.dir.clone());
    let mut second = Recorder::default();
    let out = train(&s, &mut second).unwrap();
    assert_eq!(out.resumed_from_step, Some(4));
    assert_eq!(out.steps, 8);
    let a = std::fs::read(straight.path().join("adapter/adapter_model.safetensors")).unwrap();
    let b = std::fs::read(resumed.path().join("adapter/adapter_model.safetensors")).unwrap();
    let straight_losses: Vec<(u64, f64)> = rec.progress.iter().map(|p| (p.step, p.loss)).collect();
    let resumed_losses: Vec<(u64, f64)> = first
        .progress
        .iter()
        .chain(second.progress.iter())
        .map(|p| (p.step, p.loss))
        .collect();
    assert!(a == b, "the resumed adapter differs from the uninterrupted one:\n{straight_losses:?}\n{resumed_losses:?}");
    // The losses of the steps after the resume are the same too.
    let tail: Vec<f64> = rec
        .progress
        .iter()
        .filter(|p| p.step > 4)
        .map(|p| p.loss)
        .collect();
    let resumed_tail: Vec<f64> = second.progress.iter().map(|p| p.loss).collect();
    assert_eq!(tail, resumed_tail);
}
