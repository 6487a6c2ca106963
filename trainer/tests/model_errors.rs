//! Every user-facing load failure carries its catalog code and names what is wrong.

use std::path::{Path, PathBuf};

use tch::{Device, Kind};
use tunewright_schemas::ErrorCode;
use tunewright_trainer::model::{Llama, LoraSettings};
use tunewright_trainer::TrainerError;

fn fixture() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/tiny-llama")
}

fn copy() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for e in std::fs::read_dir(fixture()).unwrap() {
        let p = e.unwrap().path();
        std::fs::copy(&p, dir.path().join(p.file_name().unwrap())).unwrap();
    }
    dir
}

fn edit_config(dir: &Path, f: impl FnOnce(&mut serde_json::Map<String, serde_json::Value>)) {
    let path = dir.join("config.json");
    let mut v: serde_json::Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    f(v.as_object_mut().unwrap());
    std::fs::write(path, v.to_string()).unwrap();
}

fn load_err(dir: &Path) -> TrainerError {
    match Llama::load(dir, Device::Cpu, Kind::Float, None, 0) {
        Ok(_) => panic!("loading {} should fail", dir.display()),
        Err(e) => e,
    }
}

#[test]
fn missing_directory_is_model_not_found() {
    let e = load_err(Path::new("/nonexistent/tunewright-model"));
    assert_eq!(e.to_failure().error_code, ErrorCode::ModelNotFound);
}

#[test]
fn missing_config_is_model_not_found() {
    let dir = copy();
    std::fs::remove_file(dir.path().join("config.json")).unwrap();
    let f = load_err(dir.path()).to_failure();
    assert_eq!(f.error_code, ErrorCode::ModelNotFound);
    assert!(f.detail.contains("config.json"), "{}", f.detail);
}

#[test]
fn other_architectures_are_unsupported() {
    let dir = copy();
    edit_config(dir.path(), |c| {
        c.insert(
            "architectures".into(),
            serde_json::json!(["GPT2LMHeadModel"]),
        );
    });
    let f = load_err(dir.path()).to_failure();
    assert_eq!(f.error_code, ErrorCode::ModelUnsupportedArch);
    assert!(f.detail.contains("GPT2LMHeadModel"), "{}", f.detail);
}

#[test]
fn unknown_activations_and_rope_types_are_unsupported() {
    let dir = copy();
    edit_config(dir.path(), |c| {
        c.insert("hidden_act".into(), serde_json::json!("relu"));
    });
    let f = load_err(dir.path()).to_failure();
    assert_eq!(f.error_code, ErrorCode::ModelUnsupportedArch);
    assert!(f.detail.contains("relu"), "{}", f.detail);
    let dir = copy();
    edit_config(dir.path(), |c| {
        c.insert(
            "rope_scaling".into(),
            serde_json::json!({"rope_type": "yarn", "factor": 4.0}),
        );
    });
    let f = load_err(dir.path()).to_failure();
    assert_eq!(f.error_code, ErrorCode::ModelUnsupportedArch);
    assert!(f.detail.contains("yarn"), "{}", f.detail);
}

#[test]
fn a_sliding_layer_without_a_window_is_a_load_failure() {
    let dir = copy();
    edit_config(dir.path(), |c| {
        c.insert(
            "architectures".into(),
            serde_json::json!(["Gemma2ForCausalLM"]),
        );
        c.insert("sliding_window".into(), serde_json::Value::Null);
    });
    let f = load_err(dir.path()).to_failure();
    assert_eq!(f.error_code, ErrorCode::TrainingModelLoadFailed);
    assert!(f.detail.contains("sliding_window"), "{}", f.detail);
}

#[test]
fn truncated_weights_name_the_file() {
    let dir = copy();
    let path = dir.path().join("model.safetensors");
    let bytes = std::fs::read(&path).unwrap();
    std::fs::write(&path, &bytes[..bytes.len() / 2]).unwrap();
    let f = load_err(dir.path()).to_failure();
    assert_eq!(f.error_code, ErrorCode::TrainingModelLoadFailed);
    assert!(f.detail.contains("model.safetensors"), "{}", f.detail);
}

