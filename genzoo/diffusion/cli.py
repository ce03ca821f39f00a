"""Command line: `genzoo sample <diffusion model> ...`, `genzoo train diffusion ...`, and the embedded demo."""
from __future__ import annotations

import argparse
import inspect
import time
from pathlib import Path

import torch

from ..cli import dtype_help
from .schedulers import DDPMScheduler, scheduler_kinds

EMBEDDED = "mnist-ddpm"
DEMO_STEPS = 20  # DDIM steps for the embedded model's demo


def _sample_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="genzoo sample", description="Sample images from a DDPM U-Net with any "
                                "scheduler, e.g. `genzoo sample ddpm-cifar10-32 --scheduler dpm++2m --steps 20`.")
    p.add_argument("model", help="catalog name (genzoo list --family diffusion), local folder or Hub repo id")
    p.add_argument("--scheduler", default="ddim",
                   help="ddim (default), ddpm, dpm++2m (DPM-Solver++ 2M, good in 15-25 steps) or euler_a (Euler "
                        f"ancestral); all names: {', '.join(scheduler_kinds())}")
    p.add_argument("--steps", type=int, default=None,
                   help="sampling steps (default: the training timesteps (1000) for DDPM, 50 for the others)")
    p.add_argument("--eta", type=float, default=None, help="DDIM noise: 0 deterministic (default), 1 DDPM-like")
    p.add_argument("--n", type=int, default=16, help="number of images (default 16)")
    p.add_argument("--batch-size", type=int, default=None,
                   help="images per U-Net call (default: all n at once); the images do not depend on it")
    p.add_argument("--seed", type=int, default=0, help="image i's noise depends on the seed and i only")
    p.add_argument("--size", type=int, default=None, help="image size (default: the model's training size)")
    p.add_argument("--out", default="samples.png", help="output grid PNG (default samples.png)")
    p.add_argument("--nrow", type=int, default=None, help="images per grid row")
    p.add_argument("--strip", default=None, metavar="PNG",
                   help="also save the denoising strip: x_t at several t, noise on the left, images on the right")
    p.add_argument("--strip-points", type=int, default=8, help="columns of the strip (default 8)")
    p.add_argument("--device", default="auto")
    p.add_argument("--dtype", default="checkpoint",
                   help=dtype_help("checkpoint (float32): auto is opt-in here, as bf16 sampling changes the images "
                                   "(mnist-ddpm, DDIM-50: 5%% of the digits change class; benchmarks/results/"
                                   "diffusion.md)"))
    p.add_argument("--revision", default=None, help="Hub revision (branch, tag or commit)")
    p.add_argument("--overwrite", action="store_true", help="replace --out / --strip if they exist")
    return p


