#!/usr/bin/env python3
"""tunewright vs transformers + PEFT on the same model, batch, sequence length and LoRA
settings, in one run: training tokens/s of both and their ratio, MFU against the GPU's
measured bf16 matmul rate, base-logits parity, and PEFT load parity (PeftModel.from_pretrained
on tunewright's exported adapter gives tunewright's logits).

Runs where transformers, peft and torch are importable (the lent GPU machine has them; on
any other machine `script/compare-reference` installs them into .venv, builds the tunewright
side and runs this). The tunewright side is the prebuilt `compare_reference` example given
with --bin.
"""
import argparse, json, os, statistics, subprocess, sys, tempfile, time

import torch
from safetensors.torch import save_file, load_file

PRESETS = {
    # ~1.1B parameters (TinyLlama-1.1B's shape), random init.
    "1b": dict(hidden_size=2048, intermediate_size=5632, num_hidden_layers=22, num_attention_heads=32,
               num_key_value_heads=4, vocab_size=32000, batch=4, seq=512),
    "small-cpu": dict(hidden_size=256, intermediate_size=688, num_hidden_layers=4, num_attention_heads=8,
                      num_key_value_heads=4, vocab_size=4096, batch=2, seq=128),
}


def bf16_peak_tflops(device):
    n = 8192
    a = torch.randn(n, n, device=device, dtype=torch.bfloat16)
    b = torch.randn(n, n, device=device, dtype=torch.bfloat16)
    for _ in range(3):
        a @ b
    torch.cuda.synchronize()
    t = time.perf_counter()
    reps = 30
    for _ in range(reps):
        a @ b
    torch.cuda.synchronize()
    return 2 * n ** 3 * reps / (time.perf_counter() - t) / 1e12


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", required=True, help="path to the compare_reference example binary")
    ap.add_argument("--preset", default="1b", choices=sorted(PRESETS))
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--dtype", default="bf16", choices=["bf16", "f32"])
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--warmup", type=int, default=5)
    ap.add_argument("--rounds", type=int, default=3, help="interleaved timing rounds per side (medians compared)")
    ap.add_argument("--out", default=None, help="directory for results.json")
    a = ap.parse_args()
    from transformers import LlamaConfig, LlamaForCausalLM
    from peft import LoraConfig, PeftModel, get_peft_model

    p = PRESETS[a.preset]
    dtype = torch.bfloat16 if a.dtype == "bf16" else torch.float32
    dev = torch.device(a.device)
    work = tempfile.mkdtemp(prefix="tw-compare-")
    cfg = LlamaConfig(hidden_size=p["hidden_size"], intermediate_size=p["intermediate_size"],
                      num_hidden_layers=p["num_hidden_layers"], num_attention_heads=p["num_attention_heads"],
                      num_key_value_heads=p["num_key_value_heads"], vocab_size=p["vocab_size"],
                      max_position_embeddings=4096, rope_theta=10000.0, tie_word_embeddings=False)
    torch.manual_seed(0)
    model = LlamaForCausalLM(cfg).to(dtype)
    model_dir = os.path.join(work, "model")
    model.save_pretrained(model_dir, safe_serialization=True)
    n_params = sum(x.numel() for x in model.parameters())
    g = torch.Generator().manual_seed(1)
    train_ids = torch.randint(0, p["vocab_size"], (p["batch"], p["seq"]), generator=g)
    probe_ids = torch.randint(0, p["vocab_size"], (1, 64), generator=g)
    inputs = os.path.join(work, "inputs.safetensors")
    save_file({"train_ids": train_ids, "probe_ids": probe_ids}, inputs)
    targets = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
    lora = dict(r=16, alpha=32.0)

    def run_tw(steps, adapter, logits):
        cmd = [a.bin, "--model", model_dir, "--inputs", inputs, "--adapter-out", adapter, "--logits-out", logits,
               "--device", a.device, "--dtype", a.dtype, "--steps", str(steps), "--warmup", str(a.warmup if steps else 0),
               "--lora-r", str(lora["r"]), "--lora-alpha", str(lora["alpha"]), "--lora-dropout", "0",
               "--targets", ",".join(targets), "--lr", "1e-4", "--seed", "0"]
        r = subprocess.run(cmd, capture_output=True, text=True)
        if r.returncode != 0:
            sys.exit(f"tunewright failed: {r.stderr}")
        return json.loads(r.stdout.strip().splitlines()[-1])

    # 1. Base-logits parity: no training steps, LoRA B = 0, so the logits are the base model's.
    tw0 = run_tw(0, os.path.join(work, "a0"), os.path.join(work, "l0.safetensors"))
    model = model.to(dev).eval()
    with torch.no_grad():
        ref = model(probe_ids.to(dev)).logits.float().cpu()
    tw_base = load_file(os.path.join(work, "l0.safetensors"))["logits"].float()
    base_diff = (ref - tw_base).abs().max().item()
    base_rel = base_diff / ref.abs().max().item()

    # 2./3. Training throughput of both on the same weights, batch, length and LoRA settings,
    # in interleaved rounds (tunewright, reference, tunewright, ...) so that anything else the
    # machine does falls on both sides alike; the medians are compared.
    model.train()
    peft_model = get_peft_model(model, LoraConfig(r=lora["r"], lora_alpha=lora["alpha"], lora_dropout=0.0,
                                                  target_modules=targets, task_type="CAUSAL_LM"))
    opt = torch.optim.AdamW([x for x in peft_model.parameters() if x.requires_grad], lr=1e-4)
    ids = train_ids.to(dev)

    def run_ref():
        timed = 0.0
        for step in range(a.warmup + a.steps):
            if dev.type == "cuda":
                torch.cuda.synchronize()
            t = time.perf_counter()
            out = peft_model(ids, labels=ids)
            out.loss.backward()
            opt.step()
            opt.zero_grad(set_to_none=True)
            if dev.type == "cuda":
                torch.cuda.synchronize()
            if step >= a.warmup:
                timed += time.perf_counter() - t
        return p["batch"] * p["seq"] * a.steps / timed

    tw_rates, ref_rates, tw = [], [], None
    for _ in range(a.rounds):
        tw = run_tw(a.steps, os.path.join(work, "adapter"), os.path.join(work, "logits.safetensors"))
        tw_rates.append(tw["tokens_per_s"])
        ref_rates.append(run_ref())
    tw_tps, ref_tps = statistics.median(tw_rates), statistics.median(ref_rates)
    del peft_model, opt
    model = LlamaForCausalLM.from_pretrained(model_dir, torch_dtype=dtype).to(dev).eval()

    # 4. PEFT load parity on tunewright's exported adapter.
    loaded = PeftModel.from_pretrained(model, os.path.join(work, "adapter")).eval()
    with torch.no_grad():
        peft_logits = loaded(probe_ids.to(dev)).logits.float().cpu()
    tw_logits = load_file(os.path.join(work, "logits.safetensors"))["logits"].float()
    peft_diff = (peft_logits - tw_logits).abs().max().item()
    peft_rel = peft_diff / peft_logits.abs().max().item()
    # The parity above means something only if training moved the logits away from the base's.
    trained_vs_base = (tw_logits[:, :, :] - load_file(os.path.join(work, "l0.safetensors"))["logits"].float()).abs().max().item()

    flops_per_token = 4 * n_params  # frozen base: forward 2N + backward through activations 2N
    result = {
        "preset": a.preset, "device": a.device, "dtype": a.dtype, "gpu": torch.cuda.get_device_name() if dev.type == "cuda" else None,
        "parameters": n_params, "batch": p["batch"], "seq": p["seq"], "steps": a.steps,
        "rounds": a.rounds, "threads": torch.get_num_threads(),
        "tunewright_tokens_per_s": tw_tps, "reference_tokens_per_s": ref_tps, "ratio": tw_tps / ref_tps,
        "tunewright_tokens_per_s_rounds": tw_rates, "reference_tokens_per_s_rounds": ref_rates,
        "base_logits_max_abs_diff": base_diff, "base_logits_rel_diff": base_rel,
        "peft_load_logits_max_abs_diff": peft_diff, "peft_load_logits_rel_diff": peft_rel,
        "trained_vs_base_logits_max_abs_diff": trained_vs_base,
        "tunewright_losses": tw["losses"],
    }
    if dev.type == "cuda":
        peak = bf16_peak_tflops(dev)
        result["measured_bf16_tflops"] = peak
        result["tunewright_mfu"] = tw_tps * flops_per_token / (peak * 1e12)
        result["reference_mfu"] = ref_tps * flops_per_token / (peak * 1e12)
    print(json.dumps(result, indent=2))
    tol = 1e-4 if a.dtype == "f32" else 2e-2  # relative, on the logits' scale
    print(f"\n{a.preset} on {a.device} ({a.dtype}), {n_params:,} parameters, batch {p['batch']} x {p['seq']} tokens, "
          f"median of {a.rounds} interleaved rounds of {a.steps} steps:")
    print(f"  training tokens/s: tunewright {tw_tps:,.0f}   transformers+PEFT {ref_tps:,.0f}   ratio {tw_tps / ref_tps:.2f}x")
    print(f"  base logits vs transformers: max abs diff {base_diff:.3g} (rel {base_rel:.3g})  {'ok' if base_rel <= tol else 'MISMATCH'}")
    print(f"  PeftModel.from_pretrained(tunewright adapter) logits vs tunewright: max abs diff {peft_diff:.3g} "
          f"(rel {peft_rel:.3g}; training moved them by {trained_vs_base:.3g})  {'ok' if peft_rel <= tol else 'MISMATCH'}")
    if "tunewright_mfu" in result:
        print(f"  MFU vs measured bf16 {result['measured_bf16_tflops']:.0f} TFLOP/s: tunewright {result['tunewright_mfu']:.1%}, "
              f"reference {result['reference_mfu']:.1%}")
    if base_rel > tol or peft_rel > tol:
        sys.exit(1)
    if a.out:
        os.makedirs(a.out, exist_ok=True)
        with open(os.path.join(a.out, "results.json"), "w") as f:
            json.dump(result, f, indent=2)


if __name__ == "__main__":
    main()
