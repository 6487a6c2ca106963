//! Admission of GGUF exports (`gguf`, `ollama`): the base model of the training to export
//! must be of a family llama.cpp's architectures carry exactly (docs/exports.md); otherwise
//! `EXPORT_FORMAT_UNAVAILABLE` naming the family, before anything is written.

use std::path::Path;

use serde_json::Value;
use tunewright_schemas::config::{gguf_unavailable, ExportFormat};
use tunewright_schemas::model_family::family_of_architecture;
use tunewright_schemas::Failure;

/// Check `format` against the model in `model_dir` (its `config.json`). A model whose config
/// cannot be read passes here: the export itself reports it with its own code.
pub fn check_gguf_family(format: ExportFormat, model_dir: &Path) -> Result<(), Failure> {
    if format.quantization().is_none() {
        return Ok(());
    }
    let Some(config) = std::fs::read(model_dir.join("config.json"))
        .ok()
        .and_then(|b| serde_json::from_slice::<Value>(&b).ok())
    else {
        return Ok(());
    };
    let family = config
        .get("architectures")
        .and_then(Value::as_array)
        .and_then(|a| a.first())
        .and_then(Value::as_str)
        .and_then(family_of_architecture);
    let window = config
        .get("sliding_window")
        .and_then(Value::as_i64)
        .filter(|w| *w > 0);
    match family.and_then(|f| gguf_unavailable(format, f, window)) {
        Some(f) => Err(f),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tunewright_schemas::config::Quantization;
    use tunewright_schemas::ErrorCode;

    #[test]
    fn gguf_of_an_unsupported_family_is_refused_naming_it() {
        let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures");
        let gguf = ExportFormat::Ollama(Quantization::Q8_0);
        check_gguf_family(gguf, &fixtures.join("tiny-qwen2")).unwrap();
        check_gguf_family(gguf, &fixtures.join("tiny-llama")).unwrap();
        check_gguf_family(ExportFormat::Merged, &fixtures.join("tiny-phi3")).unwrap();
        let e = check_gguf_family(gguf, &fixtures.join("tiny-phi3")).unwrap_err();
        assert_eq!(e.error_code, ErrorCode::ExportFormatUnavailable);
        assert!(e.detail.contains("'ollama for phi3'"), "{}", e.detail);
        let e = check_gguf_family(gguf, &fixtures.join("tiny-mistral")).unwrap_err();
        assert!(format!("{:?}", e.context).contains("window of 4"), "{e:?}");
    }
}
