"""`genzoo reconstruct | sample | interpolate | train vae` for VAEs, and the embedded model's demo hooks.

    genzoo reconstruct sd-vae-ft-mse in.png out.png [--tiled]
    genzoo sample mnist-vae --n 64 --seed 0 --out grid.png
    genzoo interpolate mnist-vae a.png b.png --steps 8 --out strip.png
    genzoo train vae --data mnist --kind conv --epochs 20 --out runs/my-vae

Images are converted at the boundary, and each conversion is printed: to the model's channel count (gray <->
RGB, by Pillow), to a fixed-size model's size (MLP/conv VAEs: bicubic resize), and for AutoencoderKL to a multiple
of 8 by padding the right/bottom edges (reflection), cropped away again in the output.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch
import torch.nn.functional as F

from ..cli import MAX_IMAGE_SIDE, MAX_IMAGES, MAX_STEPS, check_dtype, check_output, check_range, dtype_help
from ..errors import ConfigError
from ..images import load_image, save_image

EMBEDDED = "mnist-vae"


AUTO_DEFAULT = ("auto: on mnist-vae bf16 reconstructs and samples 2x faster with the same digits "
                "(benchmarks/results/vae.md)")


def _common(parser: argparse.ArgumentParser, dtype: str = "auto") -> None:
    parser.add_argument("model", help="catalog name (genzoo list --family vae), folder, file or Hub repo id")
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda, mps (default: auto)")
    parser.add_argument("--dtype", default=dtype, help=dtype_help(AUTO_DEFAULT if dtype == "auto" else dtype))
    parser.add_argument("--overwrite", action="store_true", help="replace output files that exist already")


def _load(args):
    from . import from_pretrained

    return from_pretrained(args.model, device=args.device, dtype=check_dtype(args.dtype, args.device))


def _fixed_size(model):
    """(H, W) for models that take one image size only (MLP/conv VAEs), else None."""
    config = model.config
    if config.model_type == "mlp":
        return tuple(config.image_shape[1:])
    if config.model_type == "conv":
        return (config.image_size, config.image_size)
    return None


def _read(model, path, size=None) -> torch.Tensor:
    """An image file as the model wants it: its channel count, its size (fixed-size models), on its device/dtype."""
    fixed = _fixed_size(model)
    if fixed is not None and size is None:
        size = (fixed[1], fixed[0])
    image = load_image(path, channels=model.in_channels, size=size)
    param = next(model.parameters())
    return image.to(param.device, param.dtype)


def _pad_to_multiple(x: torch.Tensor, multiple: int) -> torch.Tensor:
    height, width = x.shape[-2:]
    pad_h, pad_w = -height % multiple, -width % multiple
    if not (pad_h or pad_w):
        return x
    mode = "reflect" if pad_h < height and pad_w < width else "replicate"
    print(f"padding {height}x{width} to {height + pad_h}x{width + pad_w} (a multiple of {multiple}); "
          f"the output is cropped back", file=sys.stderr)
    return F.pad(x, (0, pad_w, 0, pad_h), mode=mode)


def reconstruct(argv) -> int:
    parser = argparse.ArgumentParser(prog="genzoo reconstruct", description="Encode an image with a VAE and decode it.")
    _common(parser)
    parser.add_argument("input", help="an image file, or a folder of images")
    parser.add_argument("output", help="where to write the reconstruction (PNG), or a folder (the input's name "
                        "is kept; a folder input needs a folder output)")
    parser.add_argument("--size", type=int, nargs="+", metavar=("W", "H"), help="resize the input first")
    parser.add_argument("--tiled", action="store_true", help="AutoencoderKL: encode/decode in tiles (bounded memory "
                        "for large images; seams are blended, results differ slightly)")
    parser.add_argument("--tile-size", type=int, default=None, help="tile size in pixels (default: the model's sample_size)")
    args = parser.parse_args(argv)
    pairs = _reconstruct_pairs(Path(args.input), Path(args.output), args.overwrite)   # every check before loading
    model = _load(args)
    if args.tiled and model.config.model_type != "autoencoder_kl":
        raise ConfigError("--tiled is for AutoencoderKL models only")
    for source, target in pairs:
        image = _read(model, source, _size(args.size))
        height, width = image.shape[-2:]
        kwargs = {}
        if model.config.model_type == "autoencoder_kl":
            image = _pad_to_multiple(image, model.config.downsample_factor)
            kwargs = {"tiled": args.tiled, "tile_size": args.tile_size}
        with torch.inference_mode():
            out = model.reconstruct(image, **kwargs)[..., :height, :width]
        print(f"wrote {save_image(out, target, overwrite=args.overwrite)}")
    return 0


IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".webp", ".tif", ".tiff")


def _reconstruct_pairs(source: Path, target: Path, overwrite: bool) -> list[tuple[Path, Path]]:
    """(input image, output path) pairs: file -> file, file -> folder (same name), folder -> folder."""
    if not source.exists():
        raise ConfigError(f"no image file or folder at {source}")
    if source.is_dir():
        if target.exists() and not target.is_dir():
            raise ConfigError(f"{source} is a folder, so the output must be a folder too; {target} is a file")
        images = sorted(p for p in source.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
        if not images:
            raise ConfigError(f"{source} holds no images ({', '.join(IMAGE_SUFFIXES)})")
        pairs = [(p, target / (p.stem + ".png")) for p in images]
    else:
        pairs = [(source, target / (source.stem + ".png") if target.is_dir() else target)]
    for image, out in pairs:
        if out.resolve() == image.resolve():
            raise ConfigError(f"refusing to overwrite the input {image}: choose another output path")
        check_output(out, overwrite)
    return pairs


def sample(argv) -> int:
    parser = argparse.ArgumentParser(prog="genzoo sample", description="Decode draws from a VAE's prior into a grid.")
    _common(parser)
    parser.add_argument("--n", type=int, default=64, help="how many images (default 64)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default="samples.png")
    parser.add_argument("--nrow", type=int, default=None, help="images per grid row (default: square-ish)")
    parser.add_argument("--size", type=int, nargs="+", metavar=("H", "W"),
                        help="AutoencoderKL: image size (default: its sample_size)")
    args = parser.parse_args(argv)
    out = check_output(args.out, args.overwrite, default_name="samples.png")   # before any work
    check_range("--n", args.n, 1, MAX_IMAGES)
    for side in args.size or ():
        check_range("--size", side, 8, MAX_IMAGE_SIDE)
    model = _load(args)
    kwargs = {"image_size": _size(args.size)} if args.size else {}
    with torch.inference_mode():
        images = model.sample(args.n, seed=args.seed, **kwargs)
    print(f"wrote {save_image(images, out, nrow=args.nrow, overwrite=args.overwrite)}")
    return 0


def interpolate(argv) -> int:
    from .latent import interpolate as interpolate_latents

    parser = argparse.ArgumentParser(prog="genzoo interpolate", description="Decode the latent path between two images.")
    _common(parser)
    parser.add_argument("a", help="first image")
    parser.add_argument("b", help="last image")
    parser.add_argument("--steps", type=int, default=8, help="images in the strip, ends included (default 8)")
    parser.add_argument("--method", choices=("linear", "slerp"), default="linear")
    parser.add_argument("--out", default="interpolation.png")
    parser.add_argument("--size", type=int, nargs="+", metavar=("W", "H"), help="resize both images to this size")
    args = parser.parse_args(argv)
    out = check_output(args.out, args.overwrite, default_name="interpolation.png")   # before any work
    check_range("--steps", args.steps, 2, MAX_STEPS)
    model = _load(args)
    a, b = _read(model, args.a, _size(args.size)), _read(model, args.b, _size(args.size))
    if a.shape != b.shape:
        raise ConfigError(f"{args.a} is {tuple(a.shape[-2:])} and {args.b} is {tuple(b.shape[-2:])}: pass --size W H")
    height, width = a.shape[-2:]
    if model.config.model_type == "autoencoder_kl":
        a, b = (_pad_to_multiple(x, model.config.downsample_factor) for x in (a, b))
    with torch.inference_mode():
        strip = interpolate_latents(model, a, b, steps=args.steps, method=args.method)[..., :height, :width]
    print(f"wrote {save_image(strip, out, nrow=args.steps, overwrite=args.overwrite)}")
    return 0


def eval(argv) -> int:  # noqa: A001 (the command's name)
    parser = argparse.ArgumentParser(prog="genzoo eval", description="Reconstruction error of a VAE (and, for digit "
                                     "models, the MNIST classifier score of its reconstructions and samples).")
    _common(parser, dtype="checkpoint")
    parser.add_argument("data", nargs="?", default="mnist",
                        help="'mnist' (default: the 2,000 held-out digits), a folder of images or one image")
    parser.add_argument("--n", type=int, default=None, help="use a random subset of n images (seeded)")
    parser.add_argument("--samples", type=int, default=1000, help="digit models: prior samples to classify (0: none)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--size", type=int, default=None, help="resize images to this square size")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args(argv)
    from ..evaluation import load_image_data, print_result
    from .evaluate import evaluate, image_size

    model = _load(args)
    images, labels, source = load_image_data(args.data, model.in_channels, args.size or image_size(model), args.n,
                                             args.seed)
    result = evaluate(model, images, labels, samples=max(args.samples, 0), seed=args.seed)
    return print_result({"model": args.model, "family": "vae", "data": source, **result}, args.json)


def _size(values):
    """--size S (a square) or --size A B -> (A, B), in the order the option's help names."""
    if not values:
        return None
    if len(values) == 1:
        return (values[0], values[0])
    if len(values) != 2:
        raise ConfigError("--size takes one number (a square) or two")
    return tuple(values)


