//! Every supported family against transformers on its tiny fixture (made by
//! `script/make-tiny-model`): the architecture is recognised from config.json, and the base
//! logits equal transformers' exactly (max abs diff 0 in f32 on the CPU: the same libtorch
//! kernels in the same order; transformers' reference uses its default `sdpa` attention, and
//! the eager one for Gemma 2's soft-capped logits, as tunewright does), with and without
//! right padding, with sliding windows shorter than the sequence; checkpoints stored in bf16 or
//! f16 load as the values they hold.

mod support;

use tch::{Device, Kind};
use tunewright_schemas::ModelFamily;
use tunewright_trainer::model::{AttentionSpan, CausalLm, ModelConfig};

use support::{fixture, get, max_diff, reference, FAMILIES};

/// The reference logits were computed once, by transformers, on the machine that made the
/// fixture; libtorch's vectorised kernels may round a last bit differently on another CPU (seen:
/// 7.7e-7 on Gemma 2's soft-capping `tanh`). A different computation (a missing norm, a wrong
/// rotary, a mask off by one) moves logits by 1e-3 or more, so this bound still catches it.
const BOUND: f64 = 1e-5;

#[test]
fn base_logits_equal_transformers_for_every_family() {
    for family in FAMILIES {
        let model = CausalLm::load(&fixture(family), Device::Cpu, Kind::Float, None, 0).unwrap();
        let r = reference(family);
        let ids = get(&r, "input_ids");
        let mask = get(&r, "attention_mask");
        let unmasked = tch::no_grad(|| model.forward(&ids.narrow(0, 0, 1), None, false));
        let d_unmasked = max_diff(&unmasked, get(&r, "logits_unmasked"));
        let masked = tch::no_grad(|| model.forward(ids, Some(mask), false));
        // Compare the real tokens only: what a padded position outputs is nobody's business.
        let keep = mask.to_kind(Kind::Bool).unsqueeze(-1).expand_as(&masked);
        let expected = get(&r, "logits_masked");
        let d_masked = max_diff(&masked.masked_select(&keep), &expected.masked_select(&keep));
        println!("{family}: max abs diff {d_unmasked:e} (unpadded), {d_masked:e} (padded)");
        assert!(
            d_unmasked <= BOUND && d_masked <= BOUND,
            "{family}: {d_unmasked} / {d_masked}"
        );
        assert_eq!(
            masked.isfinite().all().int64_value(&[]),
            1,
            "{family}: finite"
        );
    }
}

#[test]
fn each_fixture_is_read_as_its_family() {
    let expected = [
        ("llama", ModelFamily::Llama, "LlamaForCausalLM"),
        ("mistral", ModelFamily::Mistral, "MistralForCausalLM"),
        ("qwen2", ModelFamily::Qwen2, "Qwen2ForCausalLM"),
        ("qwen3", ModelFamily::Qwen3, "Qwen3ForCausalLM"),
        ("phi3", ModelFamily::Phi3, "Phi3ForCausalLM"),
        ("gemma2", ModelFamily::Gemma2, "Gemma2ForCausalLM"),
        ("gemma3", ModelFamily::Gemma3, "Gemma3ForCausalLM"),
    ];
    for (name, family, arch) in expected {
        let c = ModelConfig::from_dir(&fixture(name)).unwrap();
        assert_eq!(
            (c.family, c.architecture.as_str()),
            (family, arch),
            "{name}"
        );
    }
    let mistral = ModelConfig::from_dir(&fixture("mistral")).unwrap();
    assert_eq!(mistral.spec.layer_spans, [AttentionSpan::Sliding(4); 2]);
    let gemma2 = ModelConfig::from_dir(&fixture("gemma2")).unwrap();
    assert_eq!(
        gemma2.spec.layer_spans,
        [AttentionSpan::Sliding(4), AttentionSpan::Global]
    );
    assert_eq!(gemma2.spec.attn_logit_softcap, Some(5.0));
    assert_eq!(gemma2.spec.final_logit_softcap, Some(3.0));
    assert!((gemma2.spec.attn_scale - 24f64.powf(-0.5)).abs() < 1e-15);
    let gemma3 = ModelConfig::from_dir(&fixture("gemma3")).unwrap();
    assert_eq!(gemma3.spec.local_rope_theta, Some(10000.0));
    assert!(gemma3.spec.qk_norm && gemma3.tie_word_embeddings);
    let qwen3 = ModelConfig::from_dir(&fixture("qwen3")).unwrap();
    assert_eq!((qwen3.head_dim, qwen3.hidden_size), (32, 64));
    let phi3 = ModelConfig::from_dir(&fixture("phi3")).unwrap();
    assert!(phi3.spec.fused_projections);
    assert_eq!(phi3.spec.rotary_dim, 12);
    assert!(
        ModelConfig::from_dir(&fixture("qwen2"))
            .unwrap()
            .spec
            .qkv_bias
    );
}

