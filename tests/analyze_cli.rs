//! `tunewright analyze` as a program calls it: arguments passed as a vector (never a shell), from
//! any directory, with texts full of quotes, `$()`, backticks and newlines.

use std::process::Command;

fn analyze(args: &[&str]) -> std::process::Output {
    let dir = tempfile::tempdir().unwrap();
    Command::new(env!("CARGO_BIN_EXE_tunewright"))
        .arg("analyze")
        .args(args)
        .current_dir(dir.path())
        .output()
        .unwrap()
}

#[test]
fn oom_with_a_config_gives_computed_suggestions() {
    let o = analyze(&[
        "--job-id",
        "test",
        "--error",
        "CUDA out of memory. Tried to allocate 2.00 GiB. GPU 0 has a total capacity of 79.18 GiB",
        "--config",
        r#"{"per_device_train_batch_size": 8, "gradient_accumulation_steps": 2, "max_seq_length": 2048}"#,
        "--phase",
        "training",
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["job_id"], "test");
    assert_eq!(v["error_type"], "oom_training");
    assert_eq!(v["error_phase"], "training");
    assert_eq!(v["error_code"], "TRAINING_OOM");
    assert_eq!(v["confidence"], "high");
    assert_eq!(
        v["suggestions"][0]["config_changes"],
        serde_json::json!({"per_device_train_batch_size": 4, "gradient_accumulation_steps": 4})
    );
    assert!(v["description"].as_str().unwrap().contains("2.00 GiB"));
}

#[test]
fn shell_metacharacters_are_plain_text() {
    let nasty = "RuntimeError: \"loss\" is NaN at step 12 $(rm -rf /) `reboot` 'quoted'\n  next line; echo pwned";
    let o = analyze(&[
        "--error",
        nasty,
        "--config",
        r#"{"learning_rate": 0.002, "note": "it's \"fine\" $(x)"}"#,
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["error_type"], "diverged");
    assert_eq!(
        v["suggestions"][0]["config_changes"]["learning_rate"],
        0.0002
    );
}

#[test]
fn bad_arguments_exit_2_with_a_message() {
    for (args, needle) in [
        (
            vec!["--error", "x", "--config", "{not json"],
            "--config is not valid JSON",
        ),
        (
            vec!["--error", "x", "--config", "[1,2]"],
            "must be a JSON object",
        ),
        (vec!["--error", "x", "--phase", "sometime"], "--phase"),
        (vec!["--error", "x", "--code", "NOPE"], "--code"),
    ] {
        let o = analyze(&args);
        assert_eq!(o.status.code(), Some(2), "{args:?}");
        assert!(
            String::from_utf8_lossy(&o.stderr).contains(needle),
            "{args:?}"
        );
    }
}
