//! The tunewright side of `script/llama-cpp-check`: trains the tiny Llama fixture for a few
//! steps on the bundled SFT sample, exports it as GGUF (with its self-check), reads the GGUF back
//! (the weights llama.cpp computes with: rounded to f16/bf16, or q8_0 dequantized) and writes
//! tunewright's greedy tokens from those weights for three chat prompts as JSON:
//! `{"gguf": PATH, "cases": [{"prompt": [ids], "tokens": [ids]}, ...]}`.
//!
//! Arguments: OUT_DIR [FAMILY (llama)] [QUANTIZATION (f16)].

use std::path::{Path, PathBuf};

use serde_json::json;
use tunewright_schemas::config::{Quantization, TrainConfig};
use tunewright_schemas::dataset::Turn;
use tunewright_trainer::export::{export, ExportFormat, ExportSource};
use tunewright_trainer::generate::{generate, stop_ids, GenerateOptions};
use tunewright_trainer::model::CausalLm;
use tunewright_trainer::train::tokenize::ChatTokenizer;
use tunewright_trainer::train::{
    train, CheckpointRecord, Control, ProgressReport, TrainHooks, TrainSpec,
};

const PROMPTS: &[&str] = &[
    "What is the capital of France?",
    "Write a haiku about the sea.",
    "List three prime numbers.",
];

struct Quiet;

impl TrainHooks for Quiet {
    fn on_progress(&mut self, _: &ProgressReport) {}
    fn on_checkpoint(&mut self, _: &CheckpointRecord) {}
    fn on_note(&mut self, _: &str, _: serde_json::Value) {}
    fn control(&mut self) -> Control {
        Control::Continue
    }
}

fn main() {
    if let Err(e) = run() {
        eprintln!("gguf_greedy: {e}");
        std::process::exit(1);
    }
}

fn run() -> Result<(), String> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let out = PathBuf::from(
        args.first()
            .ok_or("usage: gguf_greedy OUT_DIR [FAMILY] [Q]")?,
    );
    let family = args.get(1).map(String::as_str).unwrap_or("llama");
    let q = Quantization::from_name(args.get(2).map(String::as_str).unwrap_or("f16"))
        .map_err(|f| f.detail)?;
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let model_dir = root.join(format!("tests/fixtures/tiny-{family}"));
    let config = TrainConfig::from_json(&json!({
        "base_model": model_dir.display().to_string(), "device": "cpu",
        "per_device_train_batch_size": 4, "learning_rate": 0.01, "max_steps": 20,
        "max_seq_length": 128, "lora_r": 8, "lora_alpha": 16, "lora_dropout": 0.0,
        "warmup_steps": 0, "seed": 7, "target_modules": ["all-linear"]
    }))
    .map_err(|f| f.detail)?;
    let spec = TrainSpec {
        config,
        model_dir: model_dir.clone(),
        train_data: root.join("tests/fixtures/sft-sample.jsonl"),
        val_data: None,
        output_dir: out.join("adapter"),
        checkpoint_root: out.join("checkpoints"),
        resume_from: None,
    };
    train(&spec, &mut Quiet).map_err(|e| e.to_string())?;
    let source = ExportSource {
        adapter_dir: spec.output_dir.clone(),
        base_model_dir: model_dir.clone(),
    };
    let merged = out.join("merged");
    export(&source, ExportFormat::Merged, &merged).map_err(|e| e.to_string())?;
    let gguf_dir = out.join("gguf");
    export(&source, ExportFormat::Gguf(q), &gguf_dir).map_err(|e| e.to_string())?;
    // The GGUF's own weights, so a quantized file is compared with itself, not with f32.
    let read_back = out.join("gguf-read-back");
    std::fs::create_dir_all(&read_back).map_err(|e| e.to_string())?;
    tunewright_trainer::export::gguf::read_back(&gguf_dir.join("model.gguf"), &merged, &read_back)
        .map_err(|e| e.to_string())?;
    let model = CausalLm::load(&read_back, tch::Device::Cpu, tch::Kind::Float, None, 0)
        .map_err(|e| e.to_string())?;
    let tok = ChatTokenizer::load(&merged).map_err(|e| e.to_string())?;
    let opts = GenerateOptions::greedy(24, stop_ids(&merged).map_err(|e| e.to_string())?);
    let mut cases = Vec::new();
    for p in PROMPTS {
        let turns = [Turn {
            role: "user".into(),
            content: (*p).into(),
        }];
        let text = tok.render(&turns, true).map_err(|e| e.to_string())?;
        let ids = tok.encode(&text).map_err(|e| e.to_string())?;
        let g = generate(&model, &ids, &opts).map_err(|e| e.to_string())?;
        cases.push(json!({"prompt": ids, "tokens": g.tokens}));
    }
    let report =
        json!({"gguf": gguf_dir.join("model.gguf"), "stop_ids": opts.stop_ids, "cases": cases});
    println!("{report}");
    Ok(())
}
