"""genzoo's ResnetGenerator vs junyanz's layout (the nn.Sequential the parity tests rebuild) on the same weights.

There is no pip-installable reference library for CycleGAN, so the reference is tests/cyclegan/reference.py, the
torch.nn rebuild of junyanz's networks.py layout the loader tests compare against (same modules, same order).
Both run the published configuration (9 residual blocks, ngf 64, instance norm) on random weights.

    python benchmarks/cyclegan_translate.py [--size 256] [--batch 1] [--rounds 5] [--threads 2] [--device cpu]
"""
from __future__ import annotations

import argparse
import platform
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from tests.cyclegan.reference import RefResnetGenerator, randomize  # noqa: E402

from genzoo import cyclegan  # noqa: E402
from genzoo.runtime import resolve_device  # noqa: E402


def timed(fn, x, rounds, device):
    with torch.inference_mode():
        fn(x)  # warm-up
        if device.type == "cuda":
            torch.cuda.synchronize()
        times = []
        for _ in range(rounds):
            start = time.perf_counter()
            fn(x)
            if device.type == "cuda":
                torch.cuda.synchronize()
            times.append(time.perf_counter() - start)
    return min(times), sorted(times)[len(times) // 2]


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--device", default="cpu", help="cpu, cuda, cuda:1, mps or auto")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    device = resolve_device(args.device)

    ref = randomize(RefResnetGenerator(3, 3, ngf=64, n_blocks=9))
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "horse2zebra_like.pth"
        torch.save(ref.state_dict(), path)
        start = time.perf_counter()
        ours = cyclegan.from_pretrained(path, device=device)
        load_s = time.perf_counter() - start
    ref = ref.to(device)
    x = torch.rand(args.batch, 3, args.size, args.size, device=device) * 2 - 1
    with torch.inference_mode():
        diff = (ours(x) - ref(x)).abs().max().item()
    ours_best, ours_med = timed(ours, x, args.rounds, device)
    ref_best, ref_med = timed(ref, x, args.rounds, device)
    print(f"machine: {platform.processor() or platform.machine()}, torch {torch.__version__}, {args.threads} threads, "
          f"device {device}")
    print(f"input {args.batch}x3x{args.size}x{args.size}, {args.rounds} rounds; load (meta init + assign) {load_s:.2f} s")
    print("| implementation | best ms | median ms |\n|---|---|---|")
    print(f"| genzoo ResnetGenerator | {ours_best * 1e3:.0f} | {ours_med * 1e3:.0f} |")
    print(f"| junyanz layout (reference) | {ref_best * 1e3:.0f} | {ref_med * 1e3:.0f} |")
    print(f"max |diff| = {diff:.2e}")


if __name__ == "__main__":
    main()
