//! Evaluation: loss, perplexity and token accuracy over a split's answers equal transformers +
//! PEFT's on the same tokenized examples; base + adapter and merged weights give the same
//! figures; the generations are written as JSONL. A training checkpoint scores exactly as the
//! adapter of the same tensors, and a checkpoint whose files changed is refused.

mod support;

use tch::{Device, Kind, Tensor};
use tunewright_trainer::evaluate::{
    evaluate, load_checkpoint_model, load_model, write_generations, EvalSpec,
};
use tunewright_trainer::export::{export, write_adapter, ExportFormat, ExportSource};
use tunewright_trainer::model::{CausalLm, LoraSettings};
use tunewright_trainer::train::checkpoint::{self, TrainState};

use support::{fixture, root};

#[test]
fn figures_equal_the_python_reference_and_generations_are_jsonl() {
    let tmp = tempfile::tempdir().unwrap();
    let family = "qwen2";
    let adapter = tmp.path().join("adapter");
    {
        let _rng = support::rng_lock();
        let lora = LoraSettings {
            r: 4,
            alpha: 8.0,
            dropout: 0.0,
            target_modules: vec!["all-linear".into()],
        };
        let mut m =
            CausalLm::load(&fixture(family), Device::Cpu, Kind::Float, Some(&lora), 5).unwrap();
        tch::manual_seed(4);
        let bumped: Vec<(String, Tensor)> = m
            .lora_parameters()
            .into_iter()
            .map(|(n, t)| {
                (
                    n,
                    Tensor::randn(t.size(), (Kind::Float, Device::Cpu)) * 0.05,
                )
            })
            .collect();
        m.load_lora_parameters(&bumped).unwrap();
        write_adapter(&m, "tiny-qwen2", &adapter).unwrap();
    }
    let spec = EvalSpec {
        model_dir: fixture(family),
        adapter_dir: Some(adapter.clone()),
        data: root().join("tests/fixtures/sft-sample.jsonl"),
        max_examples: 6,
        max_seq_length: 256,
        prompts: 2,
        max_new_tokens: 6,
    };
    let model = load_model(&spec, Device::Cpu).unwrap();
    let report = evaluate(&model, &spec).unwrap();
    assert_eq!(report.examples, 6);
    assert!(report.answer_tokens > 0);
    assert_eq!(report.generations.len(), 2);
    assert!(report.generations.iter().all(|g| !g.reference.is_empty()));

    let examples: Vec<serde_json::Value> = report
        .scored
        .iter()
        .map(|t| serde_json::json!({"ids": t.ids, "labels": t.labels}))
        .collect();
    let ex_file = tmp.path().join("examples.json");
    let out = tmp.path().join("reference.json");
    std::fs::write(&ex_file, serde_json::to_vec(&examples).unwrap()).unwrap();
    support::python(
        "evaluate_reference.py",
        &[&fixture(family), &adapter, &ex_file, &out],
        &[],
    );
    let r: serde_json::Value = serde_json::from_slice(&std::fs::read(&out).unwrap()).unwrap();
    assert_eq!(r["answer_tokens"].as_i64().unwrap(), report.answer_tokens);
    let close = |a: f64, b: f64| (a - b).abs() <= 1e-5 * b.abs().max(1.0);
    assert!(
        close(report.loss, r["loss"].as_f64().unwrap()),
        "{report:?} vs {r}"
    );
    assert!(
        close(report.perplexity, r["perplexity"].as_f64().unwrap()),
        "{r}"
    );
    assert_eq!(report.token_accuracy, r["token_accuracy"].as_f64().unwrap());

    // The merged weights score the same.
    let merged = tmp.path().join("merged");
    let source = ExportSource {
        adapter_dir: adapter,
        base_model_dir: fixture(family),
    };
    export(&source, ExportFormat::Merged, &merged).unwrap();
    let spec_merged = EvalSpec {
        model_dir: merged,
        adapter_dir: None,
        prompts: 0,
        ..spec
    };
    let m = load_model(&spec_merged, Device::Cpu).unwrap();
    let again = evaluate(&m, &spec_merged).unwrap();
    assert!((again.loss - report.loss).abs() < 1e-4, "{again:?}");

    let jsonl = tmp.path().join("generations.jsonl");
    write_generations(&jsonl, &report.generations).unwrap();
    let text = std::fs::read_to_string(&jsonl).unwrap();
    let lines: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 2);
    assert!(lines[0]["prompt"]
        .as_str()
        .unwrap()
        .contains("<|im_start|>user"));
    assert!(lines[0].get("output").is_some() && lines[0].get("reference").is_some());
}

