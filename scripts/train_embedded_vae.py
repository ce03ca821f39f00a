"""Train the embedded `mnist-vae` (weights/mnist-vae/) with genzoo's own training loop. Seeded; CPU is enough.

    python scripts/train_embedded_vae.py                 # ~50 epochs over the 8,000 training digits
    python scripts/train_embedded_vae.py --epochs 2 --out /tmp/vae-try

The run directory (runs/mnist-vae) keeps the optimizer state, so an interrupted run resumes where it stopped;
the final weights are then written to weights/mnist-vae with save_pretrained (model.safetensors + config.json).
"""
import argparse
import json
from pathlib import Path

import torch

from genzoo import datasets, vae
from genzoo.images import save_image
from genzoo.vae.train import TrainConfig, evaluate, train

ROOT = Path(__file__).resolve().parent.parent


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=50)
    parser.add_argument("--run-dir", default=str(ROOT / "runs" / "mnist-vae"))
    parser.add_argument("--out", default=str(ROOT / "weights" / "mnist-vae"))
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--latent-dim", type=int, default=16)
    args = parser.parse_args()

    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    train_images, _ = datasets.mnist("train")
    heldout, _ = datasets.mnist("heldout")
    model = vae.ConvVAE(vae.ConvVAEConfig(in_channels=1, image_size=28, channels=(32, 64), latent_dim=args.latent_dim))
    config = TrainConfig(out_dir=args.run_dir, epochs=args.epochs, batch_size=128, lr=1e-3, beta=1.0, recon="bce",
                         seed=0, device="cpu", dtype="float32", save_every=500, sample_every=500, log_every=63,
                         overwrite=True)
    print(f"{model.num_parameters():,} parameters; held-out BCE before training: {evaluate(model, heldout):.1f}")
    result = train(config, data=train_images, model=model, heldout=heldout)
    model = result.model
    model.save_pretrained(args.out)
    with open(Path(args.out) / "training.json", "w") as f:
        json.dump({"script": "scripts/train_embedded_vae.py", "train_config": {**vars(config), "out_dir": "runs/mnist-vae"},
                   "data": "genzoo.datasets.mnist('train') (8,000 digits)", "history": result.history}, f, indent=1)
    save_image(model.sample(64, seed=0), Path(args.run_dir) / "samples.png", nrow=8)
    print(f"held-out BCE after training: {evaluate(model, heldout):.1f}; wrote {args.out}")


if __name__ == "__main__":
    main()