#[test]
fn the_sliding_window_matters_where_the_sequence_is_longer() {
    // Widening Mistral's window past the sequence changes the logits: the mask was applied.
    let dir = tempfile::tempdir().unwrap();
    for e in std::fs::read_dir(fixture("mistral")).unwrap() {
        let p = e.unwrap().path();
        std::fs::copy(&p, dir.path().join(p.file_name().unwrap())).unwrap();
    }
    let cfg_path = dir.path().join("config.json");
    let mut v: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&cfg_path).unwrap()).unwrap();
    v["sliding_window"] = serde_json::json!(4096);
    std::fs::write(&cfg_path, v.to_string()).unwrap();
    let r = reference("mistral");
    let ids = get(&r, "input_ids").narrow(0, 0, 1);
    let wide = CausalLm::load(dir.path(), Device::Cpu, Kind::Float, None, 0).unwrap();
    let logits = tch::no_grad(|| wide.forward(&ids, None, false));
    let d = max_diff(&logits, get(&r, "logits_unmasked"));
    assert!(
        d > 1e-3,
        "a window of 4 must differ from full attention: {d}"
    );
}

#[test]
fn gemma3_in_the_transformers_5_form_reads_the_same() {
    // transformers 5 keeps Gemma 3's rope per layer type under rope_parameters.
    let v4: serde_json::Value =
        serde_json::from_slice(&std::fs::read(fixture("gemma3").join("config.json")).unwrap())
            .unwrap();
    let mut v5 = v4.clone();
    let o = v5.as_object_mut().unwrap();
    let theta = o.remove("rope_theta").unwrap();
    let local = o.remove("rope_local_base_freq").unwrap();
    let mut full = o.remove("rope_scaling").unwrap();
    full["rope_theta"] = theta;
    o.insert(
        "rope_parameters".into(),
        serde_json::json!({
            "full_attention": full,
            "sliding_attention": {"rope_type": "default", "rope_theta": local}
        }),
    );
    assert_eq!(
        ModelConfig::from_json(&v4).unwrap(),
        ModelConfig::from_json(&v5).unwrap()
    );
}

/// `family`'s fixture with its weights stored as `kind` (`through` = false) or as f32 holding
/// the values `kind` can represent (`through` = true), in a new directory.
fn stored_as(family: &str, kind: Kind, through: bool) -> tempfile::TempDir {
    use tunewright_trainer::export::files::{read_safetensors, write_safetensors};
    let dir = tempfile::tempdir().unwrap();
    for e in std::fs::read_dir(fixture(family)).unwrap() {
        let p = e.unwrap().path();
        std::fs::copy(&p, dir.path().join(p.file_name().unwrap())).unwrap();
    }
    let weights = dir.path().join("model.safetensors");
    let tensors: Vec<(String, tch::Tensor)> = read_safetensors(&weights)
        .unwrap()
        .into_iter()
        .map(|(n, t)| {
            let t = t.to_kind(kind);
            (n, if through { t.to_kind(Kind::Float) } else { t })
        })
        .collect();
    write_safetensors(&weights, &tensors).unwrap();
    dir
}

#[test]
fn checkpoints_stored_in_bf16_and_f16_load_as_their_values() {
    // A half-precision checkpoint computed in f32 gives exactly the logits of an f32 checkpoint
    // holding the same values; those differ from the f32 fixture's (the rounding was real).
    for family in ["llama", "gemma2"] {
        let ids = get(&reference(family), "input_ids").narrow(0, 0, 1);
        for kind in [Kind::BFloat16, Kind::Half] {
            let logits = |dir: &std::path::Path| {
                let m = CausalLm::load(dir, Device::Cpu, Kind::Float, None, 0).unwrap();
                tch::no_grad(|| m.forward(&ids, None, false))
            };
            let half = logits(stored_as(family, kind, false).path());
            let widened = logits(stored_as(family, kind, true).path());
            let d = max_diff(&half, &widened);
            assert!(d <= BOUND, "{family} {kind:?}: {d}");
            let rounding = max_diff(&half, &logits(&fixture(family)));
            assert!(
                rounding > 0.0,
                "{family} {kind:?}: stored in half precision"
            );
        }
    }
}
