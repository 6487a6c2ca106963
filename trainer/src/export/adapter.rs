//! The PEFT adapter directory: `adapter_model.safetensors` (PEFT key names, `{"format":
//! "pt"}` metadata), `adapter_config.json` (every field PEFT's `LoraConfig` reads) and
//! `manifest.json`. Training writes its output in this form with `write_adapter`; export
//! reads it back with `read_adapter`.

use std::path::Path;

use serde_json::{json, Value};
use tch::{Kind, Tensor};

use super::files::{
    all_finite, publish, read_safetensors, safetensors_metadata, temp_dir_for, write_file,
    write_safetensors,
};
use super::manifest::ExportManifest;
use crate::error::TrainerError;
use crate::model::{CausalLm, LoraSettings, PEFT_PREFIX};

pub const ADAPTER_WEIGHTS: &str = "adapter_model.safetensors";
pub const ADAPTER_CONFIG: &str = "adapter_config.json";

/// PEFT's `adapter_config.json` for `settings` on `base_model`.
pub fn adapter_config(settings: &LoraSettings, targets: &[String], base_model: &str) -> Value {
    let alpha = if settings.alpha.fract() == 0.0 {
        json!(settings.alpha as i64)
    } else {
        json!(settings.alpha)
    };
    json!({
        "alpha_pattern": {},
        "auto_mapping": null,
        "base_model_name_or_path": base_model,
        "bias": "none",
        "fan_in_fan_out": false,
        "inference_mode": true,
        "init_lora_weights": true,
        "layers_pattern": null,
        "layers_to_transform": null,
        "lora_alpha": alpha,
        "lora_dropout": settings.dropout,
        "modules_to_save": null,
        "peft_type": "LORA",
        "r": settings.r,
        "rank_pattern": {},
        "revision": null,
        "target_modules": targets,
        "task_type": "CAUSAL_LM",
        "use_dora": false,
        "use_rslora": false
    })
}

/// Write `model`'s LoRA weights as a PEFT adapter directory at `out_dir` (atomically).
pub fn write_adapter(
    model: &CausalLm,
    base_model: &str,
    out_dir: &Path,
) -> Result<ExportManifest, TrainerError> {
    let settings = model
        .lora
        .as_ref()
        .ok_or_else(|| TrainerError::InvalidLora {
            reason: "the model has no LoRA layers to save".into(),
        })?;
    let targets = settings.resolved_targets_for(model.config.family)?;
    let tensors: Vec<(String, Tensor)> = model
        .lora_parameters()
        .into_iter()
        .map(|(n, t)| (n, t.detach().to_kind(Kind::Float)))
        .collect();
    write_adapter_tensors(&tensors, settings, &targets, base_model, out_dir)
}

/// Write given adapter tensors (PEFT names) and config as an adapter directory.
pub fn write_adapter_tensors(
    tensors: &[(String, Tensor)],
    settings: &LoraSettings,
    targets: &[String],
    base_model: &str,
    out_dir: &Path,
) -> Result<ExportManifest, TrainerError> {
    let tmp = temp_dir_for(out_dir)?;
    let result = (|| {
        write_safetensors(&tmp.join(ADAPTER_WEIGHTS), tensors)?;
        let config = adapter_config(settings, targets, base_model);
        let text = serde_json::to_vec_pretty(&config).map_err(|e| TrainerError::ExportWrite {
            reason: e.to_string(),
        })?;
        write_file(&tmp.join(ADAPTER_CONFIG), &text)?;
        check_adapter_dir(&tmp, tensors)?;
        ExportManifest::write(
            &tmp,
            "peft",
            base_model,
            tensors.len(),
            &[ADAPTER_WEIGHTS.to_string(), ADAPTER_CONFIG.to_string()],
        )
    })();
    match result {
        Ok(m) => {
            publish(&tmp, out_dir)?;
            Ok(m)
        }
        Err(e) => {
            let _ = std::fs::remove_dir_all(&tmp);
            Err(e)
        }
    }
}

