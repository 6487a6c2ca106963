"""The reference side of the GGUF export tests: llama.cpp's own `gguf` package reads each
exported file and checks it against the merged weights and the tokenizer. Tensor names come
from gguf's TensorNameMap; q/k rows of the `llama` architecture are permuted as llama.cpp's
converter does (`LlamaModel.permute`). f16/bf16 matrices and f32 norms/biases must be
bit-equal to the merged weights so converted; q8_0 within half a quantization step of each
block (plus the f16 rounding of its scale) and the same bytes as gguf's own quantizer. Metadata: hyper-parameters, the vocabulary by id,
merges, special ids and the chat template. Ollama exports: the Modelfile's TEMPLATE, rendered
for a two-turn chat by Go's own text/template (the engine Ollama runs: `go run
trainer/tests/go/render_template.go`; script/install-test-tools installs Go), equals the
tokenizer's chat template output. Run by trainer/tests through .venv/bin/python.

usage: gguf_check.py SPEC_JSON
  SPEC_JSON: [{"gguf", "merged_dir", "quantization", "modelfile"?}, ...]
"""
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile

import gguf
import numpy as np
import torch
from safetensors.torch import load_file
from transformers import AutoConfig, AutoTokenizer


def permute(w, n_head, n_head_kv):
    if n_head_kv is not None and n_head != n_head_kv:
        n_head = n_head_kv
    return w.reshape(n_head, 2, w.shape[0] // n_head // 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


def field(reader, key):
    f = reader.fields[key]
    if f.types[0] == gguf.GGUFValueType.ARRAY:
        if f.types[1] == gguf.GGUFValueType.STRING:
            return [bytes(f.parts[i]).decode() for i in f.data]
        return [f.parts[i][0].item() for i in f.data]
    if f.types[0] == gguf.GGUFValueType.STRING:
        return bytes(f.parts[f.data[0]]).decode()
    return f.parts[f.data[0]][0].item()


def check_tensors(reader, case, cfg, arch):
    weights = load_file(f"{case['merged_dir']}/model.safetensors")
    names = gguf.get_tensor_name_map(
        {"llama": gguf.MODEL_ARCH.LLAMA, "qwen2": gguf.MODEL_ARCH.QWEN2, "qwen3": gguf.MODEL_ARCH.QWEN3}[arch],
        cfg.num_hidden_layers,
    )
    expected = {}
    for hf, w in weights.items():
        if hf == "lm_head.weight" and cfg.tie_word_embeddings:
            continue
        name = names.get_name(hf, try_suffixes=(".weight", ".bias"))
        assert name is not None, hf
        w = w.float()
        if arch == "llama" and hf.endswith("q_proj.weight"):
            w = permute(w, cfg.num_attention_heads, cfg.num_attention_heads)
        if arch == "llama" and hf.endswith("k_proj.weight"):
            w = permute(w, cfg.num_attention_heads, cfg.num_key_value_heads)
        expected[name] = w
    got = {t.name: t for t in reader.tensors if t.name != "rope_freqs.weight"}
    assert sorted(got) == sorted(expected), (sorted(got), sorted(expected))
    q = case["quantization"]
    worst = 0.0
    for name, w in expected.items():
        t = got[name]
        deq = torch.from_numpy(np.array(gguf.quants.dequantize(t.data, t.tensor_type))).reshape(w.shape)
        if w.dim() == 1:
            assert t.tensor_type == gguf.GGMLQuantizationType.F32, name
            assert torch.equal(deq, w), name
        elif q in ("f16", "bf16"):
            kind = {"f16": torch.float16, "bf16": torch.bfloat16}[q]
            assert torch.equal(deq, w.to(kind).float()), f"{name} is not bit-equal"
        else:
            assert t.tensor_type == gguf.GGMLQuantizationType.Q8_0, name
            blocks = w.reshape(-1, 32)
            step = blocks.abs().amax(dim=1, keepdim=True) / 127
            rounding = (step - step.half().float()).abs() * 127
            err = (deq.reshape(-1, 32) - blocks).abs()
            assert bool((err <= step * 0.5 + rounding + 1e-7).all()), f"{name}: q8_0 error {err.max()}"
            # The same bytes as gguf's own q8_0 quantizer.
            ref = gguf.quants.quantize(w.numpy(), gguf.GGMLQuantizationType.Q8_0)
            assert np.array_equal(np.asarray(t.data).reshape(-1), ref.reshape(-1).view(np.uint8)), name
            worst = max(worst, float(err.max()))
    return worst


def check_metadata(reader, case, cfg, arch):
    tok = AutoTokenizer.from_pretrained(case["merged_dir"])
    a = arch
    assert field(reader, "general.architecture") == arch
    assert field(reader, f"{a}.block_count") == cfg.num_hidden_layers
    assert field(reader, f"{a}.embedding_length") == cfg.hidden_size
    assert field(reader, f"{a}.feed_forward_length") == cfg.intermediate_size
    assert field(reader, f"{a}.attention.head_count") == cfg.num_attention_heads
    assert field(reader, f"{a}.attention.head_count_kv") == cfg.num_key_value_heads
    assert field(reader, f"{a}.context_length") == cfg.max_position_embeddings
    assert np.float32(field(reader, f"{a}.attention.layer_norm_rms_epsilon")) == np.float32(cfg.rms_norm_eps)
    theta = getattr(cfg, "rope_theta", None) or cfg.rope_parameters["rope_theta"]
    assert np.float32(field(reader, f"{a}.rope.freq_base")) == np.float32(theta)
    tokens = field(reader, "tokenizer.ggml.tokens")
    assert len(tokens) == cfg.vocab_size
    vocab = tok.convert_ids_to_tokens(list(range(len(tok))))
    assert tokens[: len(vocab)] == vocab
    assert field(reader, "tokenizer.ggml.model") == "gpt2"
    assert len(field(reader, "tokenizer.ggml.merges")) > 0
    assert field(reader, "tokenizer.ggml.eos_token_id") == tok.eos_token_id
    if tok.bos_token_id is not None:
        assert field(reader, "tokenizer.ggml.bos_token_id") == tok.bos_token_id
    assert field(reader, "tokenizer.chat_template") == tok.chat_template
    return tok


RENDERER = os.path.join(os.path.dirname(__file__), "..", "go", "render_template.go")


def render_go(template, messages):
    """The template rendered by Go's text/template with Ollama's data (.Messages)."""
    go = shutil.which("go")
    assert go, "Go is missing: script/install-test-tools installs it (Debian package golang-go)"
    env = dict(os.environ)
    env.setdefault("GOCACHE", os.path.join(tempfile.gettempdir(), "tunewright-go-cache"))
    out = subprocess.run(
        [go, "run", RENDERER],
        input=json.dumps({"template": template, "messages": messages}).encode(),
        capture_output=True,
        env=env,
        check=False,
    )
    assert out.returncode == 0, out.stderr.decode()
    return out.stdout.decode()


def parse_modelfile(text):
    template = re.search(r'TEMPLATE """(.*?)"""', text, re.S).group(1)
    system = re.search(r'SYSTEM """(.*?)"""', text, re.S)
    stops = [json.loads(s) for s in re.findall(r"PARAMETER stop (.*)", text)]
    return template, system.group(1) if system else None, stops


def check_modelfile(case, tok):
    text = open(case["modelfile"]).read()
    assert text.startswith("FROM ./model.gguf\n"), text
    template, system, stops = parse_modelfile(text)
    chat = [
        {"role": "user", "content": "Hi there"},
        {"role": "assistant", "content": "Hello! How can I help?"},
        {"role": "user", "content": "Name a colour."},
    ]
    want = tok.apply_chat_template(chat, tokenize=False, add_generation_prompt=True)
    if tok.bos_token and want.startswith(tok.bos_token):
        want = want[len(tok.bos_token):]  # llama.cpp adds BOS itself
    # Ollama puts the SYSTEM prompt first in .Messages when the chat has none.
    messages = ([{"role": "system", "content": system}] if system else []) + chat
    got = render_go(template, messages)
    assert got == want, f"\nollama: {got!r}\njinja:  {want!r}"
    assert tok.eos_token in stops, (stops, tok.eos_token)


def main():
    report = []
    for case in json.load(open(sys.argv[1])):
        reader = gguf.GGUFReader(case["gguf"])
        cfg = AutoConfig.from_pretrained(case["merged_dir"])
        arch = field(reader, "general.architecture")
        worst = check_tensors(reader, case, cfg, arch)
        tok = check_metadata(reader, case, cfg, arch)
        if case.get("modelfile"):
            check_modelfile(case, tok)
        report.append(f"{case['gguf']}: {arch} {case['quantization']} ok (q8_0 max error {worst:.2e})")
    print("\n".join(report))


if __name__ == "__main__":
    main()
