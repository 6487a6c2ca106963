//! `tunewright-worker evaluate --spec FILE`: scores a training's final adapter or one of its
//! checkpoints on the examples the executor wrote (`tunewright_trainer::evaluate`, f32 on the
//! CPU), writes the greedy generations as JSONL and answers with the figures as its `result`
//! line. A `preflight` note precedes the model's load (the watchdog's model-load allowance);
//! a heartbeat goes out at most once a second while it scores (its pace).

use std::path::{Path, PathBuf};

use serde_json::{json, Value};
use tunewright_schemas::config::TrainConfig;
use tunewright_schemas::worker::{EvaluateWorkerSpec, WorkerLine};
use tunewright_schemas::{ctx, ErrorCode, ErrorPhase, Failure};
use tunewright_trainer::evaluate::{
    evaluate_with, load_checkpoint_model, load_model, write_generations, Device, EvalSpec,
};
use tunewright_trainer::train::setup::lora_settings;

use super::{out, read_spec};

/// The most heartbeats a worker sends per second.
const HEARTBEAT_EVERY: std::time::Duration = std::time::Duration::from_secs(1);

fn in_evaluation(f: Failure) -> Failure {
    if f.phase.is_some() {
        f
    } else {
        f.in_phase(ErrorPhase::Evaluation)
    }
}

pub fn run(spec_path: &Path) -> Result<Value, Failure> {
    let spec: EvaluateWorkerSpec = read_spec(spec_path, ErrorCode::EvaluationFailed)?;
    let train = TrainConfig::from_json(&spec.train_config)?;
    let eval = EvalSpec {
        model_dir: PathBuf::from(&train.base_model),
        adapter_dir: spec.adapter_dir.as_ref().map(PathBuf::from),
        data: PathBuf::from(&spec.examples_path),
        max_examples: spec.max_examples as usize,
        max_seq_length: train.max_seq_length.max(1) as usize,
        prompts: spec.prompts as usize,
        max_new_tokens: spec.max_new_tokens as usize,
    };
    // The examples are read when scoring starts; what comes now is the model's load, which
    // the watchdog allows for by the weights' size (a heartbeat now would start its pace).
    out::emit(&WorkerLine::Note {
        topic: "preflight".into(),
        data: json!({"examples_path": spec.examples_path}),
    });
    let model = match &spec.checkpoint_dir {
        Some(dir) => {
            out::log(format!("evaluating the checkpoint {dir}"));
            load_checkpoint_model(
                &eval,
                Path::new(dir),
                &lora_settings(&train),
                Some(spec.checkpoint_files.as_slice()),
                Device::Cpu,
            )
        }
        None => {
            out::log(format!(
                "evaluating the adapter {}",
                spec.adapter_dir.as_deref().unwrap_or("(none)")
            ));
            load_model(&eval, Device::Cpu)
        }
    }
    .map_err(|e| in_evaluation(e.to_failure()))?;
    let mut last = std::time::Instant::now();
    let report = evaluate_with(&model, &eval, &mut |n| {
        if last.elapsed() >= HEARTBEAT_EVERY {
            last = std::time::Instant::now();
            out::emit(&WorkerLine::Heartbeat { step: n as u64 });
        }
    })
    .map_err(|e| in_evaluation(e.to_failure()))?;
    write_generations(Path::new(&spec.generations_path), &report.generations).map_err(|e| {
        let f = e.to_failure();
        if f.error_code == ErrorCode::StorageFull {
            in_evaluation(f)
        } else {
            Failure::new(
                ErrorCode::EvaluationFailed,
                ctx! {"reason" => format!("writing the generations: {e}")},
            )
            .in_phase(ErrorPhase::Evaluation)
        }
    })?;
    out::log(format!(
        "scored {} examples: loss {:.6}, token accuracy {:.4}",
        report.examples, report.loss, report.token_accuracy
    ));
    let finite = |x: f64| if x.is_finite() { json!(x) } else { Value::Null };
    Ok(json!({
        "examples": report.examples,
        "skipped_too_long": report.skipped_too_long,
        "answer_tokens": report.answer_tokens,
        "loss": finite(report.loss),
        "perplexity": finite(report.perplexity),
        "token_accuracy": finite(report.token_accuracy),
        "generations": report.generations.len(),
    }))
}
