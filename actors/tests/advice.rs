//! Advice that works (docs/errors.md, "The failure analysis"): over the analyzer's corpus of
//! real failure texts and generated job configs, every suggestion's `config_changes`, applied
//! to the config of the job it was made for, gives a config that admission accepts; and every
//! config-like name a suggestion or a catalog message mentions is a field the job configs have
//! (or one of the few other names listed here, each a file, a tool's setting or a key of a
//! file tunewright reads).

use std::collections::BTreeSet;
use std::sync::OnceLock;

use proptest::prelude::*;
use regex::Regex;
use serde_json::{json, Value};
use tunewright_actors::admission::offline;
use tunewright_actors::analyzer::{analyze, analyze_job_failure, AnalyzeInput};
use tunewright_events::event::{JobCreated, ProjectCreated};
use tunewright_events::projection::JobView;
use tunewright_events::{Event, State, StoredEvent, StreamId};
use tunewright_schemas::config::{with_changes, JobConfig};
use tunewright_schemas::*;

struct Case {
    error: String,
    phase: Option<ErrorPhase>,
}

fn corpus() -> &'static [Case] {
    static CASES: OnceLock<Vec<Case>> = OnceLock::new();
    CASES.get_or_init(|| {
        include_str!("fixtures/analyzer_corpus.jsonl")
            .lines()
            .map(|l| {
                let v: Value = serde_json::from_str(l).unwrap();
                Case {
                    error: v["error"].as_str().unwrap().to_string(),
                    phase: v["phase"].as_str().and_then(|p| p.parse().ok()),
                }
            })
            .collect()
    })
}

/// A valid train config over the ranges people use.
fn train_config() -> impl Strategy<Value = Value> {
    (
        (1i64..=64, 1i64..=32, 1u32..=9, 8i64..=8192),
        (1i64..=512, 1u32..=4, 0u64..=2000, 0u32..=4),
        (1usize..=8, any::<bool>(), any::<bool>(), 0u8..3),
    )
        .prop_map(
            |(
                (batch, accum, lr_exp, seq),
                (r, alpha_mult, warmup, clip),
                (keep, q4, ckpt, dev),
            )| {
                let device = ["auto", "cpu", "cuda"][dev as usize];
                json!({
                    "base_model": "/models/tiny",
                    "per_device_train_batch_size": batch,
                    "gradient_accumulation_steps": accum,
                    "learning_rate": 10f64.powi(-(lr_exp as i32)),
                    "max_seq_length": seq,
                    "lora_r": r,
                    "lora_alpha": (r * alpha_mult as i64) as f64,
                    "warmup_steps": warmup,
                    "max_grad_norm": clip as f64,
                    "keep_checkpoints": keep,
                    "load_in_4bit": q4,
                    "gradient_checkpointing": ckpt,
                    "device": device,
                })
            },
        )
}

/// A valid generation config.
fn generation_config() -> impl Strategy<Value = Value> {
    (64usize..=8192, 1usize..=50, 1u64..=3600).prop_map(|(chunk, per, timeout)| {
        json!({
            "chunk_tokens": chunk,
            "chunk_overlap_tokens": chunk / 8,
            "examples_per_chunk": per,
            "request_timeout_secs": timeout,
        })
    })
}

/// The job of `kind` with `config`, as the projection holds it.
fn job(kind: JobKind, config: &Value) -> JobView {
    let (p, j) = (ProjectId::new(), JobId::new());
    let events = [
        Event::ProjectCreated(ProjectCreated {
            project_id: p,
            name: "p".into(),
        }),
        Event::JobCreated(JobCreated {
            job_id: j,
            project_id: p,
            kind,
            config: Json(config.clone()),
            max_retries: 0,
            queue_timeout_ms: 1000,
        }),
    ];
    let stored: Vec<StoredEvent> = events
        .into_iter()
        .enumerate()
        .map(|(i, e)| StoredEvent {
            seq: i as u64 + 1,
            ts_ms: 0,
            stream: e.stream(),
            event: e,
        })
        .collect();
    let _ = StreamId::Service;
    State::from_events(&stored).jobs[&j].clone()
}

/// The failure a job of `kind` recorded with the corpus text `case`.
fn failure(kind: JobKind, case: &Case) -> Failure {
    let code = match kind {
        JobKind::Train => ErrorCode::TrainingInterrupted,
        _ => ErrorCode::DatasetGenerationFailed,
    };
    let mut f = Failure::new(code, ctx! {"reason" => "see the cause"}).caused_by(&case.error);
    f.phase = case.phase;
    f
}