#[test]
fn a_checkpoint_scores_as_the_adapter_of_its_tensors_and_a_changed_one_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let family = "llama";
    let lora = LoraSettings {
        r: 4,
        alpha: 8.0,
        dropout: 0.0,
        target_modules: vec!["all-linear".into()],
    };
    let adapter = tmp.path().join("adapter");
    let saved = {
        let _rng = support::rng_lock();
        let mut m =
            CausalLm::load(&fixture(family), Device::Cpu, Kind::Float, Some(&lora), 5).unwrap();
        tch::manual_seed(11);
        let bumped: Vec<(String, Tensor)> = m
            .lora_parameters()
            .into_iter()
            .map(|(n, t)| {
                (
                    n,
                    Tensor::randn(t.size(), (Kind::Float, Device::Cpu)) * 0.05,
                )
            })
            .collect();
        m.load_lora_parameters(&bumped).unwrap();
        write_adapter(&m, "tiny-llama", &adapter).unwrap();
        let moments: Vec<(String, Tensor, Tensor)> = bumped
            .iter()
            .map(|(n, t)| (n.clone(), t.zeros_like(), t.zeros_like()))
            .collect();
        let state = TrainState {
            step: 3,
            epoch: 0,
            batch_index: 0,
            adam_step: 3,
            seed: 5,
        };
        checkpoint::save(&tmp.path().join("checkpoints"), &state, &bumped, &moments).unwrap()
    };
    let spec = EvalSpec {
        model_dir: fixture(family),
        adapter_dir: Some(adapter),
        data: root().join("tests/fixtures/sft-sample.jsonl"),
        max_examples: 8,
        max_seq_length: 256,
        prompts: 1,
        max_new_tokens: 6,
    };
    let from_adapter = evaluate(&load_model(&spec, Device::Cpu).unwrap(), &spec).unwrap();
    let m =
        load_checkpoint_model(&spec, &saved.dir, &lora, Some(&saved.files), Device::Cpu).unwrap();
    let from_checkpoint = evaluate(&m, &spec).unwrap();
    assert_eq!(from_checkpoint.examples, 8);
    assert_eq!(from_checkpoint.loss, from_adapter.loss);
    assert_eq!(from_checkpoint.token_accuracy, from_adapter.token_accuracy);
    assert_eq!(from_checkpoint.generations, from_adapter.generations);
    // Not the base model's figures: the checkpoint's tensors were loaded.
    let base = CausalLm::load(&fixture(family), Device::Cpu, Kind::Float, None, 0).unwrap();
    assert_ne!(evaluate(&base, &spec).unwrap().loss, from_checkpoint.loss);

    let weights = saved.dir.join(checkpoint::LORA_FILE);
    let mut bytes = std::fs::read(&weights).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 0x01;
    std::fs::write(&weights, &bytes).unwrap();
    let e = load_checkpoint_model(&spec, &saved.dir, &lora, Some(&saved.files), Device::Cpu)
        .err()
        .expect("a changed checkpoint is refused");
    assert_eq!(
        e.code(),
        tunewright_schemas::ErrorCode::CheckpointNotFound,
        "{e}"
    );
    assert!(e.to_string().contains("sha256"), "{e}");
}
