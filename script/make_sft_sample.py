#!/usr/bin/env python3
"""Write tests/fixtures/sft-sample.jsonl: a few hundred small, learnable instruction examples
written for tunewright (arithmetic, unit conversions, word games and tunewright how-tos), in
alpaca form. Deterministic: the same file every run."""
import json, random, pathlib

rng = random.Random(20261122)
out = []
for a in range(2, 30):
    for b in range(2, 10, 2):
        out.append({"instruction": f"What is {a} plus {b}?", "input": "", "output": f"{a} plus {b} is {a + b}."})
for km in range(1, 60):
    out.append({"instruction": "Convert kilometers to meters.", "input": f"{km} km", "output": f"{km} km is {km * 1000} meters."})
for h in range(1, 25):
    out.append({"instruction": "How many minutes are in this many hours?", "input": f"{h} hours", "output": f"{h} hours are {h * 60} minutes."})
words = ["tune", "model", "event", "actor", "log", "retry", "adapter", "batch", "token", "epoch", "seed", "loss", "layer", "rank"]
for w in words:
    out.append({"instruction": "Spell the word backwards.", "input": w, "output": w[::-1]})
    out.append({"instruction": "Write the word in capital letters.", "input": w, "output": w.upper()})
    out.append({"instruction": "How many letters does the word have?", "input": w, "output": f"'{w}' has {len(w)} letters."})
howto = [
    ("How do I start the tunewright service?", "Run `tunewright serve`; it listens on 127.0.0.1:7340 by default."),
    ("Where does tunewright keep its state?", "In the event log, events.redb, inside the data directory."),
    ("How do I see what happened to a job?", "Run `tunewright replay list --stream JOB_ID`."),
    ("What happens when training runs out of memory?", "The job fails with TRAINING_OOM and an analysis suggesting a smaller micro-batch."),
    ("Does a crash lose my training progress?", "No: the job resumes from its last checkpoint."),
    ("Which dataset formats can I upload?", "Alpaca, chat messages, or prompt and completion, as JSONL."),
    ("How do I check the event log for damage?", "Run `tunewright replay verify`."),
    ("What does the export job produce?", "A PEFT adapter, or merged weights, with a manifest of sha256 sums."),
    ("How many examples does training need at least?", "At least 10 valid examples."),
    ("How do I cancel a job?", "POST /api/v1/jobs/JOB_ID/cancel."),
    ("What does a retry wait for?", "An exponential backoff with jitter, capped per job kind."),
    ("Which models can tunewright fine-tune?", "Llama-family checkpoints stored locally."),
]
for q, a in howto:
    for phrasing in ("{q}", "Question: {q}", "Please tell me: {q}"):
        out.append({"instruction": phrasing.format(q=q), "input": "", "output": a})
rng.shuffle(out)
path = pathlib.Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "sft-sample.jsonl"
path.write_text("".join(json.dumps(e) + "\n" for e in out))
print(f"wrote {len(out)} examples to {path}")
