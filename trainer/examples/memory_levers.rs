//! The memory levers measured in one run (`script/memory-levers`): a random Llama checkpoint
//! (bf16 on disk, like released ones) is trained for a few steps by the real training loop
//! under several configs, each in a fresh child process so that its peak RSS (`VmHWM`) is its
//! own (glibc is told to return freed blocks of 64 KiB and more at once, so that RSS follows
//! the live tensors). For each: the peak RSS above the process's RSS before training
//! (libtorch's code and runtime, started by a warm-up, are not the run's memory), the
//! pre-flight estimate beside it, and the base weights as the model holds them.
//!
//! Arguments: [--hidden 1024] [--layers 8] [--intermediate 2816] [--heads 16] [--kv-heads 4]
//! [--batch 2] [--seq 256] [--steps 2] [--out FILE.json]; `--child CONFIG_JSON` is the child.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use serde_json::{json, Value};
use tch::{Device, Kind, Tensor};
use tunewright_schemas::config::TrainConfig;
use tunewright_schemas::dataset::Turn;
use tunewright_trainer::export::files::write_safetensors;
use tunewright_trainer::model::{CausalLm, LoadOptions, ModelConfig};
use tunewright_trainer::train::tokenize::ChatTokenizer;
use tunewright_trainer::train::{
    estimate_memory, quant_settings, train, CheckpointRecord, Control, ProgressReport, TrainHooks,
    TrainSpec,
};

fn main() {
    if let Err(e) = run() {
        eprintln!("memory_levers: {e}");
        std::process::exit(1);
    }
}

fn arg<T: std::str::FromStr>(args: &[String], key: &str, default: T) -> Result<T, String> {
    match args.iter().position(|a| a == key) {
        None => Ok(default),
        Some(i) => args
            .get(i + 1)
            .and_then(|v| v.parse().ok())
            .ok_or_else(|| format!("{key} needs a value")),
    }
}

/// `VmHWM` or `VmRSS` of this process, in bytes.
fn status_bytes(field: &str) -> u64 {
    let text = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    text.lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|rest| {
            rest.trim()
                .trim_end_matches("kB")
                .trim()
                .parse::<u64>()
                .ok()
        })
        .map(|kb| kb * 1024)
        .unwrap_or(0)
}

/// The training configs compared: (label, the levers on top of the common config).
fn configs() -> Vec<(&'static str, Value)> {
    vec![
        ("LoRA", json!({})),
        (
            "QLoRA (nf4, double quant)",
            json!({"load_in_4bit": true, "bnb_4bit_use_double_quant": true}),
        ),
        (
            "LoRA + gradient checkpointing",
            json!({"gradient_checkpointing": true}),
        ),
        (
            "QLoRA + gradient checkpointing",
            json!({"load_in_4bit": true, "bnb_4bit_use_double_quant": true, "gradient_checkpointing": true}),
        ),
    ]
}

fn run() -> Result<(), String> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if let Some(i) = args.iter().position(|a| a == "--child") {
        let cfg: Value = serde_json::from_str(args.get(i + 1).ok_or("--child needs JSON")?)
            .map_err(|e| e.to_string())?;
        let out = child(&cfg)?;
        println!("{out}");
        return Ok(());
    }
    let work = tempfile::tempdir().map_err(|e| e.to_string())?;
    let model = work.path().join("model");
    let shape = Shape {
        hidden: arg(&args, "--hidden", 1024)?,
        layers: arg(&args, "--layers", 8)?,
        intermediate: arg(&args, "--intermediate", 2816)?,
        heads: arg(&args, "--heads", 16)?,
        kv_heads: arg(&args, "--kv-heads", 4)?,
    };
    write_random_llama(&model, &shape)?;
    let (batch, seq): (i64, i64) = (arg(&args, "--batch", 2)?, arg(&args, "--seq", 256)?);
    let data = work.path().join("data.jsonl");
    write_long_examples(&model, &data, seq)?;
    let mut results = Vec::new();
    for (label, levers) in configs() {
        let mut cfg = json!({
            "base_model": model.display().to_string(), "device": "cpu",
            "per_device_train_batch_size": batch, "max_seq_length": seq,
            "max_steps": arg(&args, "--steps", 2u64)?, "lora_r": 16, "lora_alpha": 32,
            "lora_dropout": 0.0, "target_modules": ["all-linear"], "checkpoint_every_steps": 1000,
        });
        for (k, v) in levers.as_object().into_iter().flatten() {
            cfg[k] = v.clone();
        }
        let spec =
            json!({"config": cfg, "data": data, "out": work.path().join(label.replace(' ', "_"))});
        let exe = std::env::current_exe().map_err(|e| e.to_string())?;
        // glibc keeps freed blocks under its (growing) mmap threshold in the heap, so RSS would
        // count memory the run no longer holds; blocks of 64 KiB and more go straight back.
        let o = Command::new(exe)
            .env("MALLOC_MMAP_THRESHOLD_", "65536")
            .args(["--child", &spec.to_string()])
            .output()
            .map_err(|e| e.to_string())?;
        if !o.status.success() {
            return Err(format!("{label}: {}", String::from_utf8_lossy(&o.stderr)));
        }
        let line = String::from_utf8_lossy(&o.stdout);
        let mut r: Value = serde_json::from_str(line.trim().lines().last().unwrap_or(""))
            .map_err(|e| format!("{label}: {e}"))?;
        r["config"] = json!(label);
        results.push(r);
    }
    report(&shape, batch, seq, &results);
    if let Ok(path) = arg::<String>(&args, "--out", String::new()) {
        if !path.is_empty() {
            std::fs::write(
                &path,
                serde_json::to_vec_pretty(&results).map_err(|e| e.to_string())?,
            )
            .map_err(|e| e.to_string())?;
        }
    }
    Ok(())
}

