"""Train genzoo's embedded GAN: a conditional DCGAN on the 8,000 "train" MNIST digits, into weights/mnist-dcgan.

    python scripts/train_embedded_gan.py                 # 6.5 CPU-minutes on one core (17 min wall when shared)
    python scripts/train_embedded_gan.py --device cuda   # the same on a GPU (not measured here)

Seeded and resumable (the run folder runs/embedded-gan): run it again after an interruption and it continues.
The model: PRESETS["mnist-dcgan"] (latent 64, ngf = ndf = 32, 10 classes), non-saturating BCE loss,
Adam(2e-4, betas=(0.5, 0.999)), batch 64, as in Radford et al. and pytorch/examples dcgan.
It trains --epochs epochs (a fixed count, so the result does not depend on the machine's speed); --minutes is
only a safety stop, after the first epoch that ends past it.
"""
import argparse
import json
import time
from pathlib import Path

import torch

from genzoo.gan import PRESETS, data, new_gan, save_gan, train
from genzoo.gan.train import TrainConfig
from genzoo.training import STATE_NAME

ROOT = Path(__file__).resolve().parent.parent


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--epochs", type=int, default=24)
    parser.add_argument("--minutes", type=float, default=60.0, help="safety stop after the epoch that crosses this")
    parser.add_argument("--run-dir", default=str(ROOT / "runs" / "embedded-gan"))
    parser.add_argument("--out", default=str(ROOT / "weights" / "mnist-dcgan"))
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=1,
                        help="torch threads (1 is fastest on a CPU shared with other jobs)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    config = PRESETS["mnist-dcgan"]
    generator, discriminator = new_gan(config, seed=0)
    dataset = data.mnist("train")
    run_dir = Path(args.run_dir)
    started = time.time()
    for epoch in range(1, args.epochs + 1):
        # One epoch per call, resuming from the state written by the previous one (also after a crash).
        resume = (run_dir / STATE_NAME).is_file()
        result = train(TrainConfig(out_dir=str(run_dir), data="mnist", conditional=True, loss="bce", epochs=epoch,
                                   batch_size=64, lr=2e-4, beta1=0.5, seed=0, device=args.device, dtype="float32",
                                   resume=resume, save_every=125, sample_every=125, log_every=25, progress=False),
                       data=dataset, model=(generator, discriminator))
        print(json.dumps({"epoch": epoch, **(result.history[-1] if result.history else {})}), flush=True)
        if time.time() - started > args.minutes * 60:
            print(f"time budget reached after epoch {epoch}", flush=True)
            break
    trained = {"data": "genzoo.datasets.mnist('train') (8,000 digits)", "loss": "bce", "batch_size": 64,
               "lr": 2e-4, "epochs": epoch, "steps": result.step, "script": "scripts/train_embedded_gan.py"}
    save_gan(args.out, generator.cpu(), discriminator.cpu(), extra_config={"train": trained})
    print(f"saved {args.out} ({time.time() - started:.0f} s wall, {time.process_time():.0f} s CPU in this run)")


if __name__ == "__main__":
    main()