/// Re-read an adapter directory and compare it with what should be there: every key,
/// shapes, finite values, the `{"format": "pt"}` metadata and a parseable config.
pub fn check_adapter_dir(dir: &Path, expected: &[(String, Tensor)]) -> Result<(), TrainerError> {
    let weights = dir.join(ADAPTER_WEIGHTS);
    let bad = |reason: String| TrainerError::ExportWrite {
        reason: format!("self-check of {}: {reason}", weights.display()),
    };
    let meta = safetensors_metadata(&weights).map_err(bad)?;
    if meta.get("format").map(String::as_str) != Some("pt") {
        return Err(bad("metadata lacks format=pt".into()));
    }
    let got = read_safetensors(&weights).map_err(bad)?;
    if got.len() != expected.len() {
        return Err(bad(format!(
            "{} tensors written, {} expected",
            got.len(),
            expected.len()
        )));
    }
    for (name, t) in expected {
        let Some((_, g)) = got.iter().find(|(n, _)| n == name) else {
            return Err(bad(format!("tensor '{name}' is missing")));
        };
        if g.size() != t.size() {
            return Err(bad(format!(
                "tensor '{name}' has shape {:?}, expected {:?}",
                g.size(),
                t.size()
            )));
        }
        if !all_finite(g) {
            return Err(bad(format!("tensor '{name}' has non-finite values")));
        }
    }
    let cfg_path = dir.join(ADAPTER_CONFIG);
    let text = std::fs::read(&cfg_path).map_err(|e| bad(format!("{e}")))?;
    let v: Value =
        serde_json::from_slice(&text).map_err(|e| bad(format!("adapter_config.json: {e}")))?;
    settings_from_config(&v).map_err(|e| bad(e.to_string()))?;
    Ok(())
}

/// An adapter read back from disk.
pub struct Adapter {
    pub settings: LoraSettings,
    pub base_model: String,
    pub tensors: Vec<(String, Tensor)>,
}

impl Adapter {
    /// `(A, B)` of the module `name` (e.g. `model.layers.0.self_attn.q_proj`).
    pub fn pair(&self, module: &str) -> Option<(&Tensor, &Tensor)> {
        let a = format!("{PEFT_PREFIX}{module}.lora_A.weight");
        let b = format!("{PEFT_PREFIX}{module}.lora_B.weight");
        let find = |k: &str| self.tensors.iter().find(|(n, _)| n == k).map(|(_, t)| t);
        Some((find(&a)?, find(&b)?))
    }
}

/// Read an adapter directory, verifying its manifest first when it has one.
pub fn read_adapter(dir: &Path) -> Result<Adapter, TrainerError> {
    let missing = |p: &Path, reason: String| TrainerError::ExportArtifactsMissing {
        path: p.to_path_buf(),
        reason,
    };
    if !dir.is_dir() {
        return Err(missing(dir, "the adapter directory does not exist".into()));
    }
    if dir.join(super::manifest::MANIFEST).exists() {
        ExportManifest::verify(dir)?;
    }
    let cfg_path = dir.join(ADAPTER_CONFIG);
    let text = std::fs::read(&cfg_path).map_err(|e| missing(&cfg_path, format!("{e}")))?;
    let v: Value = serde_json::from_slice(&text)
        .map_err(|e| missing(&cfg_path, format!("not valid JSON: {e}")))?;
    let settings = settings_from_config(&v).map_err(|e| missing(&cfg_path, e.to_string()))?;
    let base_model = v
        .get("base_model_name_or_path")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    let weights = dir.join(ADAPTER_WEIGHTS);
    let tensors = read_safetensors(&weights).map_err(|e| missing(&weights, e))?;
    if tensors.is_empty() {
        return Err(missing(&weights, "the adapter holds no tensors".into()));
    }
    Ok(Adapter {
        settings,
        base_model,
        tensors,
    })
}

/// `LoraSettings` from a PEFT `adapter_config.json` value.
pub fn settings_from_config(v: &Value) -> Result<LoraSettings, TrainerError> {
    let bad = |reason: &str| TrainerError::InvalidLora {
        reason: format!("adapter_config.json: {reason}"),
    };
    if v.get("peft_type").and_then(Value::as_str) != Some("LORA") {
        return Err(bad("peft_type is not LORA"));
    }
    let r = v
        .get("r")
        .and_then(Value::as_i64)
        .ok_or_else(|| bad("no integer 'r'"))?;
    let alpha = v
        .get("lora_alpha")
        .and_then(Value::as_f64)
        .ok_or_else(|| bad("no 'lora_alpha'"))?;
    let dropout = v.get("lora_dropout").and_then(Value::as_f64).unwrap_or(0.0);
    let target_modules = match v.get("target_modules") {
        Some(Value::Array(a)) => a
            .iter()
            .filter_map(|x| x.as_str().map(str::to_string))
            .collect(),
        Some(Value::String(s)) => vec![s.clone()],
        _ => return Err(bad("no 'target_modules'")),
    };
    let s = LoraSettings {
        r,
        alpha,
        dropout,
        target_modules,
    };
    s.resolved_targets()?;
    Ok(s)
}
