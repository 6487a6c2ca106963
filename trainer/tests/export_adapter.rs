//! Export: the PEFT adapter (keys, metadata, config), merged weights that reproduce the
//! LoRA model's logits, manifests with sha256, and every failure code.

use std::path::{Path, PathBuf};

use tch::{Device, Kind, Tensor};
use tunewright_schemas::ErrorCode;
use tunewright_trainer::export::files::{read_safetensors, safetensors_metadata, sha256_file};
use tunewright_trainer::export::{
    export, write_adapter, ExportFormat, ExportManifest, ExportSource,
};
use tunewright_trainer::model::{Llama, LoraSettings};

fn fixture() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/tiny-llama")
}

fn settings() -> LoraSettings {
    LoraSettings {
        r: 4,
        alpha: 8.0,
        dropout: 0.05,
        target_modules: vec!["q_proj".into(), "v_proj".into(), "down_proj".into()],
    }
}

/// A LoRA model whose B matrices are non-zero (as after training).
fn trained() -> Llama {
    let mut m = Llama::load(&fixture(), Device::Cpu, Kind::Float, Some(&settings()), 5).unwrap();
    let bumped: Vec<(String, Tensor)> = m
        .lora_parameters()
        .iter()
        .enumerate()
        .map(|(i, (n, t))| (n.clone(), t.detach() + 0.01 * (i as f64 + 1.0)))
        .collect();
    m.load_lora_parameters(&bumped).unwrap();
    m
}

fn ids() -> Tensor {
    Tensor::from_slice(&[0i64, 17, 42, 99, 123, 7, 300, 5, 64, 1]).view([1, 10])
}

#[test]
fn adapter_has_peft_keys_metadata_config_and_manifest() {
    let model = trained();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("adapter");
    let manifest = write_adapter(&model, "tiny-llama", &out).unwrap();
    let weights = out.join("adapter_model.safetensors");
    assert_eq!(
        safetensors_metadata(&weights)
            .unwrap()
            .get("format")
            .map(String::as_str),
        Some("pt")
    );
    let tensors = read_safetensors(&weights).unwrap();
    let mut expected: Vec<String> = model
        .lora_parameters()
        .into_iter()
        .map(|(n, _)| n)
        .collect();
    expected.sort();
    let got: Vec<String> = tensors.iter().map(|(n, _)| n.clone()).collect();
    assert_eq!(got, expected);
    assert!(got
        .iter()
        .all(|n| n.starts_with("base_model.model.model.layers.") && n.ends_with(".weight")));

    let cfg: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("adapter_config.json")).unwrap()).unwrap();
    assert_eq!(cfg["peft_type"], "LORA");
    assert_eq!(cfg["task_type"], "CAUSAL_LM");
    assert_eq!(cfg["r"], 4);
    assert_eq!(cfg["lora_alpha"], 8);
    assert_eq!(cfg["lora_dropout"], 0.05);
    assert_eq!(cfg["bias"], "none");
    assert_eq!(cfg["fan_in_fan_out"], false);
    assert_eq!(cfg["inference_mode"], true);
    assert_eq!(cfg["base_model_name_or_path"], "tiny-llama");
    assert!(cfg["modules_to_save"].is_null());
    assert_eq!(
        cfg["target_modules"],
        serde_json::json!(["q_proj", "v_proj", "down_proj"])
    );

    assert_eq!(manifest.files.len(), 2);
    for f in &manifest.files {
        assert_eq!(sha256_file(&out.join(&f.path)).unwrap(), f.sha256);
    }
    assert_eq!(ExportManifest::verify(&out).unwrap(), manifest);
    assert!(
        std::fs::read_dir(dir.path()).unwrap().count() == 1,
        "no temp dir left behind"
    );
}

#[test]
fn peft_export_round_trips_into_a_model() {
    let model = trained();
    let dir = tempfile::tempdir().unwrap();
    let train_out = dir.path().join("train");
    write_adapter(&model, "tiny-llama", &train_out).unwrap();
    let out = dir.path().join("export");
    let source = ExportSource {
        adapter_dir: train_out,
        base_model_dir: fixture(),
    };
    let m = export(&source, ExportFormat::Peft, &out).unwrap();
    assert_eq!(m.format, "peft");

    let adapter = tunewright_trainer::export::read_adapter(&out).unwrap();
    let mut fresh = Llama::load(
        &fixture(),
        Device::Cpu,
        Kind::Float,
        Some(&adapter.settings),
        0,
    )
    .unwrap();
    fresh.load_lora_parameters(&adapter.tensors).unwrap();
    let a = tch::no_grad(|| model.forward(&ids(), None, false));
    let b = tch::no_grad(|| fresh.forward(&ids(), None, false));
    assert!(a.equal(&b));
}

