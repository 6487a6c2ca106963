"""The reference side of the adapter tests: transformers loads the base checkpoint (f32, its
default `sdpa` attention, or the eager one where attention logits are soft-capped (Gemma 2);
with --load-in-4bit through bitsandbytes' 4-bit layers, as QLoRA users load it), PEFT loads
tunewright's adapter onto it with PeftModel.from_pretrained, and the logits for the given input
ids are written as safetensors (`logits`). Run by trainer/tests through .venv/bin/python.

usage: peft_logits.py MODEL_DIR ADAPTER_DIR IDS_FILE OUT_FILE
                      [--load-in-4bit nf4|fp4] [--double-quant]
"""
import sys

import torch
from peft import PeftModel
from safetensors.torch import load_file, save_file
from transformers import AutoConfig, AutoModelForCausalLM, BitsAndBytesConfig


def main():
    model_dir, adapter_dir, ids_file, out_file = sys.argv[1:5]
    extra = sys.argv[5:]
    softcapped = getattr(AutoConfig.from_pretrained(model_dir), "attn_logit_softcapping", None)
    kwargs = dict(dtype=torch.float32, attn_implementation="eager" if softcapped else "sdpa")
    if "--load-in-4bit" in extra:
        quant_type = extra[extra.index("--load-in-4bit") + 1]
        kwargs["quantization_config"] = BitsAndBytesConfig(
            load_in_4bit=True,
            bnb_4bit_quant_type=quant_type,
            bnb_4bit_use_double_quant="--double-quant" in extra,
            bnb_4bit_compute_dtype=torch.float32,
        )
        kwargs["device_map"] = "cpu"
    base = AutoModelForCausalLM.from_pretrained(model_dir, **kwargs)
    for module in base.modules():
        # bitsandbytes' CPU inference shortcut repacks 4-bit weights for a bf16 kernel on CPUs
        # with AVX512-BF16; its f32 path (dequantize, then matmul, as on a GPU) is the reference.
        if hasattr(module, "support_avx512bf16_for_cpu"):
            module.support_avx512bf16_for_cpu = False
    model = PeftModel.from_pretrained(base, adapter_dir).eval()
    ids = load_file(ids_file)["input_ids"]
    with torch.no_grad():
        logits = model(input_ids=ids).logits.float()
    save_file({"logits": logits.contiguous()}, out_file)


if __name__ == "__main__":
    main()
