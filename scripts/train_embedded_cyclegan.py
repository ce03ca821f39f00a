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

from genzoo.cyclegan.data import invert, mnist_inversion
from genzoo.cyclegan.model import CycleGAN, DiscriminatorConfig, GeneratorConfig
from genzoo.cyclegan.train import TrainConfig, init_weights, train, translation_error
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
        steps=args.steps, batch_size=16, lr=2e-4, gan_mode="lsgan", lambda_cycle=10.0, lambda_identity=0.5,
        pool_size=50, seed=0, log_every=50, sample_every=250, save_every=250,
        generator={"arch": "resnet", "input_nc": 1, "output_nc": 1, "ngf": 8, "n_blocks": 3, "norm": "instance"},
        discriminator={"ndf": 16, "n_layers": 2, "norm": "instance"})
    data_a, data_b, _, _ = mnist_inversion("train")
    heldout, _ = mnist("heldout")

    untrained = CycleGAN.create(GeneratorConfig(**config.generator), DiscriminatorConfig(input_nc=1, **config.discriminator))
    init_weights(untrained, config.seed)
    before = translation_error(untrained.G_A, heldout, invert)
    start = time.perf_counter()
    nets = train(args.run, data_a, data_b, config, device="cpu", resume=args.resume)
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
