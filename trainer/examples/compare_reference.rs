//! The tunewright side of `script/compare-reference`: load a Llama checkpoint with LoRA,
//! train N steps (forward, next-token cross-entropy, backward, AdamW) on fixed token ids,
//! time the steps after warm-up, write the adapter with the PEFT writer and the logits of a
//! probe input, and print one JSON line with the figures.
//!
//! Arguments: --model DIR --inputs FILE (safetensors: train_ids [b, t], probe_ids [1, t'])
//! --adapter-out DIR --logits-out FILE [--device cpu|cuda] [--dtype f32|bf16] [--steps N]
//! [--warmup N] [--lora-r R] [--lora-alpha A] [--lora-dropout P] [--targets a,b,..]
//! [--lr LR] [--seed S]

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::Instant;

use tch::{Device, Kind, Tensor};
use tunewright_trainer::export::files::{read_safetensors, write_safetensors};
use tunewright_trainer::export::write_adapter;
use tunewright_trainer::model::{Llama, LoraSettings};
use tunewright_trainer::train::optim::AdamW;

fn main() {
    if let Err(e) = run() {
        eprintln!("compare_reference: {e}");
        std::process::exit(1);
    }
}

struct Args(HashMap<String, String>);

impl Args {
    fn parse() -> Result<Args, String> {
        let mut map = HashMap::new();
        let mut it = std::env::args().skip(1);
        while let Some(k) = it.next() {
            let key = k
                .strip_prefix("--")
                .ok_or_else(|| format!("unexpected argument '{k}'"))?
                .to_string();
            let v = it.next().ok_or_else(|| format!("--{key} needs a value"))?;
            map.insert(key, v);
        }
        Ok(Args(map))
    }
    fn str(&self, k: &str, default: Option<&str>) -> Result<String, String> {
        self.0
            .get(k)
            .cloned()
            .or(default.map(str::to_string))
            .ok_or_else(|| format!("--{k} is required"))
    }
    fn num<T: std::str::FromStr>(&self, k: &str, default: T) -> Result<T, String> {
        match self.0.get(k) {
            None => Ok(default),
            Some(v) => v.parse().map_err(|_| format!("--{k}: cannot parse '{v}'")),
        }
    }
}

/// Zero the gradients before a backward pass (PEFT side: `opt.zero_grad`).
fn zero_grad(params: &[Tensor]) {
    for p in params {
        let mut g = p.grad();
        if g.defined() {
            let _ = g.detach_().zero_();
        }
    }
}

fn run() -> Result<(), String> {
    let a = Args::parse()?;
    let model_dir = PathBuf::from(a.str("model", None)?);
    let inputs = PathBuf::from(a.str("inputs", None)?);
    let adapter_out = PathBuf::from(a.str("adapter-out", None)?);
    let logits_out = PathBuf::from(a.str("logits-out", None)?);
    let device = match a.str("device", Some("cpu"))?.as_str() {
        "cpu" => Device::Cpu,
        "cuda" => Device::Cuda(0),
        d => return Err(format!("unknown device {d}")),
    };
    let dtype = match a.str("dtype", Some("f32"))?.as_str() {
        "f32" | "float32" => Kind::Float,
        "bf16" | "bfloat16" => Kind::BFloat16,
        d => return Err(format!("unknown dtype {d}")),
    };
    let steps: usize = a.num("steps", 10)?;
    let warmup: usize = a.num("warmup", 2)?;
    let lora = LoraSettings {
        r: a.num("lora-r", 16)?,
        alpha: a.num("lora-alpha", 32.0)?,
        dropout: a.num("lora-dropout", 0.0)?,
        target_modules: a
            .str(
                "targets",
                Some("q_proj,k_proj,v_proj,o_proj,gate_proj,up_proj,down_proj"),
            )?
            .split(',')
            .map(str::to_string)
            .collect(),
    };
    let lr: f64 = a.num("lr", 1e-3)?;
    let seed: i64 = a.num("seed", 0)?;

    let t_load = Instant::now();
    let mut model =
        Llama::load(&model_dir, device, dtype, Some(&lora), seed).map_err(|e| e.to_string())?;
    let load_s = t_load.elapsed().as_secs_f64();
    let tensors = read_safetensors(&inputs)?;
    let find = |n: &str| {
        tensors
            .iter()
            .find(|(k, _)| k == n)
            .map(|(_, t)| t.to_device(device))
            .ok_or(format!("{n} missing in inputs"))
    };
    let train_ids = find("train_ids")?;
    let probe_ids = find("probe_ids")?;
    let (b, t) = (train_ids.size()[0], train_ids.size()[1]);

    let params: Vec<Tensor> = model
        .lora_parameters()
        .into_iter()
        .map(|(_, p)| p)
        .collect();
    // The trainer's own AdamW (torch.optim.AdamW's defaults: weight decay 0.01).
    let mut opt = AdamW::new(&params, 0.01);
    let sync = || {
        if let Device::Cuda(i) = device {
            tch::Cuda::synchronize(i as i64);
        }
    };
    let mut losses = Vec::new();
    let mut timed = 0.0;
    for step in 0..(warmup + steps) {
        sync();
        let start = Instant::now();
        let logits = model.forward(&train_ids, None, true);
        let vocab = logits.size()[2];
        let pred = logits.narrow(1, 0, t - 1).reshape([-1, vocab]);
        let target = train_ids.narrow(1, 1, t - 1).reshape([-1]);
        let loss = pred.cross_entropy_for_logits(&target);
        zero_grad(&params);
        loss.backward();
        opt.step(&params, lr);
        let l = loss.double_value(&[]);
        sync();
        if step >= warmup {
            timed += start.elapsed().as_secs_f64();
        }
        losses.push(l);
    }
    let tokens = (b * t) as f64 * steps as f64;
    let mut out_logits =
        tch::no_grad(|| model.forward(&probe_ids, None, false)).to_device(Device::Cpu);
    out_logits = out_logits.contiguous();
    write_safetensors(&logits_out, &[("logits".to_string(), out_logits)])
        .map_err(|e| e.to_string())?;
    write_adapter(&model, &model_dir.display().to_string(), &adapter_out)
        .map_err(|e| e.to_string())?;
    // Keep `model` mutable-borrow-free for the writer above.
    let _ = &mut model;
    let peak = if device == Device::Cpu {
        None
    } else {
        None::<f64>
    };
    println!(
        "{}",
        serde_json::json!({
            "tokens_per_s": tokens / timed,
            "step_ms": 1000.0 * timed / steps as f64,
            "load_s": load_s,
            "losses": losses,
            "lora_parameters": model.num_lora_parameters(),
            "base_parameters": model.config.num_parameters(),
            "threads": tch::get_num_threads(),
            "peak_memory": peak,
        })
    );
    Ok(())
}
