"""Which weight layout streams faster for a one-token fp32 GEMV on this CPU, per GPT-2 124M matrix shape.

    python benchmarks/gpt2_layouts.py [--threads 1] [--rounds 7]

For each shape, 12 matrices (the 12 layers' worth, so they do not stay in cache; the vocabulary projection once)
are multiplied by one row, as F.linear over (out, in) weights (nn.Linear's layout) and as x @ W over (in, out)
weights (transformers' Conv1D layout). Reported: GB/s of weights read (median over rounds, the two layouts
alternating within each round).
"""
import argparse
import statistics
import time

import torch
import torch.nn.functional as F

SHAPES = {"attn.c_attn": (768, 2304), "attn.c_proj": (768, 768), "mlp.c_fc": (768, 3072),
          "mlp.c_proj": (3072, 768), "vocabulary": (768, 50257)}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {args.threads} thread(s)")
    print("| matrix (in -> out) | F.linear on (out, in) GB/s | x @ W on (in, out) GB/s |")
    print("|---|---|---|")
    for name, (n_in, n_out) in SHAPES.items():
        count = 1 if name == "vocabulary" else 12
        out_in = [torch.randn(n_out, n_in) for _ in range(count)]
        in_out = [w.t().contiguous() for w in out_in]
        x = torch.randn(1, n_in)
        runs = {"linear": lambda: [F.linear(x, w) for w in out_in], "matmul": lambda: [x @ w for w in in_out]}
        times = {key: [] for key in runs}
        for fn in runs.values():
            fn()
        for _ in range(args.rounds):
            for key, fn in runs.items():
                start = time.perf_counter()
                fn()
                times[key].append(time.perf_counter() - start)
        gbs = {key: count * n_in * n_out * 4 / statistics.median(t) / 1e9 for key, t in times.items()}
        print(f"| {name} ({n_in} -> {n_out}) | {gbs['linear']:.1f} | {gbs['matmul']:.1f} |")


if __name__ == "__main__":
    main()
