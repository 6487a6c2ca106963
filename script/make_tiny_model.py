"""Writes a tiny random checkpoint of one model family as a test fixture (see script/make-tiny-model).

Each family gets: the model built by transformers itself (so the architecture is the reference
one) with every weight random (norm weights and biases too, so that Gemma's `1 + weight`, Qwen2's
q/k/v biases and the q/k norms are really exercised), a small byte-level BPE tokenizer that has the
family's special tokens, the family's real chat template, and transformers' f32 reference logits
for a fixed input (computed with transformers' default attention, `sdpa`, except where the
family needs the eager one: Gemma 2's soft-capped attention logits).
"""
import json
import os
import sys

import torch
from safetensors.torch import save_file
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
from transformers import AutoConfig, AutoModelForCausalLM, PreTrainedTokenizerFast

from chat_templates import TEMPLATES

TEXT = """
The river runs past the old mill and under the stone bridge before it reaches the sea.
A fine-tuning run starts from a base model and changes a small set of adapter weights.
Low-rank adaptation adds two thin matrices next to each projection and trains only those.
The event log records every state change, so a crash never loses what was acknowledged.
Questions and answers: what is the capital of France? Paris is the capital of France.
How many legs does a spider have? A spider has eight legs.
Explain gradient descent in one sentence: it moves the parameters a small step against the gradient.
Translate 'good morning' into German: Guten Morgen.
Write a haiku about autumn: red leaves on the path, the wind carries them away, the tree stands alone.
Summarise the paragraph: the scheduler runs one training job per device and queues the rest.
The quick brown fox jumps over the lazy dog. Pack my box with five dozen liquor jugs.
Numbers: 0 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20 100 1000 2024 3.14 42.
User, assistant, system, instruction, input, output, prompt, completion, messages, role, content.
""" * 4

# Per family: special tokens (the first ones get the low ids), which of them are bos/eos/pad,
# whether the tokenizer prepends bos itself, and the tiny config (transformers' names).
COMMON = dict(vocab_size=None, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
              num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=256,
              rms_norm_eps=1e-5, initializer_range=0.1)

FAMILIES = {
    "mistral": dict(
        specials=["<unk>", "<s>", "</s>", "[INST]", "[/INST]"],
        bos="<s>", eos="</s>", pad="</s>", prepend_bos=False,
        config=dict(model_type="mistral", sliding_window=4, rope_theta=10000.0, tie_word_embeddings=False),
    ),
    "qwen2": dict(
        specials=["<|endoftext|>", "<|im_start|>", "<|im_end|>"],
        bos=None, eos="<|im_end|>", pad="<|endoftext|>", prepend_bos=False,
        config=dict(model_type="qwen2", rope_theta=1000000.0, tie_word_embeddings=True,
                    use_sliding_window=False),
    ),
    "qwen3": dict(
        specials=["<|endoftext|>", "<|im_start|>", "<|im_end|>"],
        added=["<think>", "</think>"],
        bos=None, eos="<|im_end|>", pad="<|endoftext|>", prepend_bos=False,
        config=dict(model_type="qwen3", head_dim=32, rope_theta=1000000.0, tie_word_embeddings=True,
                    use_sliding_window=False, attention_bias=False),
    ),
    "phi3": dict(
        specials=["<unk>", "<s>", "<|endoftext|>", "<|system|>", "<|user|>", "<|assistant|>", "<|end|>"],
        bos="<s>", eos="<|endoftext|>", pad="<|endoftext|>", prepend_bos=False,
        config=dict(model_type="phi3", rope_theta=10000.0, partial_rotary_factor=0.75,
                    tie_word_embeddings=False, resid_pdrop=0.0, embd_pdrop=0.0, attention_dropout=0.0),
    ),
    "gemma2": dict(
        specials=["<pad>", "<eos>", "<bos>", "<unk>", "<start_of_turn>", "<end_of_turn>"],
        bos="<bos>", eos="<eos>", pad="<pad>", prepend_bos=False,
        config=dict(model_type="gemma2", head_dim=16, query_pre_attn_scalar=24, sliding_window=4,
                    attn_logit_softcapping=5.0, final_logit_softcapping=3.0, rope_theta=10000.0,
                    hidden_activation="gelu_pytorch_tanh", tie_word_embeddings=True),
    ),
    "gemma3": dict(
        specials=["<pad>", "<eos>", "<bos>", "<unk>", "<start_of_turn>", "<end_of_turn>"],
        bos="<bos>", eos="<end_of_turn>", pad="<pad>", prepend_bos=False,
        config=dict(model_type="gemma3_text", head_dim=16, query_pre_attn_scalar=24, sliding_window=4,
                    layer_types=["sliding_attention", "full_attention"], rope_theta=1000000.0,
                    rope_local_base_freq=10000.0, rope_scaling={"rope_type": "linear", "factor": 8.0},
                    hidden_activation="gelu_pytorch_tanh", tie_word_embeddings=True),
    ),
}


