//! `tunewright analyze`, the real binary: arguments passed as a vector (never a shell), from
//! any directory, with texts full of quotes, `$()`, backticks and newlines; the failure from
//! `--error`, a file or standard input; phase words as people write them; and the LLM second
//! opinion against a real HTTP fake on 127.0.0.1.

#[path = "../actors/tests/support/fake_llm.rs"]
mod fake_llm;

use std::io::Write;
use std::process::{Command, Output, Stdio};

use fake_llm::{FakeLlm, Reply};
use serde_json::{json, Value};

const LLM_ENV: [&str; 3] = [
    "TUNEWRIGHT_LLM_BASE_URL",
    "TUNEWRIGHT_LLM_MODEL",
    "TUNEWRIGHT_LLM_API_KEY",
];

/// The binary in a fresh directory, with no LLM settings inherited, `env` set and `stdin`
/// written to its standard input.
fn run(args: &[&str], env: &[(&str, &str)], stdin: Option<&[u8]>) -> Output {
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_tunewright"));
    cmd.arg("analyze")
        .args(args)
        .current_dir(dir.path())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for k in LLM_ENV {
        cmd.env_remove(k);
    }
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().unwrap();
    let mut input = child.stdin.take().unwrap();
    if let Some(bytes) = stdin {
        // A child that refuses early closes its end: that is not the test's failure.
        let _ = input.write_all(bytes);
    }
    drop(input);
    child.wait_with_output().unwrap()
}

fn analyze(args: &[&str]) -> Output {
    run(args, &[], None)
}

fn json_of(o: &Output) -> Value {
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    serde_json::from_slice(&o.stdout).unwrap()
}

const TRACEBACK: &str = r#"Traceback (most recent call last):
  File "train.py", line 12, in <module>
    trainer.train()
torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 2.00 GiB. GPU 0 has a total capacity of 23.65 GiB"#;

#[test]
fn oom_with_a_config_gives_computed_suggestions() {
    let v = json_of(&analyze(&[
        "--job-id",
        "test",
        "--error",
        "CUDA out of memory. Tried to allocate 2.00 GiB. GPU 0 has a total capacity of 79.18 GiB",
        "--config",
        r#"{"per_device_train_batch_size": 8, "gradient_accumulation_steps": 2, "max_seq_length": 2048}"#,
        "--phase",
        "training",
    ]));
    assert_eq!(v["job_id"], "test");
    assert_eq!(v["error_type"], "oom_training");
    assert_eq!(v["error_phase"], "training");
    assert_eq!(v["error_code"], "TRAINING_OOM");
    assert_eq!(v["confidence"], "high");
    assert_eq!(v["source"], "rules");
    assert!(v.get("model").is_none());
    assert_eq!(
        v["suggestions"][0]["config_changes"],
        json!({"per_device_train_batch_size": 4, "gradient_accumulation_steps": 4})
    );
    assert!(v["description"].as_str().unwrap().contains("2.00 GiB"));
}

#[test]
fn shell_metacharacters_are_plain_text() {
    let nasty = "RuntimeError: \"loss\" is NaN at step 12 $(rm -rf /) `reboot` 'quoted'\n  next line; echo pwned";
    let v = json_of(&analyze(&[
        "--error",
        nasty,
        "--config",
        r#"{"learning_rate": 0.002, "note": "it's \"fine\" $(x)"}"#,
    ]));
    assert_eq!(v["error_type"], "diverged");
    assert_eq!(
        v["suggestions"][0]["config_changes"]["learning_rate"],
        0.0002
    );
}

#[test]
fn phase_words_people_use_are_understood_and_reported() {
    for (word, phase) in [
        ("start-up", "preflight"),
        ("Pre-Processing", "data_load"),
        ("tokenizing", "data_load"),
        ("resuming", "checkpoint"),
        ("data generation", "generation"),
        ("VALIDATION", "evaluation"),
        ("saving", "export"),
        ("model_load", "model_load"),
    ] {
        let v = json_of(&analyze(&[
            "--error",
            "something went wrong",
            "--phase",
            word,
        ]));
        assert_eq!(v["error_phase"], phase, "{word}");
        assert_eq!(
            v["phase_hint"],
            json!({"given": word, "understood": phase}),
            "{word}"
        );
    }
}

#[test]
fn an_unknown_phase_word_is_a_hint_not_a_refusal() {
    let v = json_of(&analyze(&["--error", TRACEBACK, "--phase", "sometime"]));
    assert_eq!(
        v["phase_hint"],
        json!({"given": "sometime", "understood": null})
    );
    // The text decides as if no phase had been given.
    assert_eq!(v["error_type"], "oom_training");
    assert_eq!(v["error_phase"], "training");
}

