//! Golden bytes: every event type and version has a committed payload fixture that must keep
//! decoding to the same value forever, and today's encoder must still produce those bytes.
//!
//! A new event type (or version) needs a sample below and its fixture: run
//! `TUNEWRIGHT_BLESS_GOLDEN=1 cargo test -p tunewright-events --test golden` once, review and
//! commit the new file. Existing fixtures are never rewritten.

use std::collections::BTreeSet;
use std::path::PathBuf;

use tunewright_events::event::*;
use tunewright_events::Event;
use tunewright_schemas::*;

fn pid() -> ProjectId {
    ProjectId([0x11; 16])
}
fn jid() -> JobId {
    JobId([0x22; 16])
}

fn failure() -> Failure {
    Failure {
        error_code: ErrorCode::TrainingOom,
        detail: "Out of memory during training: CUDA out of memory".into(),
        context: Json(serde_json::json!({"phase": "training", "per_device_train_batch_size": 8})),
        phase: Some(ErrorPhase::Training),
        cause_chain: vec!["CUDA out of memory. Tried to allocate 2.00 GiB".into()],
        log_tail: vec!["step 41 loss 1.93".into()],
        analysis: Some(Analysis {
            error_type: ErrorType::OomTraining,
            error_phase: ErrorPhase::Training,
            error_code: ErrorCode::TrainingOom,
            description: "The batch does not fit in GPU memory".into(),
            confidence: Confidence::High,
            suggestions: vec![Suggestion {
                action: "Halve the micro-batch".into(),
                detail: "batch 8 -> 4, accumulation 2 -> 4".into(),
                config_changes: Json(
                    serde_json::json!({"per_device_train_batch_size": 4, "gradient_accumulation_steps": 4}),
                ),
            }],
        }),
    }
}

/// One sample per event type, current version.
fn samples() -> Vec<Event> {
    vec![
        ProjectCreated {
            project_id: pid(),
            name: "support-bot".into(),
        }
        .into(),
        ProjectDeleted { project_id: pid() }.into(),
        ProjectStatusChanged {
            project_id: pid(),
            from: ProjectStatus::ReadyToTrain,
            to: ProjectStatus::Training,
            job_id: Some(jid()),
            reason: "train job started".into(),
        }
        .into(),
        FileUploaded {
            project_id: pid(),
            file_id: FileId([0x33; 16]),
            name: "manual.md".into(),
            media_type: "text/markdown".into(),
            size_bytes: 1234,
            sha256: "ab".repeat(32),
            stored_path: "projects/p/files/f".into(),
        }
        .into(),
        FileDeleted {
            project_id: pid(),
            file_id: FileId([0x33; 16]),
        }
        .into(),
        DatasetImported {
            project_id: pid(),
            dataset_id: DatasetId([0x44; 16]),
            format: "alpaca".into(),
            num_examples: 300,
            size_bytes: 45_000,
            sha256: "cd".repeat(32),
            stored_path: "projects/p/datasets/d.jsonl".into(),
            source: "upload".into(),
        }
        .into(),
        SplitCreated {
            project_id: pid(),
            split_id: SplitId([0x55; 16]),
            name: "default".into(),
            dataset_id: DatasetId([0x44; 16]),
            ratios: vec![("train".into(), 0.8), ("val".into(), 0.2)],
            seed: 42,
            counts: vec![("train".into(), 240), ("val".into(), 60)],
        }
        .into(),
        JobCreated {
            job_id: jid(),
            project_id: pid(),
            kind: JobKind::Train,
            config: Json(serde_json::json!({"learning_rate": 0.0002, "lora_r": 8})),
            max_retries: 0,
            queue_timeout_ms: 3_600_000,
        }
        .into(),
        JobAttemptStarted {
            job_id: jid(),
            attempt: 1,
        }
        .into(),
        JobAttemptFailed {
            job_id: jid(),
            attempt: 1,
            failure: failure(),
            will_retry: false,
        }
        .into(),
        JobRetryScheduled {
            job_id: jid(),
            next_attempt: 2,
            delay_ms: 1500,
            due_at_ms: 1_795_363_667_000,
            reason: ErrorCode::OllamaApiTimeout,
        }
        .into(),
        JobSucceeded {
            job_id: jid(),
            attempt: 1,
            result: Json(serde_json::json!({"final_loss": 0.42})),
        }
        .into(),
        JobFailed {
            job_id: jid(),
            failure: failure(),
        }
        .into(),
        JobCancelled {
            job_id: jid(),
            from_status: JobStatus::Running,
            reason: "user request".into(),
        }
        .into(),
        JobCancelRequested {
            job_id: jid(),
            attempt: 2,
            reason: "cancelled by the user".into(),
        }
        .into(),
        JobInterrupted {
            job_id: jid(),
            attempt: 1,
            reason: "service restarted".into(),
        }
        .into(),
        JobProgress {
            job_id: jid(),
            phase: "training".into(),
            step: 10,
            total_steps: 100,
            loss: Some(1.5),
            learning_rate: Some(0.0002),
            grad_norm: Some(0.9),
            tokens_per_sec: Some(1234.5),
            memory_bytes: Some(1 << 30),
            extra: Json(serde_json::json!({"epoch": 0.1})),
        }
        .into(),
        JobNote {
            job_id: jid(),
            topic: "preflight".into(),
            data: Json(serde_json::json!({"dropped": {"duplicate": 2}})),
        }
        .into(),
        ArtifactRecorded {
            job_id: jid(),
            name: "adapter_model.safetensors".into(),
            path: "jobs/j/export/adapter_model.safetensors".into(),
            sha256: "ef".repeat(32),
            size_bytes: 99_999,
        }
        .into(),
        CheckpointSaved {
            job_id: jid(),
            step: 50,
            dir: "jobs/j/checkpoints/step-50".into(),
            files: vec![FileDigest {
                name: "lora.safetensors".into(),
                sha256: "01".repeat(32),
                size_bytes: 4096,
            }],
        }
        .into(),
        CheckpointRejected {
            job_id: jid(),
            step: 50,
            reason: "sha256 mismatch".into(),
        }
        .into(),
        TrainingResumed {
            job_id: jid(),
            attempt: 2,
            resumed_from_step: 50,
        }
        .into(),
        ResumeLinked {
            job_id: jid(),
            from_job: JobId([0x33; 16]),
            from_step: Some(50),
            changed_keys: vec!["per_device_train_batch_size".into()],
        }
        .into(),
        TrainingRemediated {
            job_id: jid(),
            cause: ErrorCode::TrainingOom,
            action: "halved micro-batch".into(),
            config_changes: Json(serde_json::json!({"per_device_train_batch_size": 4})),
        }
        .into(),
        GenerationChunkDone {
            job_id: jid(),
            chunk_index: 3,
            examples: 5,
            repair_step: "strip_fences".into(),
        }
        .into(),
        ServiceStarted {
            version: "0.1.0".into(),
            pid: 4242,
            recovered_events: 17,
        }
        .into(),
        ServiceStopped {
            reason: "SIGTERM".into(),
        }
        .into(),
        ActorFailed {
            actor: "scheduler".into(),
            error: "panicked".into(),
            restart_count: 1,
        }
        .into(),
        ActorRestarted {
            actor: "scheduler".into(),
            restart_count: 1,
            backoff_ms: 100,
        }
        .into(),
        SupervisorGaveUp {
            actor: "scheduler".into(),
            restarts: 5,
            window_ms: 60_000,
        }
        .into(),
    ]
}

