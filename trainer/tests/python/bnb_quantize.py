"""bitsandbytes' own 4-bit quantization of the tensors in a safetensors file, for the QLoRA
storage test: for each tensor NAME and each of nf4/fp4, without and with double quantization,
writes NAME.<qt>.<plain|double>.packed / .absmax (or .codes, .absmax2, .offset) / .dequantized,
and `dynamic_map` (create_dynamic_map()). Run by trainer/tests through .venv/bin/python.

usage: bnb_quantize.py IN_FILE OUT_FILE
"""
import sys

import torch
from bitsandbytes.functional import create_dynamic_map, dequantize_4bit, quantize_4bit
from safetensors.torch import load_file, save_file


def main():
    tensors = load_file(sys.argv[1])
    out = {"dynamic_map": create_dynamic_map()}
    for name, w in tensors.items():
        for qt in ("nf4", "fp4"):
            for double in (False, True):
                key = f"{name}.{qt}.{'double' if double else 'plain'}"
                packed, state = quantize_4bit(w, blocksize=64, quant_type=qt, compress_statistics=double)
                out[f"{key}.packed"] = packed.reshape(-1).contiguous()
                if double:
                    out[f"{key}.codes"] = state.absmax.contiguous()
                    out[f"{key}.absmax2"] = state.state2.absmax.contiguous()
                    out[f"{key}.offset"] = state.offset.reshape(1).float().contiguous()
                else:
                    out[f"{key}.absmax"] = state.absmax.contiguous()
                out[f"{key}.dequantized"] = dequantize_4bit(packed, state).float().contiguous()
    save_file(out, sys.argv[2])


if __name__ == "__main__":
    main()
