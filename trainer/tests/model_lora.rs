//! LoRA as PEFT does it: key names and order, shapes, initialisation, seeding, dropout only
//! in training, gradients only on the adapter, exact reload.

use std::path::{Path, PathBuf};

use tch::{Device, Kind, Tensor};
use tunewright_trainer::model::{Llama, LoraSettings};

fn fixture() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/tiny-llama")
}

fn settings(targets: &[&str], dropout: f64) -> LoraSettings {
    LoraSettings {
        r: 4,
        alpha: 16.0,
        dropout,
        target_modules: targets.iter().map(|s| s.to_string()).collect(),
    }
}

fn ids() -> Tensor {
    Tensor::from_slice(&[0i64, 17, 42, 99, 123, 7, 300, 5]).view([1, 8])
}

/// LoRA initialisation draws from libtorch's process-wide generator (seeded by `Llama::load`),
/// and the test harness runs tests on parallel threads: each test here holds this lock so no
/// other test draws between a seed and its use.
fn rng_lock() -> std::sync::MutexGuard<'static, ()> {
    static RNG: std::sync::Mutex<()> = std::sync::Mutex::new(());
    RNG.lock().unwrap_or_else(|e| e.into_inner())
}

#[test]
fn parameters_have_peft_names_shapes_and_init() {
    let _rng = rng_lock();
    let model = Llama::load(
        &fixture(),
        Device::Cpu,
        Kind::Float,
        Some(&settings(&["q_proj", "v_proj"], 0.0)),
        1,
    )
    .unwrap();
    let params = model.lora_parameters();
    let names: Vec<&str> = params.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        names,
        [
            "base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight",
            "base_model.model.model.layers.0.self_attn.q_proj.lora_B.weight",
            "base_model.model.model.layers.0.self_attn.v_proj.lora_A.weight",
            "base_model.model.model.layers.0.self_attn.v_proj.lora_B.weight",
            "base_model.model.model.layers.1.self_attn.q_proj.lora_A.weight",
            "base_model.model.model.layers.1.self_attn.q_proj.lora_B.weight",
            "base_model.model.model.layers.1.self_attn.v_proj.lora_A.weight",
            "base_model.model.model.layers.1.self_attn.v_proj.lora_B.weight",
        ]
    );
    // q: 64 -> 64, v: 64 -> 32 (2 KV heads of 16).
    assert_eq!(params[0].1.size(), [4, 64]);
    assert_eq!(params[1].1.size(), [64, 4]);
    assert_eq!(params[3].1.size(), [32, 4]);
    for (n, t) in &params {
        assert!(t.requires_grad(), "{n}");
        assert_eq!(t.kind(), Kind::Float);
        if n.contains("lora_B") {
            assert_eq!(t.abs().max().double_value(&[]), 0.0, "{n} starts at zero");
        } else {
            let bound = 1.0 / 64f64.sqrt();
            let max = t.abs().max().double_value(&[]);
            assert!(
                max <= bound && max > bound * 0.5,
                "{n}: kaiming-uniform(a=sqrt 5) bound {bound}, max {max}"
            );
        }
    }
    assert_eq!(
        model.num_lora_parameters(),
        2 * (4 * 64 + 64 * 4) + 2 * (4 * 64 + 32 * 4)
    );
}

#[test]
fn init_is_deterministic_from_the_seed() {
    let _rng = rng_lock();
    let s = settings(&["all-linear"], 0.0);
    let a = Llama::load(&fixture(), Device::Cpu, Kind::Float, Some(&s), 7)
        .unwrap()
        .lora_parameters();
    let b = Llama::load(&fixture(), Device::Cpu, Kind::Float, Some(&s), 7)
        .unwrap()
        .lora_parameters();
    let c = Llama::load(&fixture(), Device::Cpu, Kind::Float, Some(&s), 8)
        .unwrap()
        .lora_parameters();
    assert_eq!(a.len(), 2 * 7 * 2);
    assert!(a.iter().zip(&b).all(|((_, x), (_, y))| x.equal(y)));
    assert!(!a[0].1.equal(&c[0].1));
}

