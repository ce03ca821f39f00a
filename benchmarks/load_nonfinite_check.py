"""What refusing NaN/inf weights costs at load: gpt2.from_pretrained with the check (default) and without it
(allow_nonfinite=True), on a ~500 MB checkpoint (GPT-2 small's shapes, random fp32 weights, genzoo's format).

    python benchmarks/load_nonfinite_check.py --dir /tmp/nonfinite-bench --rounds 5 --threads 1

One process, warm page cache (one untimed load of each first), the two variants alternated in every round; for each
round: load time, and load + one forward pass over 8 tokens (the first forward touches every weight page anyway).
Also times checkpoint.check_finite alone over the loaded state dict. Reports medians and the median per-round
ratio. The folder is deleted at the end unless --keep.
"""
import argparse
import shutil
import statistics
import time
from pathlib import Path

import torch

from genzoo import checkpoint, gpt2


def timed_load(path, allow_nonfinite):
    t0 = time.perf_counter()
    model = gpt2.from_pretrained(path, device="cpu", allow_nonfinite=allow_nonfinite)
    load = time.perf_counter() - t0
    with torch.inference_mode():
        model(torch.arange(8).unsqueeze(0))
    return load, time.perf_counter() - t0


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--dir", type=Path, default=Path("/tmp/nonfinite-bench"))
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--keep", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    if not (args.dir / "model.safetensors").is_file():
        torch.manual_seed(0)
        model = gpt2.GPT(gpt2.GPTConfig(n_layer=12, n_head=12, n_embd=768))   # 124M parameters
        model.save_pretrained(args.dir)
        del model
    size = (args.dir / "model.safetensors").stat().st_size / 2**20
    print(f"checkpoint: {size:.0f} MiB, threads {args.threads}", flush=True)
    try:
        timed_load(args.dir, True), timed_load(args.dir, False)   # warm the page cache and the imports
        rows = {"checked": [], "unchecked": []}
        for _ in range(args.rounds):
            rows["checked"].append(timed_load(args.dir, False))
            rows["unchecked"].append(timed_load(args.dir, True))
        state = checkpoint.load_state_dict(args.dir / "model.safetensors")
        check_times = []
        for _ in range(args.rounds):
            t0 = time.perf_counter()
            checkpoint.check_finite(state)
            check_times.append(time.perf_counter() - t0)
    finally:
        if not args.keep:
            shutil.rmtree(args.dir, ignore_errors=True)
    for i, what in enumerate(("load", "load + first forward")):
        checked = [r[i] for r in rows["checked"]]
        unchecked = [r[i] for r in rows["unchecked"]]
        ratios = [c / u for c, u in zip(checked, unchecked)]
        print(f"{what}: checked {statistics.median(checked):.3f} s, unchecked {statistics.median(unchecked):.3f} s, "
              f"ratio per round {', '.join(f'{r:.2f}' for r in ratios)}, median {statistics.median(ratios):.2f}x")
    print(f"check_finite alone over the mmapped state dict: median {statistics.median(check_times):.3f} s "
          f"({size / statistics.median(check_times):.0f} MiB/s)")


if __name__ == "__main__":
    main()