def sample(argv) -> int:
    from ..cli import MAX_IMAGE_SIDE, MAX_IMAGES, MAX_STEPS, check_dtype, check_output, check_range
    from ..errors import ConfigError
    from ..images import save_image
    from . import denoising_strip, from_pretrained, load_scheduler
    from .sampling import sample as draw

    args = _sample_parser().parse_args(argv)
    grid_out = check_output(args.out, args.overwrite, default_name="samples.png")   # before any work
    strip_out = check_output(args.strip, args.overwrite, default_name="strip.png") if args.strip else None
    if strip_out is not None and strip_out.resolve() == grid_out.resolve():
        raise ConfigError("--out and --strip name the same file")
    check_range("--n", args.n, 1, MAX_IMAGES)
    check_range("--steps", args.steps, 1, MAX_STEPS)
    check_range("--batch-size", args.batch_size, 1, MAX_IMAGES)
    check_range("--size", args.size, 8, MAX_IMAGE_SIDE)
    check_range("--strip-points", args.strip_points, 2, 1000)
    dtype = check_dtype(args.dtype, args.device)
    scheduler = load_scheduler(args.model, kind=args.scheduler, revision=args.revision)  # bad kind fails first
    if args.eta is not None and "eta" not in inspect.signature(scheduler.step).parameters:
        raise ConfigError(f"--eta only applies to --scheduler ddim, not {args.scheduler}")
    steps = args.steps if args.steps is not None else (scheduler.num_train_timesteps
                                                        if isinstance(scheduler, DDPMScheduler) else 50)
    if args.n < 1:
        raise ConfigError(f"--n must be >= 1, got {args.n}")
    if args.batch_size is not None and args.batch_size < 1:
        raise ConfigError(f"--batch-size must be >= 1, got {args.batch_size}")
    unet = from_pretrained(args.model, device=args.device, dtype=dtype, revision=args.revision)

    start = time.perf_counter()
    out = draw(unet, scheduler, n=args.n, steps=steps, seed=args.seed, eta=args.eta, size=args.size,
               batch_size=args.batch_size, return_trajectory=args.strip is not None,
               trajectory_points=args.strip_points)
    images, trajectory = out if args.strip is not None else (out, None)
    written = [save_image(images.cpu(), grid_out, nrow=args.nrow, overwrite=args.overwrite)]
    if args.strip is not None:
        strip = denoising_strip(trajectory, max_images=min(4, args.n))
        written.append(save_image(strip, strip_out, nrow=len(trajectory), overwrite=args.overwrite))
    print(f"{args.n} images, {type(scheduler).__name__} {steps} steps, {time.perf_counter() - start:.1f} s -> "
          + ", ".join(str(p) for p in written))
    return 0


def train(argv) -> int:
    from ..training import HelpFormatter, add_common_arguments, config_from_args, parse_args, summary
    from .train import LOSSES, TrainConfig, train as run

    defaults = TrainConfig()
    p = argparse.ArgumentParser(prog="genzoo train diffusion", formatter_class=HelpFormatter,
                                description="Train a DDPM U-Net on MNIST or on a folder of images (book ch. 15).")
    add_common_arguments(p, defaults, epochs=True)
    p.add_argument("--data", default=defaults.data, help="'mnist' (shipped) or a folder of images (searched recursively)")
    p.add_argument("--size", type=int, nargs="+", default=None, metavar="S",
                   help="image side (one number, or H W with H = W); default: 28 for MNIST, the folder's own")
    p.add_argument("--channels", type=int, default=None, help="1 or 3 (default: from the data)")
    p.add_argument("--fit", choices=("crop", "stretch"), default=defaults.fit, help="how folder images reach --size")
    p.add_argument("--flip", action="store_true", help="random horizontal flips")
    p.add_argument("--block-out-channels", type=int, nargs="+", default=list(defaults.block_out_channels))
    p.add_argument("--attention", type=int, nargs="+", default=None,
                   help="levels (0 = full resolution) with self-attention (default: the lowest)")
    p.add_argument("--layers-per-block", type=int, default=defaults.layers_per_block)
    p.add_argument("--norm-groups", dest="norm_num_groups", type=int, default=defaults.norm_num_groups)
    p.add_argument("--dropout", type=float, default=defaults.dropout)
    p.add_argument("--beta-schedule", default=defaults.beta_schedule, help="linear, scaled_linear or squaredcos_cap_v2")
    p.add_argument("--loss", choices=LOSSES, default=defaults.loss, help="denoising loss")
    p.add_argument("--warmup-steps", type=int, default=defaults.warmup_steps)
    p.add_argument("--ema-decay", type=float, default=defaults.ema_decay)
    p.add_argument("--sample-steps", type=int, default=defaults.sample_steps, help="DDIM steps of the samples/ grids")
    args = parse_args(p, argv)
    levels = len(args.block_out_channels)
    attention_levels = args.attention if args.attention is not None else [levels - 1]
    size = None if args.size is None else (args.size[0] if len(args.size) == 1 else tuple(args.size))
    cfg = config_from_args(TrainConfig, args, size=size, block_out_channels=tuple(args.block_out_channels),
                           attention=tuple(level in attention_levels for level in range(levels)))
    result = run(cfg)
    if result.eval_only:  # --steps 0: the evaluation was printed, nothing saved
        return 0
    print(summary(result, f"genzoo sample {result.out_dir}"))
    return 0


