//! GGUF and Ollama exports of a trained tiny model of each GGUF family, read back by the
//! reference reader (`gguf` from PyPI, one Python run for all: tensors bit-equal for
//! f16/bf16, within q8_0's error, metadata, the Modelfile's template), the self-check
//! recorded in the manifest, and the refusals (a family GGUF cannot carry, a failed check).

mod support;

use std::path::{Path, PathBuf};

use tch::{Device, Kind, Tensor};
use tunewright_schemas::config::Quantization;
use tunewright_schemas::ErrorCode;
use tunewright_trainer::export::{
    export, verify, write_adapter, ExportFormat, ExportManifest, ExportSource,
};
use tunewright_trainer::model::{CausalLm, LoraSettings};

use support::fixture;

/// A LoRA model of `family` whose B matrices are non-zero (as after training), saved as a
/// PEFT adapter in `dir`.
fn trained_adapter(family: &str, dir: &Path) -> PathBuf {
    let _rng = support::rng_lock();
    let lora = LoraSettings {
        r: 4,
        alpha: 8.0,
        dropout: 0.0,
        target_modules: vec!["all-linear".into()],
    };
    let mut m = CausalLm::load(&fixture(family), Device::Cpu, Kind::Float, Some(&lora), 5).unwrap();
    tch::manual_seed(9);
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
    let out = dir.join(format!("adapter-{family}"));
    write_adapter(&m, &format!("tiny-{family}"), &out).unwrap();
    out
}

#[test]
fn gguf_and_ollama_exports_read_back_by_the_reference_reader() {
    let tmp = tempfile::tempdir().unwrap();
    let mut cases = Vec::new();
    for family in ["llama", "qwen2", "qwen3"] {
        let source = ExportSource {
            adapter_dir: trained_adapter(family, tmp.path()),
            base_model_dir: fixture(family),
        };
        let merged = tmp.path().join(format!("{family}-merged"));
        export(&source, ExportFormat::Merged, &merged).unwrap();
        for q in Quantization::ALL {
            let ollama = *q == Quantization::F16;
            let format = if ollama {
                ExportFormat::Ollama(*q)
            } else {
                ExportFormat::Gguf(*q)
            };
            let out = tmp.path().join(format!("{family}-{}", q.name()));
            let m = export(&source, format, &out).unwrap();
            ExportManifest::verify(&out).unwrap();
            let check = m.self_check.as_ref().expect("the self-check is recorded");
            assert_eq!(check["passed"], true, "{check}");
            assert_eq!(check["quantization"], q.name());
            assert!(check["steps_compared"].as_u64().unwrap() >= 1, "{check}");
            let mut case = serde_json::json!({
                "gguf": out.join("model.gguf"), "merged_dir": merged, "quantization": q.name(),
            });
            if ollama {
                assert!(m.files.iter().any(|f| f.path == "Modelfile"));
                case["modelfile"] = out.join("Modelfile").display().to_string().into();
            }
            cases.push(case);
        }
    }
    let spec = tmp.path().join("spec.json");
    std::fs::write(&spec, serde_json::to_vec(&cases).unwrap()).unwrap();
    support::python("gguf_check.py", &[&spec], &[]);
}

#[test]
fn families_gguf_cannot_carry_are_refused_naming_the_family() {
    let tmp = tempfile::tempdir().unwrap();
    for (family, words) in [
        ("gemma2", "gemma2"),
        ("phi3", "phi3"),
        ("mistral", "window of 4"),
    ] {
        let source = ExportSource {
            adapter_dir: trained_adapter(family, tmp.path()),
            base_model_dir: fixture(family),
        };
        let out = tmp.path().join(format!("{family}-gguf"));
        let e = export(&source, ExportFormat::Gguf(Quantization::F16), &out).unwrap_err();
        assert_eq!(
            e.code(),
            ErrorCode::ExportFormatUnavailable,
            "{family}: {e}"
        );
        let f = e.to_failure();
        assert!(
            f.detail.contains(family) || format!("{:?}", f.context).contains(words),
            "{family}: {} {:?}",
            f.detail,
            f.context
        );
        assert!(!out.exists(), "nothing is published for a refused export");
    }
}

#[test]
fn a_model_that_answers_differently_fails_the_self_check_with_its_numbers() {
    // The base model against a merged model whose adapter changes it: not within f16.
    let tmp = tempfile::tempdir().unwrap();
    let source = ExportSource {
        adapter_dir: trained_adapter("qwen2", tmp.path()),
        base_model_dir: fixture("qwen2"),
    };
    let merged = tmp.path().join("merged");
    export(&source, ExportFormat::Merged, &merged).unwrap();
    let check = verify::self_check(&merged, &fixture("qwen2"), Some(Quantization::F16)).unwrap();
    assert!(!check.passed, "{check:?}");
    assert!(check.max_logit_diff > check.tolerance, "{check:?}");
    let e = verify::failure(&check, "gguf");
    assert_eq!(e.code(), ErrorCode::ExportVerifyFailed);
    let f = e.to_failure();
    assert!(f.detail.contains("logits differ"), "{}", f.detail);
    // The same model passes against itself exactly.
    let same = verify::self_check(&merged, &merged, None).unwrap();
    assert!(same.passed && same.max_logit_diff == 0.0, "{same:?}");
}

#[test]
fn mistral_without_a_window_exports_as_gguf_but_its_template_has_no_ollama_form() {
    let tmp = tempfile::tempdir().unwrap();
    let base = tmp.path().join("mistral-no-window");
    std::fs::create_dir_all(&base).unwrap();
    for e in std::fs::read_dir(fixture("mistral")).unwrap() {
        let p = e.unwrap().path();
        std::fs::copy(&p, base.join(p.file_name().unwrap())).unwrap();
    }
    let cfg_path = base.join("config.json");
    let mut cfg: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&cfg_path).unwrap()).unwrap();
    cfg["sliding_window"] = serde_json::Value::Null;
    std::fs::write(&cfg_path, serde_json::to_vec(&cfg).unwrap()).unwrap();
    let source = ExportSource {
        adapter_dir: trained_adapter("mistral", tmp.path()),
        base_model_dir: base,
    };
    let m = export(
        &source,
        ExportFormat::Gguf(Quantization::Q8_0),
        &tmp.path().join("gguf"),
    )
    .unwrap();
    let check = m.self_check.unwrap();
    assert_eq!(check["architecture"], "llama");
    assert_eq!(check["passed"], true, "{check}");
    let out = tmp.path().join("ollama");
    let e = export(&source, ExportFormat::Ollama(Quantization::F16), &out).unwrap_err();
    assert_eq!(e.code(), ErrorCode::ExportFormatUnavailable, "{e}");
    assert!(!out.exists());
}
