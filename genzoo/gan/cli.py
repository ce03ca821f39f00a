"""`genzoo sample|interpolate|train` for GANs, and the embedded model's demo hooks.

    genzoo sample mnist-dcgan --n 64 --seed 0 --out grid.png [--label 3]
    genzoo interpolate mnist-dcgan --steps 8 --seed 0 --out strip.png [--rows 4] [--label 3]
    genzoo train gan --data mnist --epochs 5 --out runs/gan            # conditional DCGAN on MNIST
    genzoo train gan --data path/to/faces --image-size 64 --channels 3 --out runs/faces
    genzoo train gan --data curve --epochs 20 --out runs/sine          # book ch. 3: points on y = sin x

Image GANs write PNG grids. GANs of vectors (the curve and number GANs) write CSV: one sample per row
(`--argmax` writes the decoded integer of each one-hot vector instead).
"""
from __future__ import annotations

import argparse
import dataclasses
import math
from pathlib import Path

import torch

from ..cli import MAX_IMAGES, check_output, check_range, check_threads
from ..errors import ConfigError
from .losses import LOSSES

EMBEDDED = "mnist-dcgan"


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("model", help="catalog name (genzoo list --family gan), genzoo folder or checkpoint file")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--label", type=int, default=None, help="class label for a conditional GAN")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--dtype", default=None, help="float32 (default: the checkpoint's), float16, bfloat16")
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
    generator = from_pretrained(args.model, device=args.device, dtype=args.dtype)
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
    generator = from_pretrained(args.model, device=args.device, dtype=args.dtype)
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
    parser = argparse.ArgumentParser(prog="genzoo train gan", description="Train a GAN (one loop for every loss).")
    parser.add_argument("--data", required=True,
                        help="mnist | curve | exp | numbers | a folder of images (subfolders = class labels)")
    parser.add_argument("--out", default="runs/gan", help="run folder: checkpoint/, samples_epoch_*.png, history.json")
    parser.add_argument("--preset", default=None, help="curve, numbers, mnist-mlp, mnist-dcgan (default: by --data)")
    parser.add_argument("--arch", choices=("dcgan", "mlp"), default=None, help="image data: dcgan (default) or mlp")
    parser.add_argument("--loss", choices=LOSSES, default="bce")
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--max-steps", type=int, default=None)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--lr", type=float, default=2e-4)
    parser.add_argument("--n-critic", type=int, default=None, help="D steps per G step (default 1; wgan-gp 5)")
    parser.add_argument("--image-size", type=int, default=None, help="folder data: 28, 32, 64 ... (default 64)")
    parser.add_argument("--channels", type=int, default=3, choices=(1, 3), help="folder data: 1 or 3")
    parser.add_argument("--latent-dim", type=int, default=None)
    parser.add_argument("--ngf", type=int, default=None)
    parser.add_argument("--ndf", type=int, default=None)
    parser.add_argument("--conditional", action="store_true", help="condition on the labels (MNIST digits, subfolders)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    parser.add_argument("--resume", action="store_true", help="continue the run in --out")
    args = parser.parse_args(argv)
    from . import data as gan_data
    from .train import new_gan
    from .train import train as run_training

    check_threads(args.threads)
    if args.threads:
        torch.set_num_threads(args.threads)
    dataset, config = _data_and_config(args, gan_data)
    generator, discriminator = new_gan(config, seed=args.seed)
    history = run_training(generator, discriminator, dataset, out_dir=args.out, loss=args.loss, epochs=args.epochs,
                           max_steps=args.max_steps, batch_size=args.batch_size, lr=args.lr, n_critic=args.n_critic,
                           seed=args.seed, device=args.device, resume=args.resume)
    last = history[-1] if history else {}
    print(f"trained {last.get('epoch', 0)} epochs ({last.get('step', 0)} steps): loss_d {last.get('loss_d', 0):.3f}, "
          f"loss_g {last.get('loss_g', 0):.3f}. Checkpoint: {Path(args.out) / 'checkpoint'} "
          f"(genzoo sample {Path(args.out) / 'checkpoint'} --out grid.png)")
    return 0


def _data_and_config(args, gan_data):
    from .models import PRESETS, DCGANConfig, config_from_dict

    if args.resume:
        from ..checkpoint import read_config

        config = config_from_dict(read_config(Path(args.out) / "checkpoint"))
    elif args.preset:
        if args.preset not in PRESETS:
            raise ConfigError(f"unknown preset {args.preset!r}: one of {', '.join(PRESETS)}")
        config = PRESETS[args.preset]
    else:
        config = None
    kind = args.data
    if kind in ("curve", "sine", "exp"):
        dataset = gan_data.curve_points(8192, "exp" if kind == "exp" else "sine", seed=args.seed)
        config = config or PRESETS["curve"]
    elif kind == "numbers":
        dataset = gan_data.multiples(8192, seed=args.seed)
        config = config or PRESETS["numbers"]
    elif kind == "mnist":
        size = args.image_size or 28
        dataset = gan_data.mnist("train", image_size=size)
        if config is None and args.arch == "mlp":
            config = dataclasses.replace(PRESETS["mnist-mlp"], data_shape=(1, size, size))
        config = config or DCGANConfig(latent_dim=64, image_size=size, channels=1, ngf=32, ndf=32)
    else:
        if not Path(kind).is_dir():
            raise ConfigError(f"--data {kind!r}: not mnist, curve, exp or numbers, and not a folder")
        size = args.image_size or 64
        dataset = gan_data.ImageFolder(kind, image_size=size, channels=args.channels)
        if config is None and args.arch == "mlp":
            from .models import MLPGANConfig

            config = MLPGANConfig(data_shape=(args.channels, size, size))
        config = config or DCGANConfig(image_size=size, channels=args.channels)
    overrides = {k: v for k, v in (("latent_dim", args.latent_dim), ("ngf", args.ngf), ("ndf", args.ndf)) if v}
    if args.conditional and not args.resume:
        classes = len(getattr(dataset, "classes", [])) or (10 if kind == "mnist" else 0)
        if classes < 2:
            raise ConfigError("--conditional needs labelled data: MNIST, or a folder with one subfolder per class")
        overrides["num_classes"] = classes
    if args.loss == "wgan-gp" and getattr(config, "d_norm", None) == "batch" and not args.resume:
        overrides["d_norm"] = "layer"  # the gradient penalty is per sample; BatchNorm mixes samples
    if overrides and not args.resume:
        config = dataclasses.replace(config, **{k: v for k, v in overrides.items()
                                                 if k in {f.name for f in dataclasses.fields(config)}})
    return dataset, config


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
