"""`genzoo sample|interpolate|train` for GANs, and the embedded model's demo hooks.

    genzoo sample mnist-dcgan --n 64 --seed 0 --out grid.png [--label 3]
    genzoo interpolate mnist-dcgan --steps 8 --seed 0 --out strip.png [--rows 4] [--label 3]
    genzoo train gan --data mnist --conditional --out runs/gan       # conditional DCGAN on MNIST
    genzoo train gan --data path/to/faces --size 64 --out runs/faces  # channels from the folder
    genzoo train gan --data curve --steps 800 --out runs/sine        # book ch. 3: points on y = sin x

Image GANs write PNG grids. GANs of vectors (the curve and number GANs) write CSV: one sample per row
(`--argmax` writes the decoded integer of each one-hot vector instead).
"""
from __future__ import annotations

import argparse
import math
from pathlib import Path

import torch

from ..cli import MAX_IMAGES, check_dtype, check_output, check_range, dtype_help
from ..errors import ConfigError
from .losses import LOSSES

EMBEDDED = "mnist-dcgan"


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("model", help="catalog name (genzoo list --family gan), genzoo folder or checkpoint file")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--label", type=int, default=None, help="class label for a conditional GAN")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--dtype", default="checkpoint", help=dtype_help("checkpoint (auto is opt-in)"))
    parser.add_argument("--overwrite", action="store_true", help="replace --out if it exists")


def sample(argv) -> int:
    parser = argparse.ArgumentParser(prog="genzoo sample", description="Sample a GAN: a PNG grid (or CSV rows).")
    _common(parser)
    parser.add_argument("--n", type=int, default=64, help="number of samples")
    parser.add_argument("--nrow", type=int, default=None, help="images per grid row (default: square grid)")
    parser.add_argument("--out", default="samples.png", help=".png for image GANs, .csv for vector GANs")
    parser.add_argument("--argmax", action="store_true", help="vector GANs: write each row's argmax (one-hot -> int)")
    args = parser.parse_args(argv)
    from . import from_pretrained

    target = check_output(args.out, args.overwrite, default_name="samples.png")   # before any work
    check_range("--n", args.n, 1, MAX_IMAGES)
    generator = from_pretrained(args.model, device=args.device, dtype=check_dtype(args.dtype, args.device))
    out = generator.sample(args.n, seed=args.seed, labels=args.label, progress=True)
    path = write_output(out, target, nrow=args.nrow, argmax=args.argmax, overwrite=args.overwrite)
    print(f"wrote {path}")
    return 0


def interpolate(argv) -> int:
    parser = argparse.ArgumentParser(prog="genzoo interpolate",
                                     description="Latent interpolation strips: each row walks between two random z.")
    _common(parser)
    parser.add_argument("--steps", type=int, default=8, help="samples per strip")
    parser.add_argument("--rows", type=int, default=1, help="number of strips")
    parser.add_argument("--out", default="interpolation.png")
    args = parser.parse_args(argv)
    from . import from_pretrained

    target = check_output(args.out, args.overwrite, default_name="interpolation.png")   # before any work
    check_range("--steps", args.steps, 2, 1000)
    check_range("--rows", args.rows, 1, 1000)
    generator = from_pretrained(args.model, device=args.device, dtype=check_dtype(args.dtype, args.device))
    out = generator.interpolate(args.steps, seed=args.seed, labels=args.label, rows=args.rows)
    path = write_output(out, target, nrow=args.steps, overwrite=args.overwrite)
    print(f"wrote {path}")
    return 0


def eval(argv) -> int:  # noqa: A001 (the command's name)
    parser = argparse.ArgumentParser(prog="genzoo eval",
                                     description="Score a digit GAN's samples with the MNIST classifier.")
    parser.add_argument("model", help="catalog name (genzoo list --family gan), genzoo folder or checkpoint file")
    parser.add_argument("--n", type=int, default=1000, help="number of samples (default 1000)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args(argv)
    from ..evaluation import print_result
    from . import from_pretrained
    from .evaluate import evaluate

    if args.n < 1:
        raise ConfigError(f"--n must be at least 1, not {args.n}")
    generator = from_pretrained(args.model, device=args.device)
    return print_result({"model": args.model, "family": "gan", **evaluate(generator, args.n, args.seed)}, args.json)


def write_output(out: torch.Tensor, path, nrow=None, argmax: bool = False, overwrite: bool = False) -> Path:
    """Images -> PNG grid; vectors -> CSV (one sample per row). Both are written to a temp name, then moved; an
    existing file is replaced only with overwrite=True."""
    path = Path(path)
    if path.exists() and not overwrite:
        raise ConfigError(f"{path} exists already: pass --overwrite (overwrite=True) to replace it")
    out = out.detach().float().cpu()
    if out.dim() == 4:
        if path.suffix.lower() not in (".png", ".jpg", ".jpeg", ".webp", ".bmp"):
            raise ConfigError(f"{path}: image samples are written as an image file (.png)")
        from ..images import save_image  # atomic itself

        return save_image(out, path, nrow=nrow or math.ceil(math.sqrt(len(out))), overwrite=overwrite)
    rows = out.argmax(dim=1, keepdim=True) if argmax else out.flatten(1)
    header = "value" if argmax else ("x,y" if rows.shape[1] == 2 else ",".join(f"v{i}" for i in range(rows.shape[1])))
    lines = [header] + [",".join(str(v) if argmax else f"{v:.6g}" for v in row.tolist()) for row in rows]
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".part")
    tmp.write_text("\n".join(lines) + "\n")
    return tmp.replace(path)


