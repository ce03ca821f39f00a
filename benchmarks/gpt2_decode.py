"""GPT-2 124M greedy decoding on CPU: genzoo vs transformers' generate(), same random weights, one process.

    python benchmarks/gpt2_decode.py                         # fp32, 128-token prompt, 128 new tokens, 2 threads
    python benchmarks/gpt2_decode.py --dtype bfloat16 --rounds 1

Both models read the same checkpoint (transformers' random init saved with save_pretrained, in a temp dir).
Runs alternate genzoo / transformers in every round, so load from other processes on a shared machine hits both
alike; the per-round ratio is the figure to trust, tokens/s are reported too. Greedy outputs are checked equal.
"""
import argparse
import statistics
import tempfile
import time

import torch


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--dtype", default="float32")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--prompt", type=int, default=128)
    parser.add_argument("--new", type=int, default=128)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    from transformers import GPT2Config, GPT2LMHeadModel

    from genzoo import gpt2
    from genzoo.runtime import resolve_dtype

    dtype = resolve_dtype(args.dtype)
    torch.manual_seed(0)
    hf = GPT2LMHeadModel(GPT2Config(bos_token_id=None, eos_token_id=None)).eval()
    with tempfile.TemporaryDirectory() as d:
        hf.save_pretrained(d)
        ours = gpt2.from_pretrained(d, device="cpu", dtype=dtype)
    hf = hf.to(dtype)
    prompt = torch.randint(0, 50257, (1, args.prompt), generator=torch.Generator().manual_seed(1))
    mask = torch.ones_like(prompt)

    def run_genzoo():
        return ours.generate(prompt, max_new_tokens=args.new, temperature=0, eos_token_id=None, progress=False)

    def run_hf():
        with torch.inference_mode():
            return hf.generate(prompt, attention_mask=mask, max_new_tokens=args.new, min_new_tokens=args.new,
                               do_sample=False, pad_token_id=0)

    same = torch.equal(run_genzoo()[:, :args.prompt + 8], run_hf()[:, :args.prompt + 8])  # warm-up + check
    rates = {"genzoo": [], "transformers": []}
    ratios = []
    for r in range(args.rounds):
        for name, fn in (("genzoo", run_genzoo), ("transformers", run_hf)):
            t = time.perf_counter()
            out = fn()
            rates[name].append((out.shape[1] - args.prompt) / (time.perf_counter() - t))
        ratios.append(rates["genzoo"][-1] / rates["transformers"][-1])
        print(f"round {r}: genzoo {rates['genzoo'][-1]:.1f} tok/s, transformers {rates['transformers'][-1]:.1f} "
              f"tok/s, ratio {ratios[-1]:.2f}", flush=True)
    print(f"{args.dtype}, {args.threads} threads, prompt {args.prompt}, {args.new} new tokens (prefill included), "
          f"first 8 greedy tokens identical: {same}")
    print(f"median genzoo {statistics.median(rates['genzoo']):.1f} tok/s, transformers "
          f"{statistics.median(rates['transformers']):.1f} tok/s, median ratio {statistics.median(ratios):.2f}x")


if __name__ == "__main__":
    main()