#[test]
fn merged_weights_reproduce_the_lora_model() {
    let model = trained();
    let dir = tempfile::tempdir().unwrap();
    let train_out = dir.path().join("train");
    write_adapter(&model, "tiny-llama", &train_out).unwrap();
    let out = dir.path().join("merged");
    let source = ExportSource {
        adapter_dir: train_out,
        base_model_dir: fixture(),
    };
    let m = export(&source, ExportFormat::Merged, &out).unwrap();
    assert_eq!(m.format, "merged");
    assert!(m.files.iter().any(|f| f.path == "model.safetensors"));
    assert!(m.files.iter().any(|f| f.path == "tokenizer.json"));
    ExportManifest::verify(&out).unwrap();

    let base = read_safetensors(&fixture().join("model.safetensors")).unwrap();
    let merged = read_safetensors(&out.join("model.safetensors")).unwrap();
    assert_eq!(base.len(), merged.len());
    for ((bn, bt), (mn, mt)) in base.iter().zip(&merged) {
        assert_eq!(bn, mn);
        assert_eq!((bt.size(), bt.kind()), (mt.size(), mt.kind()), "{bn}");
    }
    let plain = Llama::load(&out, Device::Cpu, Kind::Float, None, 0).unwrap();
    let a = tch::no_grad(|| model.forward(&ids(), None, false));
    let b = tch::no_grad(|| plain.forward(&ids(), None, false));
    let d = (a - b).abs().max().double_value(&[]);
    assert!(d < 1e-4, "merged logits differ by {d}");
}

#[test]
fn unknown_format_is_format_unavailable() {
    let f = ExportFormat::from_name("onnx").unwrap_err();
    assert_eq!(f.error_code, ErrorCode::ExportFormatUnavailable);
    assert!(
        f.detail.contains("onnx") && f.detail.contains("peft"),
        "{}",
        f.detail
    );
    assert_eq!(ExportFormat::from_name("PEFT").unwrap(), ExportFormat::Peft);
    assert_eq!(
        ExportFormat::from_name("merged").unwrap(),
        ExportFormat::Merged
    );
}

#[test]
fn missing_or_tampered_artifacts_are_artifacts_missing() {
    let model = trained();
    let dir = tempfile::tempdir().unwrap();
    let train_out = dir.path().join("train");
    write_adapter(&model, "tiny-llama", &train_out).unwrap();
    let out = dir.path().join("export");

    let gone = ExportSource {
        adapter_dir: dir.path().join("nope"),
        base_model_dir: fixture(),
    };
    assert_eq!(
        export(&gone, ExportFormat::Peft, &out).unwrap_err().code(),
        ErrorCode::ExportArtifactsMissing
    );

    let no_base = ExportSource {
        adapter_dir: train_out.clone(),
        base_model_dir: dir.path().join("no-base"),
    };
    assert_eq!(
        export(&no_base, ExportFormat::Merged, &out)
            .unwrap_err()
            .code(),
        ErrorCode::ExportArtifactsMissing
    );

    // Flip one byte of the weights: the manifest's sha256 no longer matches.
    let w = train_out.join("adapter_model.safetensors");
    let mut bytes = std::fs::read(&w).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 0xff;
    std::fs::write(&w, bytes).unwrap();
    let src = ExportSource {
        adapter_dir: train_out.clone(),
        base_model_dir: fixture(),
    };
    let e = export(&src, ExportFormat::Peft, &out).unwrap_err();
    let f = e.to_failure();
    assert_eq!(f.error_code, ErrorCode::ExportArtifactsMissing);
    assert!(f.detail.contains("sha256"), "{}", f.detail);
    assert!(!out.exists(), "nothing published on failure");

    std::fs::remove_file(&w).unwrap();
    assert_eq!(
        export(&src, ExportFormat::Peft, &out).unwrap_err().code(),
        ErrorCode::ExportArtifactsMissing
    );
}

#[test]
fn unwritable_destination_is_write_failed_and_retryable() {
    let model = trained();
    let dir = tempfile::tempdir().unwrap();
    let train_out = dir.path().join("train");
    write_adapter(&model, "tiny-llama", &train_out).unwrap();
    // The destination's parent is a file: nothing can be created under it.
    let blocker = dir.path().join("file");
    std::fs::write(&blocker, b"x").unwrap();
    let src = ExportSource {
        adapter_dir: train_out,
        base_model_dir: fixture(),
    };
    let e = export(&src, ExportFormat::Peft, &blocker.join("out")).unwrap_err();
    assert_eq!(e.code(), ErrorCode::ExportWriteFailed);
    assert!(e.code().is_retryable());
}

#[test]
fn re_export_replaces_the_previous_output() {
    let model = trained();
    let dir = tempfile::tempdir().unwrap();
    let train_out = dir.path().join("train");
    write_adapter(&model, "tiny-llama", &train_out).unwrap();
    let out = dir.path().join("export");
    std::fs::create_dir(&out).unwrap();
    std::fs::write(out.join("stale.txt"), b"old").unwrap();
    let src = ExportSource {
        adapter_dir: train_out,
        base_model_dir: fixture(),
    };
    export(&src, ExportFormat::Peft, &out).unwrap();
    assert!(!out.join("stale.txt").exists());
    ExportManifest::verify(&out).unwrap();
}