# --- the embedded model ------------------------------------------------------------------------------------------
_embedded = None


def eval(argv) -> int:  # noqa: A001 (the command's name)
    parser = argparse.ArgumentParser(prog="genzoo eval", description="Denoising loss of a diffusion model at fixed "
                                     "timesteps with seeded noise (its training loss), and optionally the MNIST "
                                     "classifier score of samples.")
    parser.add_argument("model", help="catalog name, diffusers folder, genzoo folder or Hub repo id")
    parser.add_argument("data", nargs="?", default="mnist",
                        help="'mnist' (default: held-out digits), a folder of images or one image")
    parser.add_argument("--n", type=int, default=200, help="images to noise (a seeded subset; default 200)")
    parser.add_argument("--timesteps", type=int, nargs="+", default=None,
                        help="timesteps to measure (default: 10 spread evenly over the training range)")
    parser.add_argument("--samples", type=int, default=0,
                        help="digit models: also classify this many samples (20 DDIM steps; default 0)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args(argv)
    from ..evaluation import classifier_score, load_image_data, print_result
    from . import from_pretrained, load_scheduler
    from .evaluate import denoising_loss
    from .sampling import sample as draw

    unet = from_pretrained(args.model, device=args.device)
    scheduler = load_scheduler(args.model, kind="ddpm")
    size = unet.config.sample_size
    images, _, source = load_image_data(args.data, unet.config.in_channels, size, args.n, args.seed)
    result = {"model": args.model, "family": "diffusion", "data": source, "seed": args.seed,
              **denoising_loss(unet, scheduler, images, args.timesteps, args.seed)}
    if args.samples > 0:
        ddim = load_scheduler(args.model, kind="ddim")
        samples = draw(unet, ddim, n=args.samples, steps=DEMO_STEPS, seed=args.seed, progress=True).float().cpu()
        result.update({"samples": args.samples, **{f"samples_{k}": v for k, v in classifier_score(samples).items()
                                                    if k != "n"}})
    return print_result(result, args.json)


def _embedded_model():
    global _embedded
    if _embedded is None:
        from . import from_pretrained, load_scheduler

        _embedded = (from_pretrained(EMBEDDED, device="cpu"), load_scheduler(EMBEDDED, kind="ddim"))
    return _embedded


def demo_samples(n: int, seed: int = 0) -> torch.Tensor:
    """n digits from the embedded MNIST DDPM (20 DDIM steps, eta 0): (n, 1, 28, 28) floats in [-1, 1], CPU."""
    from .sampling import sample as draw

    unet, scheduler = _embedded_model()
    return draw(unet, scheduler, n=n, steps=DEMO_STEPS, seed=seed, batch_size=256, progress=n > 64)


def demo(out_dir, n: int = 64, steps: int = DEMO_STEPS) -> list[Path]:
    """The embedded MNIST DDPM: an n-digit grid and a denoising strip (noise -> digits, 8 columns)."""
    from ..images import save_image
    from .sampling import denoising_strip, sample as draw

    out_dir = Path(out_dir)
    unet, scheduler = _embedded_model()
    images, trajectory = draw(unet, scheduler, n=n, steps=steps, seed=0, return_trajectory=True)
    grid = save_image(images, out_dir / "mnist-ddpm-samples.png", nrow=8, overwrite=True)
    strip = save_image(denoising_strip(trajectory, max_images=4), out_dir / "mnist-ddpm-denoising.png",
                       nrow=len(trajectory), overwrite=True)
    return [grid, strip]