struct Shape {
    hidden: i64,
    layers: i64,
    intermediate: i64,
    heads: i64,
    kv_heads: i64,
}

/// A random-init LlamaForCausalLM in bf16 with the tiny fixture's tokenizer (vocab 696).
fn write_random_llama(dir: &Path, s: &Shape) -> Result<(), String> {
    std::fs::create_dir_all(dir).map_err(|e| e.to_string())?;
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/tiny-llama");
    for f in [
        "tokenizer.json",
        "tokenizer_config.json",
        "special_tokens_map.json",
    ] {
        std::fs::copy(fixture.join(f), dir.join(f)).map_err(|e| e.to_string())?;
    }
    let vocab = 696;
    let config = json!({
        "architectures": ["LlamaForCausalLM"], "model_type": "llama", "vocab_size": vocab,
        "hidden_size": s.hidden, "intermediate_size": s.intermediate, "num_hidden_layers": s.layers,
        "num_attention_heads": s.heads, "num_key_value_heads": s.kv_heads, "rms_norm_eps": 1e-5,
        "rope_theta": 10000.0, "max_position_embeddings": 4096, "tie_word_embeddings": false,
        "hidden_act": "silu", "torch_dtype": "bfloat16", "bos_token_id": 0, "eos_token_id": 5
    });
    std::fs::write(dir.join("config.json"), config.to_string()).map_err(|e| e.to_string())?;
    let (h, i) = (s.hidden, s.intermediate);
    let d = h / s.heads;
    let mut shapes = vec![("model.embed_tokens.weight".to_string(), vec![vocab, h])];
    shapes.push(("lm_head.weight".into(), vec![vocab, h]));
    shapes.push(("model.norm.weight".into(), vec![h]));
    for l in 0..s.layers {
        let p = format!("model.layers.{l}");
        for (n, shape) in [
            ("self_attn.q_proj", vec![s.heads * d, h]),
            ("self_attn.k_proj", vec![s.kv_heads * d, h]),
            ("self_attn.v_proj", vec![s.kv_heads * d, h]),
            ("self_attn.o_proj", vec![h, s.heads * d]),
            ("mlp.gate_proj", vec![i, h]),
            ("mlp.up_proj", vec![i, h]),
            ("mlp.down_proj", vec![h, i]),
        ] {
            shapes.push((format!("{p}.{n}.weight"), shape));
        }
        shapes.push((format!("{p}.input_layernorm.weight"), vec![h]));
        shapes.push((format!("{p}.post_attention_layernorm.weight"), vec![h]));
    }
    tch::manual_seed(0);
    let tensors: Vec<(String, Tensor)> = shapes
        .into_iter()
        .map(|(n, shape)| {
            let t = if shape.len() == 1 {
                Tensor::ones(shape.as_slice(), (Kind::Float, Device::Cpu))
            } else {
                Tensor::randn(shape.as_slice(), (Kind::Float, Device::Cpu)) * 0.02
            };
            (n, t.to_kind(Kind::BFloat16))
        })
        .collect();
    write_safetensors(&dir.join("model.safetensors"), &tensors).map_err(|e| e.to_string())
}

/// Examples whose rendering fills `seq` tokens but a few, so that micro-batches are as long
/// as the estimate assumes.
fn write_long_examples(model: &Path, out: &Path, seq: i64) -> Result<(), String> {
    let tok = ChatTokenizer::load(model).map_err(|e| e.to_string())?;
    const WORDS: &[&str] = &[
        "river", "bridge", "adapter", "weights", "gradient", "event", "log", "Paris",
    ];
    let mut lines = Vec::new();
    for n in 0..32usize {
        let mut answer = String::new();
        let mut k = n;
        loop {
            let next = format!("{answer} {}", WORDS[k % WORDS.len()]);
            let turns = vec![
                Turn {
                    role: "user".into(),
                    content: format!("Repeat list {n}."),
                },
                Turn {
                    role: "assistant".into(),
                    content: next.trim().to_string(),
                },
            ];
            let (ids, _) = tok.encode_example(&turns).map_err(|e| e.to_string())?;
            if ids.len() as i64 > seq - 2 {
                break;
            }
            answer = next;
            k += 3;
        }
        lines.push(
            json!({"prompt": format!("Repeat list {n}."), "completion": answer.trim()}).to_string(),
        );
    }
    std::fs::write(out, lines.join("\n") + "\n").map_err(|e| e.to_string())
}

