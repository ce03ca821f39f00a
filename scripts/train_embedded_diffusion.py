"""Train genzoo's embedded diffusion model, weights/mnist-ddpm: a small DDPM U-Net on MNIST (28x28, no padding).

    python scripts/train_embedded_diffusion.py                 # one thread: ~45 min on a busy shared core
    python scripts/train_embedded_diffusion.py --resume        # continue an interrupted run

Seeded and deterministic on a given machine. The U-Net (687K parameters) halves 28 -> 14 -> 7 and attends at
7x7; the demo samples it with 20 DDIM steps. Three cosine cycles: 1,600 steps, then warm restarts to 3,600 and
6,000 (each stage resumes the previous one's state, so the run is one deterministic sequence). The run folder
(training state, log, samples) is runs/mnist-ddpm; at the end its model.safetensors (EMA weights) + config.json
are copied to weights/mnist-ddpm, which holds only what ships.
"""
import argparse
import shutil
import time
from pathlib import Path

import torch

from genzoo.diffusion.train import TrainConfig, train

ROOT = Path(__file__).resolve().parent.parent


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--stages", type=int, nargs="+", default=[1600, 3600, 6000],
                        help="total steps at the end of each cosine cycle")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", default=str(ROOT / "weights" / "mnist-ddpm"))
    parser.add_argument("--run", default=str(ROOT / "runs" / "mnist-ddpm"), help="the run folder")
    parser.add_argument("--resume", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    base = dict(
        data="mnist", out_dir=args.run, size=28, dtype="float32",
        block_out_channels=(16, 32, 64), attention=(False, False, True), layers_per_block=1, norm_num_groups=8,
        num_train_timesteps=1000, beta_schedule="linear",
        batch_size=args.batch_size, lr=1e-3, warmup_steps=100, ema_decay=0.995,
        seed=0, device="cpu", save_every=100, log_every=50, sample_every=500, progress=False)
    start = time.time()
    for i, steps in enumerate(args.stages):
        result = train(TrainConfig(**base, steps=steps, resume=args.resume or i > 0))
        print(f"stage {i + 1}: {result.step} steps, {time.time() - start:.0f} s -> {result.out_dir}", flush=True)
    Path(args.out).mkdir(parents=True, exist_ok=True)
    for name in ("model.safetensors", "config.json"):
        shutil.copy(Path(args.run) / name, Path(args.out) / name)
    print(f"copied the EMA U-Net to {args.out}")


if __name__ == "__main__":
    main()
