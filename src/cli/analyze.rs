//! `tunewright analyze`: the failure analyzer on its own (arguments as a vector, with no shell in
//! between). Prints the analysis as JSON; touches no model and no device.

use std::process::ExitCode;

use tunewright_actors::analyzer::{analyze, AnalyzeInput};
use tunewright_schemas::{ErrorCode, ErrorPhase};

#[derive(Debug, clap::Args)]
pub struct AnalyzeArgs {
    /// The failure's text (error message, traceback, log lines).
    #[arg(long)]
    pub error: String,
    /// The job's config as a JSON object (e.g. '{"per_device_train_batch_size": 8}').
    #[arg(long)]
    pub config: Option<String>,
    /// Where it happened: preflight, model_load, data_load, training, evaluation,
    /// checkpoint, export, generation.
    #[arg(long)]
    pub phase: Option<String>,
    /// The catalog code already known for it, e.g. TRAINING_OOM.
    #[arg(long)]
    pub code: Option<String>,
    /// A job id to echo back in the output (so a caller can match answers to jobs).
    #[arg(long)]
    pub job_id: Option<String>,
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
    let config = match &args.config {
        None => None,
        Some(text) => {
            let v: serde_json::Value = serde_json::from_str(text)
                .map_err(|e| format!("--config is not valid JSON: {e}"))?;
            if !v.is_object() {
                return Err("--config must be a JSON object".into());
            }
            Some(v)
        }
    };
    let phase = args
        .phase
        .as_deref()
        .map(str::parse::<ErrorPhase>)
        .transpose()
        .map_err(|e| format!("--phase: {e}"))?;
    let code = args
        .code
        .as_deref()
        .map(str::parse::<ErrorCode>)
        .transpose()
        .map_err(|e| format!("--code: {e}"))?;
    let analysis = analyze(&AnalyzeInput {
        error_text: args.error.clone(),
        phase,
        config,
        code,
    });
    let mut out = serde_json::to_value(&analysis).map_err(|e| e.to_string())?;
    if let (Some(id), Some(obj)) = (&args.job_id, out.as_object_mut()) {
        obj.insert("job_id".into(), serde_json::Value::String(id.clone()));
    }
    serde_json::to_string_pretty(&out).map_err(|e| e.to_string())
}
