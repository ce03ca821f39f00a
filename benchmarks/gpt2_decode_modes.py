"""genzoo-only A/B of GPT-2 124M decode variants (precision[:decode mode][@attention backend]), 1 process, CPU time.

    python benchmarks/gpt2_decode_modes.py 1 int8,int8:compile,fp16,fp16:compile,fp32,fp32:compile 5
    python benchmarks/gpt2_decode_modes.py 1 int8,int8@math,fp16,fp16@math 3

Arguments: threads, comma-separated variants (fp32 | bf16 | fp16 | int8, optionally ":static" / ":compile" and
"@math" / "@sdpa"; also fp32-oi / fp32-io: fp32 with every block weight kept stored (out, in) / (in, out), i.e.
without GPT.arrange_for_decoding's per-shape choice), rounds. Random GPT() weights (genzoo's init, (out, in) layout), 32-token prompt, 64 greedy new
tokens, prefill included; every variant runs once per round, in turn; tok/s by process CPU time per thread (the
figure least disturbed by neighbours on a shared machine), medians. Prints how many greedy tokens equal fp32's.
Quicker than gpt2_decode.py (no transformers) when only genzoo's own variants are compared.
"""
import copy
import statistics
import sys
import time
import warnings

import torch

from genzoo.gpt2.model import GPT, GPTConfig


def fixed_layout(model, layout):
    """Store every block weight (out, in) ("oi") or (in, out) ("io"), and keep it so while decoding."""
    for module in model.h.modules():
        if isinstance(module, torch.nn.Linear):
            w = module.weight.data
            module.weight.data = w.contiguous() if layout == "oi" else w.t().contiguous().t()
    model.arrange_for_decoding = lambda: model


def main():
    warnings.filterwarnings("ignore")
    torch.set_num_threads(int(sys.argv[1]) if len(sys.argv) > 1 else 1)
    variants = sys.argv[2].split(",") if len(sys.argv) > 2 else ["fp32", "bf16", "fp16", "int8"]
    rounds = int(sys.argv[3]) if len(sys.argv) > 3 else 3
    torch.manual_seed(0)
    base = GPT(GPTConfig()).eval()
    ids = torch.randint(0, 50257, (1, 32))
    models = {}
    for variant in variants:
        rest, _, backend = variant.partition("@")
        precision, _, mode = rest.partition(":")
        if precision.startswith("fp32"):
            model = copy.deepcopy(base)
            if precision in ("fp32-oi", "fp32-io"):
                fixed_layout(model, precision[-2:])
        else:
            model = copy.deepcopy(base).quantize(precision)
        if mode:
            model.set_decode_mode(mode)
        if backend:
            model.set_attention_backend(backend)
        models[variant] = model

    def run(model, n=64):
        return model.generate(ids, max_new_tokens=n, temperature=0, eos_token_id=None, progress=False)

    reference = run(base)[0, 32:]
    for name, model in models.items():  # warm-up (and compilation)
        print(name, "greedy tokens equal to fp32:", int((run(model)[0, 32:] == reference).cumprod(0).sum()))
    rates = {name: [] for name in models}
    for r in range(rounds):
        for name, model in models.items():
            start = time.process_time()
            run(model)
            rates[name].append(64 / ((time.process_time() - start) / torch.get_num_threads()))
        print(r, {name: round(v[-1], 1) for name, v in rates.items()}, flush=True)
    for name, values in rates.items():
        print(f"{name}: median {statistics.median(values):.1f} tok/s by CPU time")


if __name__ == "__main__":
    main()