/// Whether every change of `a`'s suggestions (those naming only fields of `kind`'s config, when
/// `only_its_fields`) leaves `config` one admission accepts.
fn check(
    kind: JobKind,
    config: &Value,
    a: &Analysis,
    gpu: Option<bool>,
    only_its_fields: bool,
) -> Result<(), String> {
    let own = fields(kind);
    for s in &a.suggestions {
        let keys = s
            .config_changes
            .0
            .as_object()
            .map(|c| c.keys().cloned().collect::<Vec<_>>());
        if only_its_fields && !keys.unwrap_or_default().iter().all(|k| own.contains(k)) {
            continue;
        }
        let changed = with_changes(config, &s.config_changes.0);
        if let Err(f) = offline(kind, &changed, gpu) {
            return Err(format!(
                "{} ({}): {} -> {}",
                s.action, s.config_changes.0, f.error_code, f.detail
            ));
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 1200, ..ProptestConfig::default() })]

    /// The analyzer's own suggestions for a training (before any filter) give values its
    /// config accepts, and those recorded with a job's failure are admitted on this machine
    /// (no GPU: a `device: "cuda"` suggestion is not offered; an LLM setting is not offered to
    /// a training).
    #[test]
    fn suggestions_for_a_training_are_admitted(config in train_config(), i in any::<prop::sample::Index>()) {
        let case = &corpus()[i.index(corpus().len())];
        let raw = analyze(&AnalyzeInput {
            error_text: case.error.clone(),
            phase: case.phase,
            config: Some(config.clone()),
            code: None,
        });
        let raw_ok = check(JobKind::Train, &config, &raw, None, true);
        prop_assert!(raw_ok.is_ok(), "{}: {:?}", case.error, raw_ok);
        // The job was admitted: on a machine with a GPU when it asked for one, else on one
        // without (where a `device: "cuda"` suggestion must not be offered).
        let gpu = Some(config["device"] == "cuda");
        let job = job(JobKind::Train, &config);
        let recorded = analyze_job_failure(failure(JobKind::Train, case), &job, gpu);
        let recorded_ok = check(JobKind::Train, &config, recorded.analysis.as_ref().unwrap(), gpu, false);
        prop_assert!(recorded_ok.is_ok(), "{}: {:?}", case.error, recorded_ok);
    }

    #[test]
    fn suggestions_for_a_dataset_job_are_admitted(config in generation_config(), i in any::<prop::sample::Index>()) {
        let case = &corpus()[i.index(corpus().len())];
        let job = job(JobKind::DatasetGenerate, &config);
        let recorded = analyze_job_failure(failure(JobKind::DatasetGenerate, case), &job, None);
        let ok = check(JobKind::DatasetGenerate, &config, recorded.analysis.as_ref().unwrap(), None, false);
        prop_assert!(ok.is_ok(), "{}: {:?}", case.error, ok);
    }
}

/// An `evaluate` job's failure is analysed in the evaluation phase: one the text does not
/// explain is described with that phase, and an out-of-memory is the evaluation's (its own
/// type and suggestions), whether or not the failure carried its phase.
#[test]
fn an_evaluation_failure_is_described_in_the_evaluation_phase() {
    let config = json!({"train_job": JobId::new().to_string(), "checkpoint_step": 4});
    let job = job(JobKind::Evaluate, &config);
    let f = Failure::new(
        ErrorCode::EvaluationFailed,
        ctx! {"reason" => "the generations did not serialise: key must be a string"},
    );
    let a = analyze_job_failure(f, &job, None).analysis.unwrap();
    assert_eq!(a.error_phase, ErrorPhase::Evaluation, "{a:?}");
    assert!(
        a.description.contains("(phase: evaluation)"),
        "{}",
        a.description
    );
    let died = Failure::new(
        ErrorCode::EvaluationFailed,
        ctx! {"reason" => "the evaluation worker was killed by signal 9 (SIGKILL)"},
    );
    let a = analyze_job_failure(died, &job, None).analysis.unwrap();
    assert_eq!(a.error_phase, ErrorPhase::Evaluation, "{a:?}");
    let oom = Failure::new(
        ErrorCode::TrainingOom,
        ctx! {"phase" => "evaluation", "reason" => "CPU allocator: out of memory"},
    );
    let a = analyze_job_failure(oom, &job, None).analysis.unwrap();
    assert_eq!(a.error_phase, ErrorPhase::Evaluation, "{a:?}");
    assert_eq!(a.error_type, ErrorType::OomEval, "{a:?}");
    assert!(
        a.description.contains("during evaluation"),
        "{}",
        a.description
    );
}