def build_tokenizer(fam):
    tok = Tokenizer(models.BPE(unk_token=None))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=512,
        min_frequency=2,
        special_tokens=fam["specials"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(TEXT.splitlines(), trainer=trainer)
    if fam.get("added"):
        tok.add_tokens(fam["added"])
    if fam["prepend_bos"]:
        bos = tok.token_to_id(fam["bos"])
        tok.post_processor = processors.TemplateProcessing(
            single=f"{fam['bos']} $A", pair=f"{fam['bos']} $A {fam['bos']} $B",
            special_tokens=[(fam["bos"], bos)],
        )
    return tok


def randomize(model):
    """transformers initialises norms to 1 (Gemma: 0) and biases to 0: draw them too."""
    g = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if p.dim() == 1:
                p.copy_(torch.randn(p.shape, generator=g) * 0.1 + (0.0 if "gemma" in model.config.model_type or name.endswith("bias") else 1.0))


def reference_inputs(fast):
    text_a = "What is the capital of France? Paris is the capital of France."
    text_b = "A spider has eight legs."
    ids_a = fast(text_a)["input_ids"][:16]
    ids_b = fast(text_b)["input_ids"][:16]
    t = len(ids_a)
    mask_b = [1] * len(ids_b) + [0] * (t - len(ids_b))
    ids_b = ids_b + [fast.pad_token_id] * (t - len(ids_b))
    return torch.tensor([ids_a, ids_b], dtype=torch.long), torch.tensor([[1] * t, mask_b], dtype=torch.long)


def main():
    family, out = sys.argv[1], sys.argv[2]
    fam = FAMILIES[family]
    os.makedirs(out, exist_ok=True)
    torch.manual_seed(0)
    raw = build_tokenizer(fam)
    fast = PreTrainedTokenizerFast(
        tokenizer_object=raw, bos_token=fam["bos"], eos_token=fam["eos"], pad_token=fam["pad"],
        model_max_length=256,
    )
    template = TEMPLATES[family]
    fast.chat_template = template
    fast.save_pretrained(out)
    # transformers 4.5x writes the template to chat_template.jinja; loaders that only read
    # tokenizer_config.json need it there too (as the models on the Hub ship it).
    tc_path = os.path.join(out, "tokenizer_config.json")
    with open(tc_path) as f:
        tc = json.load(f)
    tc["chat_template"] = template
    with open(tc_path, "w") as f:
        json.dump(tc, f, indent=2, ensure_ascii=False)
        f.write("\n")

    cfg_args = dict(COMMON)
    cfg_args.update(fam["config"])
    model_type = cfg_args.pop("model_type")
    cfg_args["vocab_size"] = raw.get_vocab_size()
    cfg_args["bos_token_id"] = fast.bos_token_id
    cfg_args["eos_token_id"] = fast.convert_tokens_to_ids(fam["eos"])
    cfg_args["pad_token_id"] = fast.pad_token_id
    config = AutoConfig.for_model(model_type, **cfg_args)
    attn = "eager" if fam["config"].get("attn_logit_softcapping") else "sdpa"
    config._attn_implementation = attn
    model = AutoModelForCausalLM.from_config(config).to(torch.float32).eval()
    randomize(model)
    model.save_pretrained(out, safe_serialization=True)

    input_ids, attention_mask = reference_inputs(fast)
    with torch.no_grad():
        unmasked = model(input_ids=input_ids[:1]).logits.float()
        masked = model(input_ids=input_ids, attention_mask=attention_mask).logits.float()
    version = __import__("transformers").__version__
    save_file(
        {
            "input_ids": input_ids.contiguous(),
            "attention_mask": attention_mask.contiguous(),
            "logits_unmasked": unmasked.contiguous(),
            "logits_masked": masked.contiguous(),
        },
        os.path.join(out, "reference_logits.safetensors"),
        metadata={"format": "pt", "transformers": version, "attn_implementation": attn},
    )
    arch = config.architectures[0] if config.architectures else type(model).__name__
    with open(os.path.join(out, "README.md"), "w") as f:
        f.write(
            f"# tiny-{family}\n\nA tiny random {type(model).__name__} (hidden {config.hidden_size}, "
            f"{config.num_hidden_layers} layers, {config.num_attention_heads} heads, "
            f"{config.num_key_value_heads} KV heads) with a byte-level BPE tokenizer of "
            f"{raw.get_vocab_size()} tokens that has the family's special tokens, and the family's real "
            "chat template.\n"
            f"Generated by `script/make-tiny-model {family}` with transformers {version}; every weight is "
            "random (norm weights and biases too).\n`reference_logits.safetensors` holds transformers' f32 "
            f"logits ({attn} attention) for `input_ids` (row 0 alone: `logits_unmasked`; both rows with "
            "`attention_mask`: `logits_masked`). Random weights: not a language model.\n"
        )
    print(json.dumps({"family": family, "architecture": arch, "out": out, "vocab": raw.get_vocab_size(),
                      "seq": int(input_ids.shape[1])}))


if __name__ == "__main__":
    main()
