"""The reference side of the generation tests: transformers' `generate` (greedy, its default
key/value cache) on each model of a JSON list, with the same prompt, token budget and stop ids
as tunewright; the new tokens of each are written as JSON. Models load in f32 with the
attention transformers uses for them (eager where attention logits are soft-capped). Run by
trainer/tests through .venv/bin/python.

usage: generate_reference.py SPEC_JSON OUT_JSON
  SPEC_JSON: [{"model_dir", "prompt": [ids], "max_new_tokens", "stop_ids": [ids]}, ...]
"""
import json
import sys

import torch
from transformers import AutoConfig, AutoModelForCausalLM


def main():
    spec_file, out_file = sys.argv[1:3]
    results = []
    for case in json.load(open(spec_file)):
        cfg = AutoConfig.from_pretrained(case["model_dir"])
        softcapped = getattr(cfg, "attn_logit_softcapping", None)
        model = AutoModelForCausalLM.from_pretrained(
            case["model_dir"],
            dtype=torch.float32,
            attn_implementation="eager" if softcapped else "sdpa",
        ).eval()
        prompt = torch.tensor([case["prompt"]], dtype=torch.long)
        with torch.no_grad():
            out = model.generate(
                prompt,
                attention_mask=torch.ones_like(prompt),
                do_sample=False,
                max_new_tokens=case["max_new_tokens"],
                eos_token_id=case["stop_ids"],
                pad_token_id=case["stop_ids"][0],
                temperature=None,
                top_p=None,
                top_k=None,
            )
        results.append(out[0, prompt.shape[1]:].tolist())
    json.dump(results, open(out_file, "w"))


if __name__ == "__main__":
    main()
