"""Command-line entry points of the cyclegan family (the `genzoo` dispatcher calls these).

    genzoo translate horse2zebra in.jpg out.jpg [--size 256] [--direction BtoA] [--device cuda]
    genzoo translate horse2zebra photos/ zebras/          a folder, recursively, with a progress bar
    genzoo train cyclegan --data-a black_hair/ --data-b blond_hair/ --out runs/hair --steps 20000
    genzoo train cyclegan --data mnist-invert --out runs/mnist --steps 2000
    genzoo train cyclegan --mode pix2pix --data facades/train --load-size 286 --size 256 --out runs/facades
"""
from __future__ import annotations

import argparse
from pathlib import Path

import torch

from ..cli import check_dtype, dtype_help

EMBEDDED = "mnist-cyclegan"


def translate(argv) -> int:
    from . import from_pretrained
    from .translate import translate_files

    parser = argparse.ArgumentParser(
        prog="genzoo translate", description="Translate an image, or every image in a folder, with a CycleGAN "
        "generator. Images keep their size (padded by reflection to a multiple of 4 and cropped back) unless --size "
        "is given. Existing files are never overwritten without --overwrite, inputs never.")
    parser.add_argument("model", help="catalog name (horse2zebra, style_monet, ... see `genzoo list --family cyclegan`), "
                        "a junyanz .pth, a junyanz run folder or a genzoo folder")
    parser.add_argument("input", help="an image file or a folder of images")
    parser.add_argument("output", help="output file, or folder (for a folder input, or to keep the input's name)")
    parser.add_argument("--size", type=int, default=None,
                        help="resize so the shorter side has SIZE pixels first (the published models were trained at 256)")
    parser.add_argument("--direction", choices=("AtoB", "BtoA"), default="AtoB",
                        help="which generator of a two-generator checkpoint (genzoo training folder, junyanz run)")
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:1, mps")
    parser.add_argument("--dtype", default="checkpoint", help=dtype_help("checkpoint (auto is opt-in)"))
    parser.add_argument("--overwrite", action="store_true", help="replace output files that exist already")
    args = parser.parse_args(argv)
    model = from_pretrained(args.model, device=args.device, dtype=check_dtype(args.dtype, args.device),
                            direction=args.direction)
    outputs = translate_files(model, args.input, args.output, size=args.size, overwrite=args.overwrite)
    print(f"wrote {outputs[0]}" if len(outputs) == 1 else f"wrote {len(outputs)} images under {args.output}")
    return 0


def train(argv) -> int:
    from ..training import HelpFormatter, add_common_arguments, config_from_args, parse_args, summary
    from .train import MODES, TrainConfig, train as run_training

    defaults = TrainConfig()
    parser = argparse.ArgumentParser(prog="genzoo train cyclegan", formatter_class=HelpFormatter,
                                     description="Train a CycleGAN on two unpaired image folders, or (--mode pix2pix) "
                                                 "a pix2pix model on a folder of aligned A|B side-by-side images.")
    add_common_arguments(parser, defaults, epochs=True)
    data = parser.add_argument_group("data")
    data.add_argument("--mode", choices=MODES, default=defaults.mode)
    data.add_argument("--data-a", help="cyclegan: folder of domain A images (e.g. black hair)")
    data.add_argument("--data-b", help="cyclegan: folder of domain B images (e.g. blond hair)")
    data.add_argument("--data", help="pix2pix: folder of A|B side-by-side images; either mode: mnist-invert (toy task)")
    data.add_argument("--size", type=int, nargs="+", default=None, metavar="N",
                      help="training image size, S or H W (default: the images' own; 256 with --load-size)")
    data.add_argument("--load-size", type=int, default=None,
                      help="resize to this square first, then train on random --size crops (junyanz: 286 -> 256)")
    data.add_argument("--channels", type=int, default=None, choices=(1, 3), help="default: from the images")
    data.add_argument("--fit", choices=("crop", "stretch"), default=defaults.fit, help="how images reach --size")
    data.add_argument("--flip", action="store_true", help="random horizontal flips")
    net = parser.add_argument_group("networks (defaults by mode: cyclegan resnet/instance/lsgan/pool 50, "
                                    "pix2pix unet/batch/dropout/vanilla/no pool)")
    net.add_argument("--netG", choices=("resnet", "unet"), default=None)
    net.add_argument("--ngf", type=int, default=defaults.ngf)
    net.add_argument("--n-blocks", type=int, default=defaults.n_blocks, help="resnet blocks (6 for 128 px, 9 for 256 px)")
    net.add_argument("--num-downs", type=int, default=None, help="unet downsamplings (default: as the size allows, <= 8)")
    net.add_argument("--norm", choices=("instance", "batch"), default=None)
    net.add_argument("--dropout", action="store_true", default=None, help="dropout 0.5 in the generator")
    net.add_argument("--ndf", type=int, default=defaults.ndf)
    net.add_argument("--n-layers-d", type=int, default=defaults.n_layers_d, help="PatchGAN layers (3: 70x70 patches)")
    net.add_argument("--gan-mode", choices=("lsgan", "vanilla"), default=None)
    loss = parser.add_argument_group("losses")
    loss.add_argument("--decay-start", type=int, default=None, help="step where the linear LR decay starts (default: half)")
    for name in ("beta1", "lambda_cycle", "lambda_identity", "lambda_l1"):
        loss.add_argument("--" + name.replace("_", "-"), type=float, default=getattr(defaults, name))
    loss.add_argument("--pool-size", type=int, default=None, help="image pool (default: 50 cyclegan, 0 pix2pix)")
    args = parse_args(parser, argv)
    if args.mode == "cyclegan" and not args.resume and not (args.data == "mnist-invert" or (args.data_a and args.data_b)):
        parser.error("give --data-a and --data-b, or --data mnist-invert")
    size = None if not args.size else (args.size[0], args.size[0]) if len(args.size) == 1 else tuple(args.size[:2])
    result = run_training(config_from_args(TrainConfig, args, size=size))
    if result.eval_only:  # --steps 0: the evaluation was printed, nothing saved
        return 0
    print(summary(result, f"genzoo translate {result.out_dir} in.png out.png"))
    return 0