#[test]
fn the_failure_can_come_from_a_file_or_standard_input() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("failure.log");
    std::fs::write(&path, TRACEBACK).unwrap();
    let from_file = json_of(&analyze(&["--error-file", path.to_str().unwrap()]));
    let from_stdin = json_of(&run(
        &["--error-file", "-"],
        &[],
        Some(TRACEBACK.as_bytes()),
    ));
    let from_arg = json_of(&analyze(&["--error", TRACEBACK]));
    assert_eq!(from_file["error_type"], "oom_training");
    assert_eq!(from_file, from_arg);
    assert_eq!(from_stdin, from_arg);
}

#[test]
fn exactly_one_source_of_failure_text_is_required() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("failure.log");
    std::fs::write(&path, TRACEBACK).unwrap();
    for args in [
        vec!["--error", "x", "--error-file", path.to_str().unwrap()],
        vec!["--phase", "training"],
    ] {
        let o = analyze(&args);
        assert_eq!(o.status.code(), Some(2), "{args:?}");
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(
            err.contains("--error") && err.contains("--error-file"),
            "{args:?}: {err}"
        );
        assert!(o.stdout.is_empty());
    }
}

#[test]
fn texts_over_the_size_limit_are_refused_with_a_clear_message() {
    let big = vec![b'x'; 1024 * 1024 + 1];
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("huge.log");
    std::fs::write(&path, &big).unwrap();
    for o in [
        analyze(&["--error-file", path.to_str().unwrap()]),
        run(&["--error-file", "-"], &[], Some(&big)),
    ] {
        assert_eq!(o.status.code(), Some(2));
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(err.contains("over the limit of 1048576 bytes"), "{err}");
    }
    // Exactly at the limit is fine.
    std::fs::write(&path, &big[1..]).unwrap();
    assert!(analyze(&["--error-file", path.to_str().unwrap()])
        .status
        .success());
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
        (vec!["--error", "x", "--code", "NOPE"], "--code"),
        (
            vec!["--error-file", "/nonexistent/failure.log"],
            "--error-file /nonexistent/failure.log",
        ),
    ] {
        let o = analyze(&args);
        assert_eq!(o.status.code(), Some(2), "{args:?}");
        assert!(
            String::from_utf8_lossy(&o.stderr).contains(needle),
            "{args:?}"
        );
    }
}

/// The binary with `--second-opinion`, its LLM settings pointing at `fake`; run off the
/// runtime that serves the fake.
async fn second_opinion(fake: &FakeLlm, text: &str) -> Value {
    let base = fake.base_url.clone();
    let text = text.to_string();
    let o = tokio::task::spawn_blocking(move || {
        run(
            &["--error", &text, "--second-opinion"],
            &[
                ("TUNEWRIGHT_LLM_BASE_URL", base.as_str()),
                ("TUNEWRIGHT_LLM_MODEL", "judge-model"),
            ],
            None,
        )
    })
    .await
    .unwrap();
    json_of(&o)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn second_opinion_answers_what_the_rules_cannot_read_and_says_so() {
    let fake = FakeLlm::start().await;
    fake.push([Reply::Content(
        r#"{"error_type": "dataset_format", "error_phase": "data_load", "confidence": "high",
            "description": "A dataset line lacks the field the loader expects.",
            "suggestions": [{"action": "Fix the line", "detail": "add the field",
                             "config_changes": {"no_such_key": 1}}]}"#
            .into(),
    )]);
    let v = second_opinion(&fake, "frobnicator refused record 12 (state 0x2a)").await;
    assert_eq!(v["source"], "llm");
    assert_eq!(v["model"], "judge-model");
    assert_eq!(v["error_type"], "dataset_format");
    assert_eq!(v["confidence"], "medium");
    // The suggestion naming a key the config lacks was dropped, never shown.
    assert!(!v.to_string().contains("no_such_key"));
    assert!(v["notes"][0].as_str().unwrap().starts_with("dropped"));
    assert_eq!(fake.requests()[0].model, "judge-model");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn second_opinion_falls_back_to_the_rules_and_is_not_asked_when_not_needed() {
    let fake = FakeLlm::start().await;
    // A refused key is not retried: the rules' answer stands at once.
    fake.push([Reply::Status(401, None)]);
    let text = "frobnicator refused record 12 (state 0x2a)";
    let v = second_opinion(&fake, text).await;
    assert_eq!(v["source"], "rules");
    assert_eq!(v["error_type"], "unknown");
    assert!(v.get("model").is_none());
    assert!(v["notes"][0].as_str().unwrap().contains("the LLM failed"));

    let v = second_opinion(&fake, TRACEBACK).await;
    assert_eq!(v["source"], "rules");
    assert_eq!(v["error_type"], "oom_training");
    assert_eq!(fake.count(), 1, "a recognised failure is not sent");
}
