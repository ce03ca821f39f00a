"""Book ch. 3: a GAN learns a 1-D shape (points on y = sin x) in seconds on a CPU.

    python scripts/gan_curve.py --steps 2000 --out runs/sine

Writes runs/sine/points.csv (1,000 generated (x, y) points), runs/sine/points.png (a scatter plot drawn with
Pillow: real curve in grey, generated points in white), and the run folder (the networks, log.jsonl, loss.png,
samples/). Run it again with --overwrite to replace a run.
"""
import argparse
import math
from pathlib import Path

import torch

from genzoo.gan import PRESETS, cli, data, new_gan, train
from genzoo.gan.train import TrainConfig


def scatter(points: torch.Tensor, path: Path, size: int = 256):
    from PIL import Image, ImageDraw

    image = Image.new("L", (size, size), 0)
    draw = ImageDraw.Draw(image)
    to_px = lambda x, y: ((x + math.pi) / (2 * math.pi) * (size - 1), (1.2 - y) / 2.4 * (size - 1))  # noqa: E731
    xs = torch.linspace(-math.pi, math.pi, 400)
    draw.line([to_px(x, math.sin(x)) for x in xs.tolist()], fill=90, width=3)
    for x, y in points.tolist():
        px, py = to_px(x, y)
        draw.point((px, py), fill=255)
    image.save(path)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=2000)
    parser.add_argument("--out", default="runs/sine")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--overwrite", action="store_true", help="replace the run already in --out")
    args = parser.parse_args()
    torch.set_num_threads(1)  # tiny networks: one thread is fastest
    out = Path(args.out)
    generator, discriminator = new_gan(PRESETS["curve"], seed=args.seed)
    points = data.curve_points(128 * 500, "sine", seed=args.seed)  # 500 steps an epoch: a sample file per epoch
    train(TrainConfig(out_dir=str(out), steps=args.steps, batch_size=128, lr=1e-3, seed=args.seed, sample_every=500,
                      overwrite=args.overwrite, device="cpu"), data=points, model=(generator, discriminator))
    points = generator.sample(1000, seed=args.seed)
    error = (points[:, 1] - torch.sin(points[:, 0])).abs().mean().item()
    print(f"mean |y - sin x| over 1,000 generated points: {error:.3f} (points uniform in the box: ~0.6)")
    print(f"x range covered: {points[:, 0].min():.2f} .. {points[:, 0].max():.2f} (target -3.14 .. 3.14)")
    cli.write_output(points, out / "points.csv")
    scatter(points, out / "points.png")
    print(f"wrote {out / 'points.csv'} and {out / 'points.png'}")


if __name__ == "__main__":
    main()
