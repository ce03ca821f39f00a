"""GAN sampling speed: genzoo's DCGAN vs the pytorch/examples dcgan/main.py Generator on the same weights.

    python benchmarks/gan_sampling.py [--device cpu|cuda] [--threads 1] [--iters 5]

There is no reference *library* for DCGAN (unlike transformers/diffusers), so the reference is the published
nn.Sequential itself, built here as pytorch/examples writes it, its state dict loaded into genzoo through the
converter. Both should run the same kernels: this checks genzoo adds no overhead (input checks, conditioning,
latent handling) and reports images/s. Results: benchmarks/results/gan.md.
"""
import argparse
import time

import torch
import torch.nn as nn

from genzoo import gan
from genzoo.gan import convert
from genzoo.runtime import resolve_device


def examples_generator(nz, ngf, nc):
    # pytorch/examples dcgan/main.py, Generator.main (64 x 64 output)
    return nn.Sequential(
        nn.ConvTranspose2d(nz, ngf * 8, 4, 1, 0, bias=False), nn.BatchNorm2d(ngf * 8), nn.ReLU(True),
        nn.ConvTranspose2d(ngf * 8, ngf * 4, 4, 2, 1, bias=False), nn.BatchNorm2d(ngf * 4), nn.ReLU(True),
        nn.ConvTranspose2d(ngf * 4, ngf * 2, 4, 2, 1, bias=False), nn.BatchNorm2d(ngf * 2), nn.ReLU(True),
        nn.ConvTranspose2d(ngf * 2, ngf, 4, 2, 1, bias=False), nn.BatchNorm2d(ngf), nn.ReLU(True),
        nn.ConvTranspose2d(ngf, nc, 4, 2, 1, bias=False), nn.Tanh())


@torch.inference_mode()
def images_per_second(fn, z, iters, device):
    fn(z)
    if device.type == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    for _ in range(iters):
        fn(z)
    if device.type == "cuda":
        torch.cuda.synchronize()
    return iters * len(z) / (time.perf_counter() - start)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--iters", type=int, default=5)
    parser.add_argument("--batch", type=int, default=64)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    device = resolve_device(args.device)
    torch.manual_seed(0)
    print("| model | batch | reference images/s | genzoo images/s | max abs diff |")
    print("|---|---|---|---|---|")
    for nz, ngf, nc in ((100, 64, 3), (100, 32, 1)):
        reference = examples_generator(nz, ngf, nc).eval()
        wrapped = nn.Module()
        wrapped.main = reference  # the key layout torch.save(netG.state_dict()) writes: main.<i>.*
        sd, _, config = convert.convert_pytorch_examples_dcgan(wrapped.state_dict())
        ours = gan.build(gan.models.config_from_dict(config)).eval()
        ours.load_state_dict(sd)
        reference.to(device), ours.to(device)
        z = torch.randn(args.batch, nz, 1, 1, device=device)
        with torch.inference_mode():
            diff = (reference(z) - ours(z)).abs().max().item()
        ref_speed = images_per_second(reference, z, args.iters, device)
        our_speed = images_per_second(ours, z, args.iters, device)
        print(f"| DCGAN 64px nz={nz} ngf={ngf} nc={nc} | {args.batch} | {ref_speed:.1f} | {our_speed:.1f} | {diff:.1e} |")
    embedded = gan.from_pretrained("mnist-dcgan", device=device)
    z = embedded.latent(args.batch, seed=0)
    labels = torch.arange(args.batch, device=device) % 10
    speed = images_per_second(lambda z: embedded(z, labels), z, args.iters, device)
    print(f"| embedded mnist-dcgan (28px, conditional) | {args.batch} | - | {speed:.1f} | - |")


if __name__ == "__main__":
    main()