def train(argv) -> int:
    from ..training import HelpFormatter, add_common_arguments, config_from_args, parse_args, summary
    from .train import TrainConfig, train as train_loop

    defaults = TrainConfig()
    parser = argparse.ArgumentParser(prog="genzoo train vae", formatter_class=HelpFormatter,
                                     description="Train a VAE (or a plain autoencoder) on MNIST or a folder of images.")
    add_common_arguments(parser, defaults, epochs=True)
    parser.add_argument("--data", default=defaults.data, help="'mnist' (genzoo's 8k training digits) or a folder of images")
    parser.add_argument("--size", type=int, nargs="+", default=None, metavar="N",
                        help="image size: S (a square) or H W (default: the data's own)")
    parser.add_argument("--channels", type=int, choices=(1, 3), default=None,
                        help="image channels (default: 1 for MNIST and grayscale folders, else 3)")
    parser.add_argument("--fit", choices=("crop", "stretch"), default=defaults.fit, help="how images reach --size")
    parser.add_argument("--flip", action="store_true", help="random horizontal flips")
    parser.add_argument("--kind", choices=("conv", "mlp"), default=defaults.kind)
    parser.add_argument("--widths", type=int, nargs="+", default=None,
                        help="conv widths, one stride-2 layer each (default 32 64 up to 32 px, else 32 64 128 256)")
    parser.add_argument("--hidden", type=int, default=defaults.hidden, help="MLP hidden width")
    parser.add_argument("--latent-dim", type=int, default=None, help="default 20 (mlp), 16 (conv up to 32 px), 128")
    parser.add_argument("--plain", dest="variational", action="store_false",
                        help="a plain autoencoder (no KL term, deterministic codes)")
    parser.add_argument("--beta", type=float, default=defaults.beta, help="weight of the KL term")
    parser.add_argument("--recon", choices=("bce", "mse"), default=None, help="default: bce for mnist, mse for folders")
    parser.add_argument("--weight-decay", type=float, default=defaults.weight_decay)
    args = parse_args(parser, argv)
    widths = tuple(args.widths) if args.widths else None
    result = train_loop(config_from_args(TrainConfig, args, size=_size(args.size), widths=widths))
    if result.eval_only:  # --steps 0: the evaluation was printed, nothing saved
        return 0
    print(summary(result, f"genzoo sample {result.out_dir}"))
    return 0


