//! A checkpoint written to a full disk: the run fails with `STORAGE_FULL` in the checkpoint
//! phase, leaves no `.step-N.tmp-PID/` behind and keeps the last good checkpoint, from which a
//! run resumes once space is back (docs/storage.md). The disk is a tmpfs of a few MB the test
//! mounts (we run as root; without the right to mount, the test says so and passes).

use std::path::{Path, PathBuf};
use std::process::Command;

use tunewright_schemas::config::TrainConfig;
use tunewright_schemas::{ErrorCode, ErrorPhase};
use tunewright_trainer::train::{
    train, CheckpointRecord, Control, ProgressReport, TrainHooks, TrainSpec,
};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

struct Tmpfs(tempfile::TempDir);

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(self.0.path()).status();
    }
}

fn mount(size: &str) -> Option<Tmpfs> {
    let dir = tempfile::tempdir().ok()?;
    let ok = Command::new("mount")
        .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
        .arg(dir.path())
        .status()
        .is_ok_and(|s| s.success());
    if !ok {
        eprintln!("NOTICE: cannot mount a tmpfs here (not root?): full-disk test skipped");
        return None;
    }
    Some(Tmpfs(dir))
}

fn spec(dir: &Path) -> TrainSpec {
    let cfg = serde_json::json!({
        "base_model": root().join("tests/fixtures/tiny-llama").display().to_string(),
        "device": "cpu", "per_device_train_batch_size": 4, "gradient_accumulation_steps": 1,
        "learning_rate": 0.005, "max_steps": 6, "max_seq_length": 64, "lora_r": 4, "lora_alpha": 8,
        "checkpoint_every_steps": 2, "warmup_steps": 0, "seed": 7
    });
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

/// Fills the disk as soon as the first checkpoint is written.
struct FillAfterFirst {
    disk: PathBuf,
    checkpoints: Vec<CheckpointRecord>,
}

impl TrainHooks for FillAfterFirst {
    fn on_progress(&mut self, _: &ProgressReport) {}
    fn on_checkpoint(&mut self, c: &CheckpointRecord) {
        self.checkpoints.push(c.clone());
        if self.checkpoints.len() == 1 {
            use std::io::Write;
            let mut f = std::fs::File::create(self.disk.join("filler")).unwrap();
            while f.write_all(&[0xab; 4096]).is_ok() {}
            while f.write_all(&[1]).is_ok() {}
        }
    }
    fn on_note(&mut self, _: &str, _: serde_json::Value) {}
    fn control(&mut self) -> Control {
        Control::Continue
    }
}

#[test]
fn a_full_disk_at_a_checkpoint_is_storage_full_leaves_no_temp_dir_and_resumes_later() {
    let Some(fs) = mount("6m") else { return };
    let disk = fs.0.path().to_path_buf();
    let mut hooks = FillAfterFirst {
        disk: disk.clone(),
        checkpoints: Vec::new(),
    };
    let err = train(&spec(&disk), &mut hooks).expect_err("the second checkpoint fails");
    let failure = err.to_failure();
    assert_eq!(failure.error_code, ErrorCode::StorageFull, "{failure:?}");
    assert_eq!(failure.phase, Some(ErrorPhase::Checkpoint), "{failure:?}");
    assert!(failure.context.0["path"]
        .as_str()
        .unwrap()
        .starts_with(disk.to_str().unwrap()));
    assert!(failure.context.0["free_bytes"].is_string());
    assert!(ErrorCode::StorageFull.is_retryable());

    let left: Vec<String> = std::fs::read_dir(disk.join("checkpoints"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(
        left,
        vec!["step-2".to_string()],
        "only the good checkpoint is left"
    );

    // Space back: a run resumes from the last good checkpoint and finishes.
    std::fs::remove_file(disk.join("filler")).unwrap();
    let mut s = spec(&disk);
    s.resume_from = Some(hooks.checkpoints[0].dir.clone());
    let mut again = FillAfterFirst {
        disk: PathBuf::from("/nonexistent-no-fill"),
        checkpoints: vec![hooks.checkpoints[0].clone()],
    };
    let out = train(&s, &mut again).unwrap();
    assert_eq!(out.resumed_from_step, Some(2));
    assert_eq!(out.steps, 6);
    let temp_left = std::fs::read_dir(&disk)
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .file_name()
                .to_string_lossy()
                .contains(".tmp-")
        })
        .count();
    assert_eq!(temp_left, 0);
    assert!(disk.join("adapter/adapter_model.safetensors").exists());
}
