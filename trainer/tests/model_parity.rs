//! The tiny Llama fixture against transformers' reference logits (f32, max abs diff <= 1e-5),
//! in every on-disk form we load: as generated, sharded with an index, and with a
//! transformers-5 style config.

use std::path::{Path, PathBuf};

use tch::{Device, Kind, Tensor};
use tunewright_trainer::export::files::{read_safetensors, write_safetensors};
use tunewright_trainer::model::{Llama, LlamaConfig, LoraSettings};

fn fixture() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/tiny-llama")
}

fn reference() -> Vec<(String, Tensor)> {
    read_safetensors(&fixture().join("reference_logits.safetensors")).expect("reference logits")
}

fn get<'a>(r: &'a [(String, Tensor)], name: &str) -> &'a Tensor {
    &r.iter().find(|(n, _)| n == name).expect(name).1
}

fn max_diff(a: &Tensor, b: &Tensor) -> f64 {
    (a - b).abs().max().double_value(&[])
}

fn check_unmasked(model: &Llama) -> f64 {
    let r = reference();
    let ids = get(&r, "input_ids").narrow(0, 0, 1);
    let logits = tch::no_grad(|| model.forward(&ids, None, false));
    max_diff(&logits, get(&r, "logits_unmasked"))
}

fn copy_fixture(to: &Path) {
    for e in std::fs::read_dir(fixture()).unwrap() {
        let p = e.unwrap().path();
        std::fs::copy(&p, to.join(p.file_name().unwrap())).unwrap();
    }
}

#[test]
fn logits_match_transformers_without_padding() {
    let model = Llama::load(&fixture(), Device::Cpu, Kind::Float, None, 0).unwrap();
    let d = check_unmasked(&model);
    assert!(d <= 1e-5, "max abs diff {d}");
}

#[test]
fn logits_match_transformers_with_right_padding() {
    let model = Llama::load(&fixture(), Device::Cpu, Kind::Float, None, 0).unwrap();
    let r = reference();
    let mask = get(&r, "attention_mask");
    let logits = tch::no_grad(|| model.forward(get(&r, "input_ids"), Some(mask), false));
    let expected = get(&r, "logits_masked");
    // Compare the real tokens only: what a padded position outputs is nobody's business.
    let keep = mask.to_kind(Kind::Bool).unsqueeze(-1).expand_as(&logits);
    let d = max_diff(&logits.masked_select(&keep), &expected.masked_select(&keep));
    assert!(d <= 1e-5, "max abs diff {d}");
    assert!(
        logits.isfinite().all().int64_value(&[]) == 1,
        "padded rows must stay finite"
    );
}

#[test]
fn fresh_lora_leaves_logits_unchanged() {
    let lora = LoraSettings {
        r: 4,
        alpha: 8.0,
        dropout: 0.0,
        target_modules: vec!["all-linear".into()],
    };
    let model = Llama::load(&fixture(), Device::Cpu, Kind::Float, Some(&lora), 3).unwrap();
    let d = check_unmasked(&model);
    assert!(
        d <= 1e-5,
        "B is zero at init, so LoRA adds nothing: diff {d}"
    );
}

#[test]
fn sharded_checkpoint_loads_to_the_same_logits() {
    let dir = tempfile::tempdir().unwrap();
    copy_fixture(dir.path());
    std::fs::remove_file(dir.path().join("model.safetensors")).unwrap();
    let tensors = read_safetensors(&fixture().join("model.safetensors")).unwrap();
    let (first, second) = tensors.split_at(tensors.len() / 2);
    let mut map = serde_json::Map::new();
    for (shard, part) in [
        ("model-00001-of-00002.safetensors", first),
        ("model-00002-of-00002.safetensors", second),
    ] {
        let part: Vec<(String, Tensor)> = part
            .iter()
            .map(|(n, t)| (n.clone(), t.shallow_clone()))
            .collect();
        write_safetensors(&dir.path().join(shard), &part).unwrap();
        for (n, _) in &part {
            map.insert(n.clone(), shard.into());
        }
    }
    let index = serde_json::json!({ "metadata": { "total_size": 0 }, "weight_map": map });
    std::fs::write(
        dir.path().join("model.safetensors.index.json"),
        index.to_string(),
    )
    .unwrap();
    let model = Llama::load(dir.path(), Device::Cpu, Kind::Float, None, 0).unwrap();
    let d = check_unmasked(&model);
    assert!(d <= 1e-5, "max abs diff {d}");
}

#[test]
fn transformers_5_config_reads_the_same_as_transformers_4() {
    let v4: serde_json::Value =
        serde_json::from_slice(&std::fs::read(fixture().join("config.json")).unwrap()).unwrap();
    let mut v5 = v4.clone();
    let obj = v5.as_object_mut().unwrap();
    let theta = obj.remove("rope_theta").unwrap();
    let mut rope = obj.remove("rope_scaling").unwrap();
    rope.as_object_mut()
        .unwrap()
        .insert("rope_theta".into(), theta);
    obj.insert("rope_parameters".into(), rope);
    let dtype = obj.remove("dtype").unwrap();
    obj.insert("dtype".into(), dtype);
    obj.insert("transformers_version".into(), "5.0.0".into());
    assert_eq!(
        LlamaConfig::from_json(&v4).unwrap(),
        LlamaConfig::from_json(&v5).unwrap()
    );

    let dir = tempfile::tempdir().unwrap();
    copy_fixture(dir.path());
    std::fs::write(dir.path().join("config.json"), v5.to_string()).unwrap();
    let model = Llama::load(dir.path(), Device::Cpu, Kind::Float, None, 0).unwrap();
    let d = check_unmasked(&model);
    assert!(d <= 1e-5, "max abs diff {d}");
}

#[test]
fn config_fields_of_the_fixture() {
    let c = LlamaConfig::from_dir(&fixture()).unwrap();
    assert_eq!(
        (
            c.hidden_size,
            c.num_hidden_layers,
            c.num_attention_heads,
            c.num_key_value_heads,
            c.head_dim
        ),
        (64, 2, 4, 2, 16)
    );
    assert!(c.tie_word_embeddings);
    assert!(matches!(
        c.rope_scaling,
        tunewright_trainer::model::RopeScaling::Llama3 { .. }
    ));
    assert_eq!(c.pad_token_id, Some(2));
}

#[test]
fn bf16_forward_stays_close_to_f32() {
    let model = Llama::load(&fixture(), Device::Cpu, Kind::BFloat16, None, 0).unwrap();
    let d = check_unmasked(&model);
    assert!(d < 0.1, "bf16 drifted by {d}");
}