# -- the embedded model ------------------------------------------------------------------------------------------
def _embedded(device="cpu"):
    from . import from_pretrained

    return from_pretrained(EMBEDDED, device=device)


def demo_samples(n: int, seed: int = 0) -> torch.Tensor:
    """n digits decoded from prior draws z ~ N(0, I) by the embedded mnist-vae: (n, 1, 28, 28) floats in [-1, 1], CPU."""
    with torch.inference_mode():
        return _embedded().sample(n, seed=seed).float().cpu()


def demo(out_dir) -> list[Path]:
    """The embedded mnist-vae: 64 prior samples, 8 held-out digits over their reconstructions, and an
    interpolation strip between two held-out digits, as PNGs in out_dir; returns their paths."""
    from tqdm.auto import tqdm

    from .. import datasets
    from .latent import interpolate as interpolate_latents

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    with tqdm(total=3, desc="vae demo", leave=False) as bar, torch.inference_mode():
        model = _embedded()
        written.append(save_image(model.sample(64, seed=0), out_dir / "vae_samples.png", nrow=8, overwrite=True))
        bar.update(1)
        digits, labels = datasets.mnist("heldout")
        originals = digits[:8]
        pairs = torch.cat([originals, model.reconstruct(originals)])
        written.append(save_image(pairs, out_dir / "vae_reconstructions.png", nrow=8, overwrite=True))
        bar.update(1)
        a = digits[(labels == 3).nonzero()[0, 0]]
        b = digits[(labels == 8).nonzero()[0, 0]]
        strip = interpolate_latents(model, a, b, steps=10)
        written.append(save_image(strip, out_dir / "vae_interpolation.png", nrow=10, overwrite=True))
        bar.update(1)
    return written


__all__ = ["reconstruct", "sample", "interpolate", "train", "demo", "demo_samples"]
