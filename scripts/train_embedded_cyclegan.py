"""Train genzoo's embedded CycleGAN: MNIST digits (A) <-> colour-inverted digits (B), unpaired, on the CPU.

    python scripts/train_embedded_cyclegan.py                 # ~15 min on one CPU thread
    python scripts/train_embedded_cyclegan.py --steps 200     # a quick look

Domain A is the first half of mnist("train") and domain B the *inverted second half*, so no B image is the
inversion of an A image: the mapping has to be discovered, as in a real unpaired task. Because the true mapping is
known (invert), the script reports mean |G_A(a) - invert(a)| on held-out digits before and after training.
The run folder (checkpoints, samples/, log.jsonl) is runs/mnist-cyclegan; the final networks are copied to
weights/mnist-cyclegan/ (model.safetensors + config.json, no optimizer state).
"""
from __future__ import annotations

import argparse
import json
import shutil
import time
from pathlib import Path

import torch

from genzoo.cyclegan.data import invert
from genzoo.cyclegan.train import TrainConfig, build_networks, train, translation_error
from genzoo.datasets import mnist

ROOT = Path(__file__).resolve().parent.parent
NAME = "mnist-cyclegan"


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=2500)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--run", default=str(ROOT / "runs" / NAME))
    parser.add_argument("--out", default=str(ROOT / "weights" / NAME))
    parser.add_argument("--resume", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    config = TrainConfig(
        out_dir=args.run, resume=args.resume, data="mnist-invert", steps=args.steps, batch_size=16, lr=2e-4,
        gan_mode="lsgan", lambda_cycle=10.0, lambda_identity=0.5, pool_size=50, seed=0, log_every=50,
        sample_every=250, save_every=250, netG="resnet", ngf=8, n_blocks=3, norm="instance", ndf=16, n_layers_d=2,
        device="cpu", dtype="float32")
    heldout, _ = mnist("heldout")

    untrained = build_networks(config, 1, 1, (28, 28))
    before = translation_error(untrained.G_A, heldout, invert)
    start = time.perf_counter()
    nets = train(config).model
    seconds = time.perf_counter() - start
    after_ab = translation_error(nets.G_A, heldout, invert)
    after_ba = translation_error(nets.G_B, invert(heldout), invert)
    report = {"steps": args.steps, "train_seconds": round(seconds, 1), "threads": args.threads,
              "heldout_mean_abs_GA_minus_invert_before": round(before, 4),
              "heldout_mean_abs_GA_minus_invert_after": round(after_ab, 4),
              "heldout_mean_abs_GB_minus_invert_after": round(after_ba, 4)}
    print(json.dumps(report, indent=2))

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    for name in ("model.safetensors", "config.json"):
        shutil.copy2(Path(args.run) / name, out / name)
    (out / "training_report.json").write_text(json.dumps(report, indent=2) + "\n")
    print(f"copied the final networks to {out}")


if __name__ == "__main__":
    main()
