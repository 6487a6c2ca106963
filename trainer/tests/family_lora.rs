//! LoRA on every family: a few training steps lower the loss, and the adapter tunewright
//! writes loads in PEFT (`PeftModel.from_pretrained` on transformers' model of the fixture)
//! and gives tunewright's logits. Phi-3's LoRA sits on its fused `qkv_proj` and
//! `gate_up_proj` under the names and shapes PEFT gives those modules.

mod support;

use tch::{Device, Kind};
use tunewright_trainer::export::read_adapter;
use tunewright_trainer::model::CausalLm;
use tunewright_trainer::train::train;

use support::{fixture, get, max_diff, peft_logits, reference, train_spec, Recorder};

/// PEFT and tunewright compute the same f32 ops in the same order: exactly equal logits.
const PEFT_BOUND: f64 = 0.0;

fn mean(xs: &[f64]) -> f64 {
    xs.iter().sum::<f64>() / xs.len() as f64
}

fn trains_and_loads_in_peft(family: &str) {
    let dir = tempfile::tempdir().unwrap();
    let spec = train_spec(family, dir.path(), serde_json::json!({}));
    let mut rec = Recorder::default();
    let out = train(&spec, &mut rec).unwrap();
    let losses: Vec<f64> = rec.progress.iter().map(|p| p.loss).collect();
    assert_eq!(out.steps, 12);
    let (first, last) = (mean(&losses[..3]), mean(&losses[9..]));
    println!("{family}: loss {first:.3} -> {last:.3}");
    assert!(last < first * 0.9, "{family}: loss {first:.3} -> {last:.3}");

    let adapter_dir = dir.path().join("adapter");
    let adapter = read_adapter(&adapter_dir).unwrap();
    let mut model = CausalLm::load(
        &fixture(family),
        Device::Cpu,
        Kind::Float,
        Some(&adapter.settings),
        0,
    )
    .unwrap();
    model.load_lora_parameters(&adapter.tensors).unwrap();
    let ids = get(&reference(family), "input_ids").narrow(0, 0, 1);
    let ours = tch::no_grad(|| model.forward(&ids, None, false));
    let base = CausalLm::load(&fixture(family), Device::Cpu, Kind::Float, None, 0).unwrap();
    let moved = max_diff(&ours, &tch::no_grad(|| base.forward(&ids, None, false)));
    let theirs = peft_logits(&fixture(family), &adapter_dir, &ids, &[]);
    let d = max_diff(&ours, &theirs);
    println!(
        "{family}: PEFT vs tunewright max abs diff {d:e} (training moved the logits by {moved:.3})"
    );
    assert!(
        moved > 1e-2,
        "{family}: training must move the logits ({moved})"
    );
    assert!(d <= PEFT_BOUND, "{family}: PEFT logits differ by {d}");
}

#[test]
fn llama() {
    trains_and_loads_in_peft("llama");
}
#[test]
fn mistral() {
    trains_and_loads_in_peft("mistral");
}
#[test]
fn qwen2() {
    trains_and_loads_in_peft("qwen2");
}
#[test]
fn qwen3() {
    trains_and_loads_in_peft("qwen3");
}
#[test]
fn phi3() {
    trains_and_loads_in_peft("phi3");
}
#[test]
fn gemma2() {
    trains_and_loads_in_peft("gemma2");
}
#[test]
fn gemma3() {
    trains_and_loads_in_peft("gemma3");
}

#[test]
fn phi3_adapters_carry_peft_fused_module_names_and_shapes() {
    let lora = tunewright_trainer::model::LoraSettings {
        r: 4,
        alpha: 8.0,
        dropout: 0.0,
        target_modules: vec!["q_proj".into(), "v_proj".into(), "up_proj".into()],
    };
    let model = CausalLm::load(&fixture("phi3"), Device::Cpu, Kind::Float, Some(&lora), 1).unwrap();
    let params: Vec<(String, Vec<i64>)> = model
        .lora_parameters()
        .iter()
        .map(|(n, t)| (n.clone(), t.size()))
        .collect();
    let p = "base_model.model.model.layers.0";
    assert_eq!(
        params[0],
        (format!("{p}.self_attn.qkv_proj.lora_A.weight"), vec![4, 64])
    );
    // q (4 heads x 16) + k and v (2 heads x 16 each).
    assert_eq!(
        params[1],
        (
            format!("{p}.self_attn.qkv_proj.lora_B.weight"),
            vec![128, 4]
        )
    );
    assert_eq!(
        params[2],
        (format!("{p}.mlp.gate_up_proj.lora_A.weight"), vec![4, 64])
    );
    assert_eq!(
        params[3],
        (format!("{p}.mlp.gate_up_proj.lora_B.weight"), vec![256, 4])
    );
    assert_eq!(params.len(), 8);
}
