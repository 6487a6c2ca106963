"""The reference side of the evaluation test: transformers (f32) with PEFT's adapter computes
the figures of tunewright's evaluation over the same tokenized examples (ids, labels with -100
outside the answer): the summed cross-entropy of each next answer token, their count, how many
the argmax predicts; then the mean loss, perplexity exp(loss) and token accuracy. Run by
trainer/tests through .venv/bin/python.

usage: evaluate_reference.py MODEL_DIR ADAPTER_DIR EXAMPLES_JSON OUT_JSON
"""
import json
import math
import sys

import torch
import torch.nn.functional as F
from peft import PeftModel
from transformers import AutoModelForCausalLM


def main():
    model_dir, adapter_dir, examples_file, out_file = sys.argv[1:5]
    base = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32, attn_implementation="sdpa")
    model = PeftModel.from_pretrained(base, adapter_dir).eval()
    total, count, right = 0.0, 0, 0
    for ex in json.load(open(examples_file)):
        ids = torch.tensor([ex["ids"]])
        labels = torch.tensor(ex["labels"][1:])
        with torch.no_grad():
            logits = model(input_ids=ids).logits[0, :-1].float()
        total += F.cross_entropy(logits, labels, ignore_index=-100, reduction="sum").item()
        keep = labels != -100
        count += int(keep.sum())
        right += int(((logits.argmax(-1) == labels) & keep).sum())
    loss = total / count
    json.dump(
        {"loss": loss, "perplexity": math.exp(loss), "token_accuracy": right / count, "answer_tokens": count},
        open(out_file, "w"),
    )


if __name__ == "__main__":
    main()