# ---------------------------------------------------------------------------------------------------- train


def train(argv) -> int:
    from ..training import HelpFormatter, add_common_arguments, config_from_args, parse_args, summary
    from .models import PRESETS
    from .train import TrainConfig
    from .train import train as run_training

    defaults = TrainConfig()
    parser = argparse.ArgumentParser(prog="genzoo train gan", formatter_class=HelpFormatter,
                                     description="Train a GAN (one loop for every loss).")
    add_common_arguments(parser, defaults, epochs=True)
    parser.add_argument("--data", default=defaults.data,
                        help="mnist | curve | exp | numbers | a folder of images (subfolders = class labels)")
    parser.add_argument("--preset", default=None, choices=list(PRESETS), help="network preset (default: by --data)")
    parser.add_argument("--arch", choices=("dcgan", "mlp"), default=defaults.arch, help="for image data")
    parser.add_argument("--loss", choices=LOSSES, default=defaults.loss)
    parser.add_argument("--n-critic", type=int, default=None, help="D steps per G step (default 1; wgan-gp 5)")
    parser.add_argument("--size", type=int, nargs="+", default=None, metavar="N",
                        help="image size: S or H W (default: the data's own)")
    parser.add_argument("--channels", type=int, default=None, choices=(1, 3),
                        help="image channels (default: 1 for MNIST and grayscale folders, else 3)")
    parser.add_argument("--fit", choices=("crop", "stretch"), default=defaults.fit, help="how images reach --size")
    parser.add_argument("--flip", action="store_true", help="random horizontal flips")
    parser.add_argument("--latent-dim", type=int, default=None, help="default: the preset's")
    parser.add_argument("--ngf", type=int, default=None, help="generator width (default: the preset's)")
    parser.add_argument("--ndf", type=int, default=None, help="discriminator width (default: the preset's)")
    parser.add_argument("--conditional", action="store_true", help="condition on the labels (MNIST digits, subfolders)")
    parser.add_argument("--lr-d", type=float, default=None, help="the discriminator's learning rate (default: --lr)")
    parser.add_argument("--n-samples", type=int, default=defaults.n_samples, help="samples per grid")
    args = parse_args(parser, argv)
    size = None if not args.size else (args.size[0], args.size[0]) if len(args.size) == 1 else tuple(args.size[:2])
    result = run_training(config_from_args(TrainConfig, args, size=size))
    if result.eval_only:  # --steps 0: the evaluation was printed, nothing saved
        return 0
    print(summary(result, f"genzoo sample {result.out_dir}"))
    return 0


# ---------------------------------------------------------------------------------------------------- demo


def demo(out_dir) -> list[Path]:
    """The embedded conditional MNIST DCGAN: a 10x10 grid (row r = digit r) and one interpolation strip per digit."""
    from . import from_pretrained

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    generator = from_pretrained(EMBEDDED, device="cpu")
    grid = generator.sample(100, seed=0, labels=torch.arange(100) // 10)
    strips = generator.interpolate(10, seed=0, labels=torch.arange(10), rows=10)
    return [write_output(grid, out_dir / "mnist_dcgan_samples.png", nrow=10, overwrite=True),
            write_output(strips, out_dir / "mnist_dcgan_interpolation.png", nrow=10, overwrite=True)]


@torch.no_grad()
def demo_samples(n: int, seed: int = 0) -> torch.Tensor:
    """n digits from the embedded conditional DCGAN, labels 0, 1, ..., 9, 0, 1, ... in turn (so 1,000 samples hold
    100 of each digit): float (n, 1, 28, 28) in [-1, 1] on the CPU. Same seed, same digits."""
    from . import from_pretrained

    generator = from_pretrained(EMBEDDED, device="cpu")
    return generator.sample(n, seed=seed, labels=torch.arange(n) % 10).clamp(-1, 1)
