"""Cost of the generation controls: the new decoding loop against the one before it, and genzoo against transformers
for penalised greedy decoding and beam search, on the same random GPT-2 weights (CPU, fp32).

    python benchmarks/gpt2_controls.py --rounds 5 --threads 1 [--before COMMIT]

Each round runs every contender once, alternating, in one process; the table gives medians and per-round ratios.
"before" is genzoo/gpt2/generate.py at COMMIT (default 95310cd, the loop without processors), loaded beside the
current one, on the same model object.
"""
from __future__ import annotations

import argparse
import importlib.util
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def load_generate_at(commit: str):
    source = subprocess.run(["git", "show", f"{commit}:genzoo/gpt2/generate.py"], cwd=ROOT, capture_output=True,
                            text=True, check=True).stdout
    spec = importlib.util.spec_from_loader("genzoo.gpt2._generate_before", loader=None)
    module = importlib.util.module_from_spec(spec)
    module.__package__ = "genzoo.gpt2"
    exec(compile(source, f"{commit}:generate.py", "exec"), module.__dict__)
    return module


def timed(fn):
    start = time.perf_counter()
    out = fn()
    return time.perf_counter() - start, out


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--before", default="95310cd")
    parser.add_argument("--new", type=int, default=48, help="new tokens per call")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    from transformers import GPT2Config, GPT2LMHeadModel

    from genzoo import gpt2
    current = importlib.import_module("genzoo.gpt2.generate")

    before = load_generate_at(args.before)
    torch.manual_seed(0)
    hf = GPT2LMHeadModel(GPT2Config()).eval()   # GPT-2 124M shape, random weights
    folder = tempfile.mkdtemp()
    hf.save_pretrained(folder)
    model = gpt2.from_pretrained(folder, device="cpu")
    char = gpt2.from_pretrained("shakespeare-char", device="cpu")
    prompt = torch.randint(0, 50257, (1, 64), generator=torch.Generator().manual_seed(1))
    char_prompt = torch.tensor([char.tokenizer.encode("ROMEO:\n")])
    n = args.new
    hf_common = dict(attention_mask=torch.ones_like(prompt), max_new_tokens=n, min_new_tokens=n, do_sample=False,
                     pad_token_id=0)

    cases = {
        "greedy 124M: current loop / loop before": (
            lambda: current.generate(model, prompt, max_new_tokens=n, temperature=0, eos_token_id=None),
            lambda: before.generate(model, prompt, max_new_tokens=n, temperature=0, eos_token_id=None)),
        "greedy char model, 200 tokens: current loop / loop before": (
            lambda: current.generate(char, char_prompt, max_new_tokens=200, temperature=0),
            lambda: before.generate(char, char_prompt, max_new_tokens=200, temperature=0)),
        "greedy 124M + repetition_penalty 1.3 + no_repeat_ngram 3: genzoo / transformers": (
            lambda: model.generate(prompt, max_new_tokens=n, temperature=0, eos_token_id=None, repetition_penalty=1.3,
                                   no_repeat_ngram_size=3),
            lambda: hf.generate(prompt, repetition_penalty=1.3, no_repeat_ngram_size=3, **hf_common)),
        "4-beam search 124M: genzoo / transformers": (
            lambda: model.generate(prompt, max_new_tokens=n, num_beams=4, eos_token_id=None),
            lambda: hf.generate(prompt, num_beams=4, **hf_common)),
    }
    for name, (a, b) in cases.items():
        ta, tb, ratios = [], [], []
        with torch.inference_mode():
            out_a, out_b = a(), b()  # warm-up, and the outputs must agree
        if isinstance(out_a, torch.Tensor) and isinstance(out_b, torch.Tensor):
            assert torch.equal(out_a, out_b), name
        for _ in range(args.rounds):
            with torch.inference_mode():
                x, _ = timed(a)
                y, _ = timed(b)
            ta.append(x)
            tb.append(y)
            ratios.append(y / x)  # > 1: the first is faster
        print(f"| {name} | {statistics.median(ta):.3f} s | {statistics.median(tb):.3f} s | "
              f"{', '.join(f'{r:.2f}' for r in ratios)} | **{statistics.median(ratios):.2f}x** |", flush=True)


if __name__ == "__main__":
    main()