fn fixture(type_id: u16, version: u16) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join(format!("tests/fixtures/golden/{type_id:03}_v{version}.bin"))
}

#[test]
fn every_event_type_has_a_sample() {
    let sampled: BTreeSet<u16> = samples().iter().map(|e| e.type_id().0).collect();
    for (id, name) in Event::TYPES {
        assert!(
            sampled.contains(id),
            "event type {id} ({name}) has no golden sample: add one"
        );
    }
}

#[test]
fn committed_bytes_decode_to_the_sample_and_encode_identically() {
    let bless = std::env::var_os("TUNEWRIGHT_BLESS_GOLDEN").is_some();
    for sample in samples() {
        let (type_id, version, bytes) = encode_payload(&sample).unwrap();
        let path = fixture(type_id, version);
        if !path.exists() {
            assert!(
                bless,
                "missing golden fixture {} for {}",
                path.display(),
                sample.type_name()
            );
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(&path, &bytes).unwrap();
        }
        let golden = std::fs::read(&path).unwrap();
        let decoded = decode_payload(type_id, version, &golden)
            .unwrap_or_else(|e| panic!("{} no longer decodes: {e}", path.display()));
        assert_eq!(
            decoded,
            sample,
            "{} decodes to a different value",
            path.display()
        );
        assert_eq!(
            bytes,
            golden,
            "{} encodes differently now",
            sample.type_name()
        );
    }
}

#[test]
fn damaged_payloads_are_errors_not_panics() {
    for sample in samples() {
        let (type_id, version, bytes) = encode_payload(&sample).unwrap();
        for cut in 0..bytes.len() {
            // Truncations must never decode to a different event silently or panic.
            if let Ok(e) = decode_payload(type_id, version, &bytes[..cut]) {
                panic!("truncated {} decoded as {e:?}", sample.type_name());
            }
        }
        let mut longer = bytes.clone();
        longer.push(0);
        assert!(
            decode_payload(type_id, version, &longer).is_err(),
            "trailing byte accepted"
        );
        assert!(decode_payload(type_id, version + 1, &bytes).is_err());
        assert!(decode_payload(9999, 1, &bytes).is_err());
    }
}

/// Released versions that are no longer current: their committed bytes still decode, upcast to
/// today's payload (a v1 failure's phase comes from its context).
#[test]
fn old_versions_decode_and_upcast() {
    let samples = samples();
    for (type_id, version) in [(42u16, 1u16), (45, 1)] {
        let golden = std::fs::read(fixture(type_id, version)).unwrap();
        let decoded = decode_payload(type_id, version, &golden)
            .unwrap_or_else(|e| panic!("{type_id} v{version}: {e}"));
        let expected = samples
            .iter()
            .find(|e| e.type_id().0 == type_id)
            .expect("a sample of the type");
        assert_eq!(
            &decoded, expected,
            "{type_id} v{version} upcasts to today's sample"
        );
        assert_ne!(
            expected.type_id().1,
            version,
            "{type_id}: v{version} is an old version"
        );
    }
}
