"""Command-line entry points of the cyclegan family (the `genzoo` dispatcher calls these).

    genzoo translate horse2zebra in.jpg out.jpg [--size 256] [--direction BtoA] [--device cuda]
    genzoo translate horse2zebra photos/ zebras/          a folder, recursively, with a progress bar
    genzoo train cyclegan --data-a black_hair/ --data-b blond_hair/ --out runs/hair --steps 20000
    genzoo train cyclegan --task mnist-invert --out runs/mnist --steps 2000
"""
from __future__ import annotations

import argparse
from pathlib import Path

import torch

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
    parser.add_argument("--dtype", default=None, help="float32 (default), float16, bfloat16")
    parser.add_argument("--overwrite", action="store_true", help="replace output files that exist already")
    args = parser.parse_args(argv)
    model = from_pretrained(args.model, device=args.device, dtype=args.dtype, direction=args.direction)
    outputs = translate_files(model, args.input, args.output, size=args.size, overwrite=args.overwrite)
    print(f"wrote {outputs[0]}" if len(outputs) == 1 else f"wrote {len(outputs)} images under {args.output}")
    return 0


def train(argv) -> int:
    from .data import ImageFolder, mnist_inversion
    from .train import TrainConfig, train as run_training

    parser = argparse.ArgumentParser(prog="genzoo train cyclegan", description="Train a CycleGAN on two unpaired "
                                     "image folders (or the MNIST inversion toy task); checkpoints go to --out.")
    data = parser.add_argument_group("data")
    data.add_argument("--data-a", help="folder of domain A images (e.g. black hair)")
    data.add_argument("--data-b", help="folder of domain B images (e.g. blond hair)")
    data.add_argument("--task", choices=("mnist-invert",), help="a built-in toy task instead of folders")
    data.add_argument("--channels", type=int, default=3, choices=(1, 3))
    data.add_argument("--load-size", type=int, default=286, help="images are resized to this square first")
    data.add_argument("--crop-size", type=int, default=256, help="then randomly cropped to this")
    data.add_argument("--workers", type=int, default=2, help="data loader processes (folders only)")
    parser.add_argument("--out", required=True, help="run folder: checkpoints, samples/, log.jsonl")
    parser.add_argument("--resume", action="store_true", help="continue the run in --out")
    parser.add_argument("--device", default="auto")
    defaults = TrainConfig()
    for name in ("steps", "batch_size", "pool_size", "seed", "log_every", "sample_every", "save_every"):
        parser.add_argument("--" + name.replace("_", "-"), type=int, default=getattr(defaults, name))
    parser.add_argument("--decay-start", type=int, default=None, help="step where the linear LR decay starts (default: half)")
    for name in ("lr", "beta1", "lambda_cycle", "lambda_identity"):
        parser.add_argument("--" + name.replace("_", "-"), type=float, default=getattr(defaults, name))
    parser.add_argument("--gan-mode", choices=("lsgan", "vanilla"), default="lsgan")
    net = parser.add_argument_group("networks")
    net.add_argument("--netG", choices=("resnet", "unet"), default="resnet")
    net.add_argument("--ngf", type=int, default=64)
    net.add_argument("--n-blocks", type=int, default=9, help="resnet blocks (6 for 128 px, 9 for 256 px)")
    net.add_argument("--num-downs", type=int, default=8, help="unet downsamplings (7 for 128 px, 8 for 256 px)")
    net.add_argument("--norm", choices=("instance", "batch"), default="instance")
    net.add_argument("--dropout", action="store_true")
    net.add_argument("--ndf", type=int, default=64)
    net.add_argument("--n-layers-d", type=int, default=3, help="PatchGAN layers (3: 70x70 patches)")
    args = parser.parse_args(argv)

    if args.task == "mnist-invert":
        data_a, data_b, _, _ = mnist_inversion("train")
        channels, workers = 1, 0
    elif args.data_a and args.data_b:
        channels, workers = args.channels, args.workers
        data_a = ImageFolder(args.data_a, channels, args.load_size, args.crop_size)
        data_b = ImageFolder(args.data_b, channels, args.load_size, args.crop_size)
    else:
        parser.error("give --data-a and --data-b, or --task mnist-invert")
    generator = {"arch": args.netG, "input_nc": channels, "output_nc": channels, "ngf": args.ngf,
                 "n_blocks": args.n_blocks, "num_downs": args.num_downs, "norm": args.norm, "use_dropout": args.dropout}
    config = TrainConfig(
        steps=args.steps, decay_start=args.decay_start, batch_size=args.batch_size, lr=args.lr, beta1=args.beta1,
        gan_mode=args.gan_mode, lambda_cycle=args.lambda_cycle, lambda_identity=args.lambda_identity,
        pool_size=args.pool_size, seed=args.seed, log_every=args.log_every, sample_every=args.sample_every,
        save_every=args.save_every, generator=generator,
        discriminator={"ndf": args.ndf, "n_layers": args.n_layers_d, "norm": args.norm})
    run_training(args.out, data_a, data_b, config, device=args.device, resume=args.resume, num_workers=workers)
    print(f"saved to {args.out} (load with genzoo.cyclegan.from_pretrained({args.out!r}); samples in {args.out}/samples)")
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