/// The fields a config of `kind` has, as its parser lists them when refusing an unknown one.
fn fields(kind: JobKind) -> BTreeSet<String> {
    let mut c = match kind {
        JobKind::Train => json!({"base_model": "/m"}),
        _ => json!({}),
    };
    c["no_such_field"] = json!(1);
    let detail = JobConfig::parse(kind, &c).unwrap_err().detail;
    let re = Regex::new(r"`([a-z0-9_]+)`").unwrap();
    re.captures_iter(&detail)
        .map(|c| c[1].to_string())
        .filter(|f| f != "no_such_field")
        .collect()
}

/// Names with an underscore that are not job config fields, each with what it is.
const OTHER_NAMES: &[(&str, &str)] = &[
    ("adapter_config", "the PEFT adapter's config file"),
    ("tokenizer_config", "the tokenizer's config file"),
    ("base_model_name_or_path", "a key of adapter_config.json"),
    ("chat_template", "a key of tokenizer_config.json"),
    ("eos_token", "a key of tokenizer_config.json"),
    ("pad_token", "a key of tokenizer_config.json"),
    (
        "trainer_state",
        "a checkpoint file of the Hugging Face Trainer",
    ),
    ("model_type", "a key of config.json"),
    ("vocab_size", "a key of config.json"),
    ("trust_remote_code", "a transformers loading option"),
    ("num_workers", "a data loader setting of other stacks"),
    ("nccl_debug", "NCCL's environment"),
    ("cuda_launch_blocking", "CUDA's environment"),
    ("cuda_visible_devices", "CUDA's environment"),
    ("pytorch_cuda_alloc_conf", "PyTorch's environment"),
    ("max_split_size_mb", "a PyTorch allocator setting"),
    ("expandable_segments", "a PyTorch allocator setting"),
    ("job_id", "the job's id"),
    ("weight_map", "a key of a sharded checkpoint's index"),
    ("num_ctx", "an Ollama model option"),
    ("q_proj", "a module name, a value of target_modules"),
    ("k_proj", "a module name, a value of target_modules"),
    ("v_proj", "a module name, a value of target_modules"),
    ("o_proj", "a module name, a value of target_modules"),
    ("gate_proj", "a module name, a value of target_modules"),
    ("up_proj", "a module name, a value of target_modules"),
    ("down_proj", "a module name, a value of target_modules"),
    ("qkv_proj", "a module name, a value of target_modules"),
    ("gate_up_proj", "a module name, a value of target_modules"),
];

#[test]
fn every_config_name_that_advice_mentions_exists() {
    let mut known: BTreeSet<String> = fields(JobKind::Train);
    known.extend(fields(JobKind::DatasetGenerate));
    known.extend(fields(JobKind::Export));
    known.extend(fields(JobKind::Evaluate));
    known.extend(OTHER_NAMES.iter().map(|(n, _)| n.to_string()));
    let name = Regex::new(r"\b[a-z][a-z0-9]*(?:_[a-z0-9]+)+\b").unwrap();
    let mut texts: Vec<(String, String)> = ErrorCode::ALL
        .iter()
        .map(|c| (format!("catalog {c}"), c.entry().template.to_string()))
        .collect();
    let configs = [
        json!({"base_model": "/m", "per_device_train_batch_size": 8, "gradient_accumulation_steps": 2,
               "max_seq_length": 2048, "lora_r": 64, "learning_rate": 0.01, "keep_checkpoints": 3}),
        json!({"chunk_tokens": 2048, "request_timeout_secs": 60}),
    ];
    for case in corpus() {
        for config in &configs {
            let a = analyze(&AnalyzeInput {
                error_text: case.error.clone(),
                phase: case.phase,
                config: Some(config.clone()),
                code: None,
            });
            for s in a.suggestions {
                texts.push((
                    format!("{} ({})", s.action, a.error_type),
                    format!("{} {}", s.action, s.detail),
                ));
            }
        }
    }
    let mut unknown = BTreeSet::new();
    // A catalog template's `{field}` is a context field, filled in: not a name users set.
    let template_field = Regex::new(r"\{[a-z_]+\}").unwrap();
    for (whence, text) in &texts {
        let text = template_field.replace_all(text, "");
        // File names (`tokenizer_config.json`) name files, not fields: their stem is checked.
        for m in name.find_iter(&text) {
            let n = m.as_str().to_ascii_lowercase();
            if !known.contains(&n) {
                unknown.insert(format!("{n} in {whence}: {text}"));
            }
        }
    }
    assert!(
        unknown.is_empty(),
        "names no config has:\n{}",
        unknown.into_iter().collect::<Vec<_>>().join("\n")
    );
}