#[test]
fn garbage_weights_are_a_load_failure() {
    let dir = copy();
    std::fs::write(
        dir.path().join("model.safetensors"),
        b"not a safetensors file at all",
    )
    .unwrap();
    assert_eq!(
        load_err(dir.path()).code(),
        ErrorCode::TrainingModelLoadFailed
    );
}

#[test]
fn no_weights_file_is_a_load_failure() {
    let dir = copy();
    std::fs::remove_file(dir.path().join("model.safetensors")).unwrap();
    assert_eq!(
        load_err(dir.path()).code(),
        ErrorCode::TrainingModelLoadFailed
    );
}

#[test]
fn untied_model_without_lm_head_names_the_tensor() {
    let dir = copy();
    edit_config(dir.path(), |c| {
        c.insert("tie_word_embeddings".into(), serde_json::json!(false));
    });
    let f = load_err(dir.path()).to_failure();
    assert_eq!(f.error_code, ErrorCode::TrainingModelLoadFailed);
    assert!(f.detail.contains("lm_head.weight"), "{}", f.detail);
}

#[test]
fn shape_mismatch_names_tensor_and_shapes() {
    let dir = copy();
    edit_config(dir.path(), |c| {
        c.insert("intermediate_size".into(), serde_json::json!(96));
    });
    let f = load_err(dir.path()).to_failure();
    assert_eq!(f.error_code, ErrorCode::TrainingModelLoadFailed);
    assert!(
        f.detail.contains("model.layers.0.mlp.gate_proj.weight") && f.detail.contains("[96, 64]"),
        "{}",
        f.detail
    );
}

#[test]
fn missing_shard_named_by_the_index_is_a_load_failure() {
    let dir = copy();
    let index = serde_json::json!({ "weight_map": { "model.embed_tokens.weight": "model-00001-of-00002.safetensors" } });
    std::fs::write(
        dir.path().join("model.safetensors.index.json"),
        index.to_string(),
    )
    .unwrap();
    let f = load_err(dir.path()).to_failure();
    assert_eq!(f.error_code, ErrorCode::TrainingModelLoadFailed);
    assert!(
        f.detail.contains("model-00001-of-00002.safetensors"),
        "{}",
        f.detail
    );
}

#[test]
fn invalid_json_config_is_a_load_failure() {
    let dir = copy();
    std::fs::write(dir.path().join("config.json"), "{ not json").unwrap();
    assert_eq!(
        load_err(dir.path()).code(),
        ErrorCode::TrainingModelLoadFailed
    );
}

#[test]
fn unknown_target_module_is_a_validation_error() {
    let lora = LoraSettings {
        r: 4,
        alpha: 8.0,
        dropout: 0.0,
        target_modules: vec!["qkv_proj".into()],
    };
    let e = match Llama::load(&fixture(), Device::Cpu, Kind::Float, Some(&lora), 0) {
        Ok(_) => panic!("unknown target must fail"),
        Err(e) => e,
    };
    let f = e.to_failure();
    assert_eq!(f.error_code, ErrorCode::ValidationError);
    assert!(f.detail.contains("qkv_proj"), "{}", f.detail);
    let zero_rank = LoraSettings {
        r: 0,
        alpha: 8.0,
        dropout: 0.0,
        target_modules: vec!["q_proj".into()],
    };
    assert!(Llama::load(&fixture(), Device::Cpu, Kind::Float, Some(&zero_rank), 0).is_err());
}

#[test]
fn an_oversized_allocation_becomes_training_oom() {
    // A real allocator failure from libtorch, caught by `guarded` and classified.
    let r = tunewright_trainer::model::guarded("forward", || {
        tch::Tensor::zeros([1 << 40, 1 << 20], (Kind::Float, Device::Cpu))
    });
    match r {
        Err(e) => assert_eq!(e.to_failure().error_code, ErrorCode::TrainingOom, "{e}"),
        Ok(_) => panic!("a 4 EiB allocation cannot succeed"),
    }
}