#[test]
fn module_names_list_every_projection() {
    let _rng = rng_lock();
    let model = Llama::load(&fixture(), Device::Cpu, Kind::Float, None, 0).unwrap();
    let names = model.module_names();
    assert!(names.contains(&"model.layers.1.mlp.down_proj".to_string()));
    assert!(names.contains(&"model.layers.0.self_attn.k_proj".to_string()));
    assert!(names.contains(&"lm_head".to_string()));
    assert_eq!(names.len(), 2 * 7 + 1);
}

#[test]
fn gradients_reach_only_the_adapter_and_dropout_acts_only_in_training() {
    let _rng = rng_lock();
    let mut model = Llama::load(
        &fixture(),
        Device::Cpu,
        Kind::Float,
        Some(&settings(&["all-linear"], 0.3)),
        2,
    )
    .unwrap();
    // Make B non-zero so the LoRA path (and its dropout) changes the output.
    let params = model.lora_parameters();
    let bumped: Vec<(String, Tensor)> = params
        .iter()
        .map(|(n, t)| (n.clone(), t.detach() + 0.05))
        .collect();
    model.load_lora_parameters(&bumped).unwrap();

    let eval1 = tch::no_grad(|| model.forward(&ids(), None, false));
    let eval2 = tch::no_grad(|| model.forward(&ids(), None, false));
    assert!(eval1.equal(&eval2), "no dropout at evaluation");
    let train = tch::no_grad(|| model.forward(&ids(), None, true));
    assert!(
        !train.equal(&eval1),
        "dropout on the LoRA input in training"
    );

    let logits = model.forward(&ids(), None, true);
    let loss = logits.log_softmax(-1, Kind::Float).mean(Kind::Float).neg();
    loss.backward();
    for (n, t) in model.lora_parameters() {
        let g = t.grad();
        assert!(
            g.defined() && g.abs().sum(Kind::Float).double_value(&[]) > 0.0,
            "{n} has a gradient"
        );
    }
}

#[test]
fn load_lora_parameters_copies_exactly_and_rejects_mismatches() {
    let _rng = rng_lock();
    let s = settings(&["q_proj", "k_proj"], 0.0);
    let mut a = Llama::load(&fixture(), Device::Cpu, Kind::Float, Some(&s), 1).unwrap();
    let b = Llama::load(&fixture(), Device::Cpu, Kind::Float, Some(&s), 99).unwrap();
    let src: Vec<(String, Tensor)> = b
        .lora_parameters()
        .into_iter()
        .map(|(n, t)| (n, t.detach().copy()))
        .collect();
    a.load_lora_parameters(&src).unwrap();
    for ((_, x), (_, y)) in a.lora_parameters().iter().zip(&src) {
        assert!(x.equal(y));
        assert!(x.requires_grad());
    }
    let short = &src[1..];
    assert!(
        a.load_lora_parameters(short).is_err(),
        "a missing tensor is an error"
    );
    let mut wrong = src.clone_shallow();
    wrong[0].1 = Tensor::zeros([3, 3], (Kind::Float, Device::Cpu));
    assert!(
        a.load_lora_parameters(&wrong).is_err(),
        "a wrong shape is an error"
    );
    let mut extra = src.clone_shallow();
    extra.push((
        "base_model.model.lm_head.lora_A.weight".into(),
        Tensor::zeros([4, 64], (Kind::Float, Device::Cpu)),
    ));
    assert!(
        a.load_lora_parameters(&extra).is_err(),
        "an unknown tensor is an error"
    );
}

trait CloneShallow {
    fn clone_shallow(&self) -> Vec<(String, Tensor)>;
}

impl CloneShallow for Vec<(String, Tensor)> {
    fn clone_shallow(&self) -> Vec<(String, Tensor)> {
        self.iter()
            .map(|(n, t)| (n.clone(), t.shallow_clone()))
            .collect()
    }
}
