//! Gradient checkpointing recomputes each layer in the backward pass and gives the loss and
//! LoRA gradients of the plain backward pass (no dropout: both runs see the same function),
//! on a family with plain and one with sliding/soft-capped layers; and a run with it trains.

mod support;

use tch::{Device, Kind, Reduction, Tensor};
use tunewright_trainer::model::{CausalLm, LoraSettings};
use tunewright_trainer::train::train;

use support::{fixture, get, reference, rng_lock, train_spec, Recorder};

fn settings() -> LoraSettings {
    LoraSettings {
        r: 4,
        alpha: 8.0,
        dropout: 0.0,
        target_modules: vec!["all-linear".into()],
    }
}

/// A LoRA model with non-zero B (as after some training), so every LoRA tensor gets a gradient.
fn model(family: &str) -> CausalLm {
    let _rng = rng_lock();
    let mut m = CausalLm::load(
        &fixture(family),
        Device::Cpu,
        Kind::Float,
        Some(&settings()),
        3,
    )
    .unwrap();
    let bumped: Vec<(String, Tensor)> = m
        .lora_parameters()
        .iter()
        .enumerate()
        .map(|(i, (n, t))| (n.clone(), t.detach() + 0.01 * ((i % 5) as f64 + 1.0)))
        .collect();
    m.load_lora_parameters(&bumped).unwrap();
    m
}

fn loss(logits: &Tensor, ids: &Tensor) -> Tensor {
    let (b, t, v) = logits.size3().unwrap();
    logits
        .narrow(1, 0, t - 1)
        .reshape([b * (t - 1), v])
        .cross_entropy_loss::<Tensor>(
            &ids.narrow(1, 1, t - 1).reshape([-1]),
            None,
            Reduction::Mean,
            -100,
            0.0,
        )
}

fn grads(m: &CausalLm) -> Vec<Tensor> {
    m.lora_parameters()
        .iter()
        .map(|(_, t)| t.grad().copy())
        .collect()
}

fn zero_grads(m: &CausalLm) {
    for (_, t) in m.lora_parameters() {
        let mut g = t.grad();
        if g.defined() {
            let _ = g.zero_();
        }
    }
}

fn same_loss_and_gradients(family: &str) {
    let m = model(family);
    let r = reference(family);
    let ids = get(&r, "input_ids");
    let mask = get(&r, "attention_mask");

    let plain = loss(&m.forward(ids, Some(mask), true), ids);
    plain.backward();
    let g_plain = grads(&m);
    zero_grads(&m);

    let (logits, recompute) = m.forward_checkpointed(ids, Some(mask)).unwrap();
    let ckpt = loss(&logits, ids);
    ckpt.backward();
    recompute.backward().unwrap();
    let g_ckpt = grads(&m);

    assert_eq!(
        plain.double_value(&[]),
        ckpt.double_value(&[]),
        "{family}: loss"
    );
    let mut worst = 0f64;
    for (a, b) in g_plain.iter().zip(&g_ckpt) {
        assert!(
            a.abs().sum(Kind::Float).double_value(&[]) > 0.0,
            "{family}: a gradient"
        );
        let scale = a.abs().max().double_value(&[]).max(1e-12);
        worst = worst.max((a - b).abs().max().double_value(&[]) / scale);
    }
    println!(
        "{family}: LoRA gradients with and without checkpointing: max relative diff {worst:e}"
    );
    // The same kernels on the same inputs, and the gradient into each layer input summed in
    // the same order: exactly equal.
    assert_eq!(worst, 0.0, "{family}: gradients differ");
}

#[test]
fn llama_checkpointed_gradients_equal_the_plain_ones() {
    same_loss_and_gradients("llama");
}

#[test]
fn gemma2_checkpointed_gradients_equal_the_plain_ones() {
    same_loss_and_gradients("gemma2");
}

#[test]
fn a_run_with_checkpointing_and_dropout_trains() {
    let dir = tempfile::tempdir().unwrap();
    let spec = train_spec(
        "qwen2",
        dir.path(),
        serde_json::json!({"gradient_checkpointing": true, "lora_dropout": 0.1}),
    );
    let mut rec = Recorder::default();
    train(&spec, &mut rec).unwrap();
    let l: Vec<f64> = rec.progress.iter().map(|p| p.loss).collect();
    assert!(
        l[9..].iter().sum::<f64>() < l[..3].iter().sum::<f64>() * 0.9,
        "{l:?}"
    );
}
