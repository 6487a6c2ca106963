//! `tunewright analyze`: the failure analyzer on its own (arguments as a vector, with no shell
//! in between). The failure's text comes from `--error`, a file or standard input; the phase
//! may be given in the words people use. Prints the analysis as JSON, with its source and,
//! when a phase was given, how it was understood; touches no model and no device. With
//! `--second-opinion`, asks the LLM of dataset generation about what the rules cannot read
//! (docs/analyzer.md).

mod failure_text;
mod second_opinion;

use std::path::PathBuf;
use std::process::ExitCode;

use serde_json::{json, Value};
use tunewright_actors::analyzer::second_opinion::{SecondOpinion, Source};
use tunewright_actors::analyzer::{analyze, understand_phase, AnalyzeInput};
use tunewright_schemas::{ErrorCode, ErrorPhase};

#[derive(Debug, clap::Args)]
#[command(group(
    clap::ArgGroup::new("failure")
        .required(true)
        .args(["error", "error_file"])
))]
pub struct AnalyzeArgs {
    /// The failure's text (error message, traceback, log lines).
    #[arg(long)]
    pub error: Option<String>,
    /// Read the failure's text from this file, or from standard input with `-` (at most 1 MiB:
    /// pass the end of a longer log).
    #[arg(long, value_name = "PATH|-")]
    pub error_file: Option<PathBuf>,
    /// The job's config as a JSON object (e.g. '{"per_device_train_batch_size": 8}').
    #[arg(long)]
    pub config: Option<String>,
    /// Where it happened: preflight, model_load, data_load, training, evaluation, checkpoint,
    /// export, generation, or a word people use for one (start-up, preprocessing, resuming,
    /// data generation, saving, ...). A word not understood is reported back, not refused.
    #[arg(long)]
    pub phase: Option<String>,
    /// The catalog code already known for it, e.g. TRAINING_OOM.
    #[arg(long)]
    pub code: Option<String>,
    /// A job id to echo back in the output.
    #[arg(long)]
    pub job_id: Option<String>,
    /// When the rules cannot read the failure, ask the LLM that dataset generation uses
    /// (TUNEWRIGHT_LLM_BASE_URL, TUNEWRIGHT_LLM_MODEL, TUNEWRIGHT_LLM_API_KEY); its answer is
    /// validated and marked "source": "llm".
    #[arg(long)]
    pub second_opinion: bool,
}

pub fn run(args: AnalyzeArgs) -> ExitCode {
    match analyze_args(&args) {
        Ok(json) => {
            println!("{json}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("tunewright analyze: {e}");
            ExitCode::from(2)
        }
    }
}

fn analyze_args(args: &AnalyzeArgs) -> Result<String, String> {
    let error_text = failure_text::read(args.error.as_deref(), args.error_file.as_deref())?;
    let config = config(args.config.as_deref())?;
    let code = args
        .code
        .as_deref()
        .map(str::parse::<ErrorCode>)
        .transpose()
        .map_err(|e| format!("--code: {e}"))?;
    let understood = args.phase.as_deref().and_then(understand_phase);
    let input = AnalyzeInput {
        error_text,
        // "unknown" says nothing: the text is read for the phase as if none was given.
        phase: understood.filter(|p| *p != ErrorPhase::Unknown),
        config,
        code,
    };
    let opinion = if args.second_opinion {
        second_opinion::ask(&input)
    } else {
        SecondOpinion {
            analysis: analyze(&input),
            source: Source::Rules,
            model: None,
            notes: Vec::new(),
        }
    };
    let mut out = output(&opinion)?;
    if let Some(given) = &args.phase {
        out["phase_hint"] = json!({"given": given, "understood": understood});
    }
    if let Some(id) = &args.job_id {
        out["job_id"] = json!(id);
    }
    serde_json::to_string_pretty(&out).map_err(|e| e.to_string())
}

fn config(text: Option<&str>) -> Result<Option<Value>, String> {
    let Some(text) = text else {
        return Ok(None);
    };
    let v: Value =
        serde_json::from_str(text).map_err(|e| format!("--config is not valid JSON: {e}"))?;
    if !v.is_object() {
        return Err("--config must be a JSON object".into());
    }
    Ok(Some(v))
}

/// The analysis's fields, then where it came from: `source`, and with an LLM's answer its
/// `model`; the notes on the second opinion when one was asked for.
fn output(o: &SecondOpinion) -> Result<Value, String> {
    let mut out = serde_json::to_value(&o.analysis).map_err(|e| e.to_string())?;
    out["source"] = serde_json::to_value(o.source).map_err(|e| e.to_string())?;
    if let Some(model) = &o.model {
        out["model"] = json!(model);
    }
    if !o.notes.is_empty() {
        out["notes"] = json!(o.notes);
    }
    Ok(out)
}