struct Quiet;

impl TrainHooks for Quiet {
    fn on_progress(&mut self, _: &ProgressReport) {}
    fn on_checkpoint(&mut self, _: &CheckpointRecord) {}
    fn on_note(&mut self, _: &str, _: Value) {}
    fn control(&mut self) -> Control {
        Control::Continue
    }
}

/// Start what libtorch starts lazily on the first matmul and backward pass (thread pools, BLAS
/// buffers), so that the baseline holds the runtime and the peak above it is the run's.
fn warm_up_libtorch() {
    let a = Tensor::randn([512, 512], (Kind::Float, Device::Cpu)).set_requires_grad(true);
    let b = Tensor::randn([512, 512], (Kind::Float, Device::Cpu));
    a.matmul(&b).gelu("tanh").sum(Kind::Float).backward();
    let _ = a.to_kind(Kind::BFloat16).matmul(&b.to_kind(Kind::BFloat16));
}

/// One config in this (fresh) process: its base weights, estimate and peak RSS.
fn child(spec: &Value) -> Result<Value, String> {
    let cfg = TrainConfig::from_json(&spec["config"]).map_err(|f| f.detail)?;
    let model_dir = PathBuf::from(&cfg.base_model);
    let mc = ModelConfig::from_dir(&model_dir).map_err(|e| e.to_string())?;
    let estimate = estimate_memory(&mc, &cfg, Device::Cpu).map_err(|e| e.to_string())?;
    let bf16 = tunewright_trainer::train::memory::base_weight_bytes(&mc, 2, None);
    warm_up_libtorch();
    let before = status_bytes("VmRSS:");
    let out = PathBuf::from(spec["out"].as_str().unwrap_or("out"));
    let tspec = TrainSpec {
        config: cfg.clone(),
        model_dir: model_dir.clone(),
        train_data: PathBuf::from(spec["data"].as_str().unwrap_or("")),
        val_data: None,
        output_dir: out.join("adapter"),
        checkpoint_root: out.join("checkpoints"),
        resume_from: None,
    };
    let started = Instant::now();
    let outcome = train(&tspec, &mut Quiet).map_err(|e| e.to_string())?;
    let peak = status_bytes("VmHWM:");
    // The weights as the run held them, counted on the same model loaded again afterwards.
    let options = LoadOptions {
        quant: quant_settings(&cfg),
    };
    let held = CausalLm::load_with(&model_dir, Device::Cpu, Kind::Float, None, 0, options)
        .map_err(|e| e.to_string())?
        .base_weight_bytes();
    Ok(json!({
        "parameters": mc.num_parameters(),
        "base_weights_bytes": held,
        "base_weights_bf16_bytes": bf16,
        "rss_before_training_bytes": before,
        "peak_rss_bytes": peak,
        "measured_training_bytes": peak.saturating_sub(before),
        "estimate": estimate,
        "steps": outcome.steps,
        "seconds": started.elapsed().as_secs_f64(),
    }))
}

fn report(s: &Shape, batch: i64, seq: i64, results: &[Value]) {
    let mib = |v: &Value| v.as_f64().unwrap_or(0.0) / 1048576.0;
    if let Some(first) = results.first() {
        println!(
            "random Llama: hidden {}, {} layers, intermediate {}, {} heads ({} KV), {:.1}M parameters; batch {batch} x {seq} tokens, f32 compute on the CPU",
            s.hidden, s.layers, s.intermediate, s.heads, s.kv_heads,
            first["parameters"].as_f64().unwrap_or(0.0) / 1e6
        );
    }
    println!(
        "{:<32} {:>13} {:>9} {:>15} {:>13} {:>7}",
        "config", "base weights", "vs bf16", "peak RSS above", "estimate", "est/meas"
    );
    for r in results {
        let measured = mib(&r["measured_training_bytes"]);
        let estimate = mib(&r["estimate"]["total"]);
        println!(
            "{:<32} {:>9.1} MiB {:>8.3}x {:>11.1} MiB {:>9.1} MiB {:>7.2}",
            r["config"].as_str().unwrap_or(""),
            mib(&r["base_weights_bytes"]),
            mib(&r["base_weights_bytes"]) / mib(&r["base_weights_bf16_bytes"]).max(1e-9),
            measured,
            estimate,
            estimate / measured.max(1e-9),
        );
    }
}
