"""Writes the tiny-llama test fixture (see script/make-tiny-model llama)."""
import json
import os
import sys

import torch
from safetensors.torch import save_file
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

SPECIALS = [
    "<|begin_of_text|>",
    "<|end_of_text|>",
    "<|pad|>",
    "<|start_header_id|>",
    "<|end_header_id|>",
    "<|eot_id|>",
]

CHAT_TEMPLATE = (
    "{{- bos_token }}"
    "{%- for message in messages %}"
    "{{- '<|start_header_id|>' + message['role'] + '<|end_header_id|>\n\n' + message['content'] | trim + '<|eot_id|>' }}"
    "{%- endfor %}"
    "{%- if add_generation_prompt %}"
    "{{- '<|start_header_id|>assistant<|end_header_id|>\n\n' }}"
    "{%- endif %}"
)

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


def build_tokenizer():
    tok = Tokenizer(models.BPE(unk_token=None))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=768,
        min_frequency=2,
        special_tokens=SPECIALS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(TEXT.splitlines(), trainer=trainer)
    bos = tok.token_to_id("<|begin_of_text|>")
    tok.post_processor = processors.TemplateProcessing(
        single="<|begin_of_text|> $A",
        pair="<|begin_of_text|> $A <|begin_of_text|> $B",
        special_tokens=[("<|begin_of_text|>", bos)],
    )
    return tok


def main():
    out = sys.argv[1]
    os.makedirs(out, exist_ok=True)
    torch.manual_seed(0)

    raw = build_tokenizer()
    vocab = raw.get_vocab_size()
    fast = PreTrainedTokenizerFast(
        tokenizer_object=raw,
        bos_token="<|begin_of_text|>",
        eos_token="<|eot_id|>",
        pad_token="<|pad|>",
        model_max_length=256,
    )
    fast.chat_template = CHAT_TEMPLATE
    fast.save_pretrained(out)
    # transformers 4.5x writes the template to chat_template.jinja; loaders that only read
    # tokenizer_config.json (ours included) need it there too.
    tc_path = os.path.join(out, "tokenizer_config.json")
    with open(tc_path) as f:
        tc = json.load(f)
    tc["chat_template"] = CHAT_TEMPLATE
    with open(tc_path, "w") as f:
        json.dump(tc, f, indent=2, ensure_ascii=False)
        f.write("\n")

    config = LlamaConfig(
        vocab_size=vocab,
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=256,
        rms_norm_eps=1e-5,
        rope_theta=500000.0,
        rope_scaling={
            "rope_type": "llama3",
            "factor": 8.0,
            "low_freq_factor": 1.0,
            "high_freq_factor": 4.0,
            "original_max_position_embeddings": 64,
        },
        tie_word_embeddings=True,
        bos_token_id=fast.bos_token_id,
        eos_token_id=fast.eos_token_id,
        pad_token_id=fast.pad_token_id,
        initializer_range=0.1,
    )
    model = LlamaForCausalLM(config).to(torch.float32).eval()
    model.save_pretrained(out, safe_serialization=True)

    # Reference logits for a fixed input: a batch of two rows, the second right-padded.
    text_a = "What is the capital of France? Paris is the capital of France."
    text_b = "A spider has eight legs."
    ids_a = fast(text_a)["input_ids"][:16]
    ids_b = fast(text_b)["input_ids"][:16]
    t = len(ids_a)
    pad = fast.pad_token_id
    mask_b = [1] * len(ids_b) + [0] * (t - len(ids_b))
    ids_b = ids_b + [pad] * (t - len(ids_b))
    input_ids = torch.tensor([ids_a, ids_b], dtype=torch.long)
    attention_mask = torch.tensor([[1] * t, mask_b], dtype=torch.long)
    with torch.no_grad():
        unmasked = model(input_ids=input_ids[:1]).logits.float()
        masked = model(input_ids=input_ids, attention_mask=attention_mask).logits.float()
    save_file(
        {
            "input_ids": input_ids.contiguous(),
            "attention_mask": attention_mask.contiguous(),
            "logits_unmasked": unmasked.contiguous(),
            "logits_masked": masked.contiguous(),
        },
        os.path.join(out, "reference_logits.safetensors"),
        metadata={"format": "pt", "transformers": __import__("transformers").__version__},
    )
    with open(os.path.join(out, "README.md"), "w") as f:
        f.write(
            "# tiny-llama\n\nA tiny random LlamaForCausalLM (hidden 64, 2 layers, 4 heads, 2 KV heads,\n"
            "llama3 rope scaling, tied embeddings) with a byte-level BPE tokenizer of "
            f"{vocab} tokens and a Llama-3-style chat template.\n"
            "Generated by `script/make-tiny-model llama` with transformers "
            f"{__import__('transformers').__version__}; `reference_logits.safetensors` holds\n"
            "transformers' f32 logits for `input_ids` (row 0 alone: `logits_unmasked`; both rows\n"
            "with `attention_mask`: `logits_masked`). Random weights: not a language model.\n"
        )
    print(json.dumps({"out": out, "vocab": vocab, "seq": t}))


if __name__ == "__main__":
    main()
