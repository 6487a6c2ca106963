//! `tunewright-worker export --spec FILE`: exports a trained adapter (PEFT, merged, GGUF or
//! Ollama) and answers with the export manifest as its `result` line.

use std::path::{Path, PathBuf};

use tunewright_schemas::config::Quantization;
use tunewright_schemas::worker::{ExportWorkerSpec, WorkerLine};
use tunewright_schemas::{ErrorCode, Failure};
use tunewright_trainer::export::{export, ExportFormat, ExportSource};

use super::{out, read_spec};

pub fn run(spec_path: &Path) -> Result<serde_json::Value, Failure> {
    let spec: ExportWorkerSpec = read_spec(spec_path, ErrorCode::ExportWriteFailed)?;
    let format = ExportFormat::from_name(&spec.format)?;
    let format = match spec.quantization.as_deref() {
        Some(q) => format.with_quantization(Quantization::from_name(q)?)?,
        None => format,
    };
    let source = ExportSource {
        adapter_dir: PathBuf::from(&spec.adapter_dir),
        base_model_dir: PathBuf::from(&spec.base_model_dir),
    };
    out::log(format!(
        "exporting {} as {} into {}",
        spec.adapter_dir,
        format.name(),
        spec.out_dir
    ));
    let manifest = export(&source, format, Path::new(&spec.out_dir)).map_err(|e| e.to_failure())?;
    let value = serde_json::to_value(&manifest).map_err(|e| {
        Failure::new(
            ErrorCode::ExportWriteFailed,
            tunewright_schemas::ctx! {"reason" => e.to_string()},
        )
    })?;
    out::emit(&WorkerLine::Note {
        topic: "export".into(),
        data: value.clone(),
    });
    Ok(value)
}
