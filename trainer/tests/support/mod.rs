//! Shared by the trainer's integration tests: the fixtures of each family, their reference
//! logits, and the Python reference (transformers, PEFT, bitsandbytes in `.venv`, installed by
//! `script/install-test-tools`) run as a child process.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;

use tch::Tensor;
use tunewright_trainer::export::files::{read_safetensors, write_safetensors};

/// Every family with a tiny fixture, by fixture name.
pub const FAMILIES: &[&str] = &[
    "llama", "mistral", "qwen2", "qwen3", "phi3", "gemma2", "gemma3",
];

pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

pub fn fixture(family: &str) -> PathBuf {
    root().join(format!("tests/fixtures/tiny-{family}"))
}

pub fn reference(family: &str) -> Vec<(String, Tensor)> {
    read_safetensors(&fixture(family).join("reference_logits.safetensors"))
        .expect("reference logits")
}

pub fn get<'a>(r: &'a [(String, Tensor)], name: &str) -> &'a Tensor {
    &r.iter().find(|(n, _)| n == name).expect(name).1
}

pub fn max_diff(a: &Tensor, b: &Tensor) -> f64 {
    (a - b).abs().max().double_value(&[])
}

/// Run `trainer/tests/python/<script>` with `.venv`'s Python; panics with its stderr on failure.
pub fn python(script: &str, args: &[&Path], extra: &[&str]) {
    let py = root().join(".venv/bin/python");
    assert!(
        py.exists(),
        "{} is missing: run script/setup and script/install-test-tools",
        py.display()
    );
    let out = Command::new(&py)
        .arg(root().join("trainer/tests/python").join(script))
        .args(args)
        .args(extra)
        .output()
        .expect("run python");
    assert!(
        out.status.success(),
        "{script} failed (script/install-test-tools installs transformers, peft and bitsandbytes):\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// PEFT's logits for `ids` with the adapter in `adapter` on the base `model_dir`.
pub fn peft_logits(model_dir: &Path, adapter: &Path, ids: &Tensor, extra: &[&str]) -> Tensor {
    let dir = tempfile::tempdir().unwrap();
    let ids_file = dir.path().join("ids.safetensors");
    let out = dir.path().join("logits.safetensors");
    write_safetensors(&ids_file, &[("input_ids".to_string(), ids.shallow_clone())]).unwrap();
    python(
        "peft_logits.py",
        &[model_dir, adapter, &ids_file, &out],
        extra,
    );
    let r = read_safetensors(&out).unwrap();
    get(&r, "logits").shallow_clone()
}

/// LoRA initialisation and dropout draw from libtorch's process-wide generator, and the test
/// harness runs tests on parallel threads: a test that seeds and draws holds this lock.
pub fn rng_lock() -> std::sync::MutexGuard<'static, ()> {
    static RNG: std::sync::Mutex<()> = std::sync::Mutex::new(());
    RNG.lock().unwrap_or_else(|e| e.into_inner())
}

/// Hooks that record what a training run reports.
#[derive(Default)]
pub struct Recorder {
    pub progress: Vec<tunewright_trainer::train::ProgressReport>,
    pub notes: Vec<(String, serde_json::Value)>,
}

impl tunewright_trainer::train::TrainHooks for Recorder {
    fn on_progress(&mut self, p: &tunewright_trainer::train::ProgressReport) {
        self.progress.push(p.clone());
    }
    fn on_checkpoint(&mut self, _: &tunewright_trainer::train::CheckpointRecord) {}
    fn on_note(&mut self, topic: &str, data: serde_json::Value) {
        self.notes.push((topic.to_string(), data));
    }
    fn control(&mut self) -> tunewright_trainer::train::Control {
        tunewright_trainer::train::Control::Continue
    }
}

/// A training spec on `family`'s fixture and the bundled SFT sample, `extra` over defaults
/// sized for a test (a few steps of a tiny model).
pub fn train_spec(
    family: &str,
    out: &Path,
    extra: serde_json::Value,
) -> tunewright_trainer::train::TrainSpec {
    let mut cfg = serde_json::json!({
        "base_model": fixture(family).display().to_string(),
        "device": "cpu", "per_device_train_batch_size": 4, "gradient_accumulation_steps": 1,
        "learning_rate": 0.01, "max_steps": 12, "max_seq_length": 128, "lora_r": 8, "lora_alpha": 16,
        "lora_dropout": 0.0, "checkpoint_every_steps": 1000, "warmup_steps": 0, "seed": 7,
        "target_modules": ["all-linear"]
    });
    for (k, v) in extra.as_object().unwrap() {
        cfg[k] = v.clone();
    }
    tunewright_trainer::train::TrainSpec {
        config: tunewright_schemas::config::TrainConfig::from_json(&cfg).unwrap(),
        model_dir: fixture(family),
        train_data: root().join("tests/fixtures/sft-sample.jsonl"),
        val_data: None,
        output_dir: out.join("adapter"),
        checkpoint_root: out.join("checkpoints"),
        resume_from: None,
    }
}