def eval(argv) -> int:  # noqa: A001 (the command's name)
    parser = argparse.ArgumentParser(prog="genzoo eval", description="Cycle error of a CycleGAN: mean |G_B(G_A(a)) - a| "
                                     "(and |G_A(G_B(b)) - b| with --data-b), on the [-1, 1] pixel scale.")
    parser.add_argument("model", help="a checkpoint holding both generators (genzoo training folder, junyanz run "
                                      "folder, mnist-cyclegan), or one direction with --reverse")
    parser.add_argument("data", nargs="?", default="mnist",
                        help="domain A images: a folder, one image, or 'mnist' (default; the embedded model's "
                             "domain B is then the same digits inverted, and translations are classifier-scored)")
    parser.add_argument("--data-b", default=None, help="domain B images (a folder or one image)")
    parser.add_argument("--reverse", default=None, help="the B -> A generator when MODEL holds only A -> B")
    parser.add_argument("--n", type=int, default=None, help="use a random subset of n images (seeded)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--size", type=int, default=None, help="resize images to this square size")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args(argv)
    from ..errors import GenzooError
    from ..evaluation import load_image_data, print_result
    from . import from_pretrained
    from .evaluate import evaluate

    G_A = from_pretrained(args.model, device=args.device, direction="AtoB")
    try:
        G_B = from_pretrained(args.reverse or args.model, device=args.device,
                              direction="AtoB" if args.reverse else "BtoA")
    except GenzooError as e:
        raise GenzooError(f"the cycle error needs both generators; {args.model} has no B -> A generator "
                          f"(pass it with --reverse, e.g. zebra2horse for horse2zebra): {e}") from None
    channels = G_A.config.input_nc
    images_a, labels_a, source = load_image_data(args.data, channels, args.size, args.n, args.seed)
    mnist = args.data == "mnist"
    images_b = None
    if args.data_b:
        images_b, _, source_b = load_image_data(args.data_b, G_B.config.input_nc, args.size, args.n, args.seed)
        source += f"; B: {source_b}"
    elif mnist:
        images_b = -images_a
    result = evaluate(G_A, G_B, images_a, images_b, labels_a, mnist_polarity=mnist)
    return print_result({"model": args.model, "family": "cyclegan", "data": source, **result}, args.json)


def _heldout_digits(n: int, seed: int) -> torch.Tensor:
    from ..datasets import mnist

    images, _ = mnist("heldout")
    g = torch.Generator().manual_seed(seed)
    return images[torch.randperm(len(images), generator=g)[:n]]


@torch.inference_mode()
def demo_samples(n: int, seed: int = 0) -> torch.Tensor:
    """n held-out MNIST digits translated by the embedded model, mapped back to normal MNIST polarity.

    Exactly: n digits drawn (seeded) from mnist("heldout") are domain A; G_A translates them to domain B (white
    background, dark strokes); the result is inverted (-x) so it reads as a normal MNIST digit again. So this
    returns -G_A(a), (n, 1, 28, 28) in [-1, 1]: if G_A learned the inversion, these are the input digits; the
    classifier score measures how well G_A keeps each digit's identity. Deterministic given seed (no sampling
    noise: G_A is deterministic in eval mode).
    """
    from . import from_pretrained
    from .data import invert

    G_A = from_pretrained(EMBEDDED, device="cpu")
    return invert(G_A(_heldout_digits(n, seed))).clamp(-1, 1)


@torch.inference_mode()
def demo(out_dir) -> list[Path]:
    """Grid of held-out digits a, G_A(a), G_B(G_A(a)) (rows), and the same for inverted digits b, G_B(b), G_A(G_B(b))."""
    from ..images import save_image
    from . import from_pretrained
    from .data import invert

    out_dir = Path(out_dir)
    G_A = from_pretrained(EMBEDDED, device="cpu", direction="AtoB")
    G_B = from_pretrained(EMBEDDED, device="cpu", direction="BtoA")
    a = _heldout_digits(16, seed=0)
    b = invert(_heldout_digits(16, seed=1))
    fake_b, fake_a = G_A(a), G_B(b)
    rows = torch.cat([a, fake_b, G_B(fake_b), b, fake_a, G_A(fake_a)])
    path = save_image(rows, out_dir / "mnist_cyclegan_translations.png", nrow=16, overwrite=True)
    return [path]
