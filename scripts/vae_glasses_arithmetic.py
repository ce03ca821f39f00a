"""Latent arithmetic with a face VAE: men with glasses - men without glasses + women without = women with glasses.

1. Train a convolutional VAE on a folder of face photos (e.g. the Kaggle "glasses or no glasses" set):

    genzoo train vae --data faces/ --size 64 --epochs 50 --out runs/faces-vae

2. Sort a few faces into three folders (a handful each is enough: the group means average out the rest), then

    python scripts/vae_glasses_arithmetic.py runs/faces-vae men_glasses/ men_no_glasses/ women_no_glasses/ \
        --out glasses.png

The output is one row, one image per scale of the attribute vector (0 = the women's mean face as encoded, 1 = the
full "glasses" vector), fading the glasses in; with --per-image, one row per scale and one column per woman. Every folder may hold .png/.jpg files of any size; they are resized to the model's.
"""
import argparse
from pathlib import Path

import torch

from genzoo import vae
from genzoo.images import load_image, save_image
from genzoo.vae.latent import latent_arithmetic


def load_folder(folder, model) -> torch.Tensor:
    paths = sorted(p for p in Path(folder).iterdir() if p.suffix.lower() in (".png", ".jpg", ".jpeg"))
    if not paths:
        raise SystemExit(f"{folder} holds no .png/.jpg images")
    size = model.config.image_size
    return torch.cat([load_image(p, channels=model.in_channels, size=size) for p in paths])


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model", help="a trained ConvVAE folder (genzoo train vae ...)")
    parser.add_argument("group_a", help="faces WITH the attribute (men with glasses)")
    parser.add_argument("group_b", help="faces WITHOUT it, otherwise like group_a (men without glasses)")
    parser.add_argument("group_c", help="faces to add it to (women without glasses)")
    parser.add_argument("--scales", type=float, nargs="+", default=[0.0, 0.25, 0.5, 0.75, 1.0])
    parser.add_argument("--per-image", action="store_true", help="apply the vector to each face of group_c "
                        "instead of to their mean")
    parser.add_argument("--out", default="glasses.png")
    parser.add_argument("--device", default="auto")
    args = parser.parse_args()

    model = vae.from_pretrained(args.model, device=args.device)
    if model.config.model_type != "conv":
        raise SystemExit(f"{args.model} is a {model.config.model_type} VAE; this script expects a ConvVAE trained on faces")
    a, b, c = (load_folder(f, model) for f in (args.group_a, args.group_b, args.group_c))
    images = latent_arithmetic(model, a, b, c, scales=args.scales, average_c=not args.per_image)
    per_row = 1 if not args.per_image else len(c)
    save_image(images, args.out, nrow=per_row if per_row > 1 else len(args.scales))
    print(f"wrote {args.out}: {len(args.scales)} scales x {per_row} face(s)")


if __name__ == "__main__":
    main()
