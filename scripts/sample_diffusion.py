"""Sample a DDPM U-Net with DDIM and with DDPM, and save the denoising strip (book ch. 15's figure).

    python scripts/sample_diffusion.py                                  # the embedded MNIST model, offline
    python scripts/sample_diffusion.py --model ddpm-cifar10-32 --n 16   # google's CIFAR-10 DDPM (downloads 143 MB)
    python scripts/sample_diffusion.py --model ddpm-ema-church-256 --n 4 --ddim-steps 50 --ddpm-steps 0

Writes <out>/ddim.png, <out>/ddpm.png and <out>/strip.png (x_t from pure noise on the left to x_0 on the right).
Any U-Net works with either scheduler: both read the checkpoint's noise schedule (scheduler_config.json).
"""
import argparse
import time
from pathlib import Path

from genzoo import diffusion
from genzoo.images import save_image


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", default="mnist-ddpm")
    p.add_argument("--n", type=int, default=16)
    p.add_argument("--ddim-steps", type=int, default=50)
    p.add_argument("--ddpm-steps", type=int, default=1000, help="0 skips DDPM (1000 steps at 256x256 is slow)")
    p.add_argument("--eta", type=float, default=0.0)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="auto")
    p.add_argument("--out", default="out/diffusion")
    args = p.parse_args()
    out = Path(args.out)

    unet = diffusion.from_pretrained(args.model, device=args.device)
    print(f"{args.model}: {unet.num_parameters() / 1e6:.1f}M parameters on {unet.device}")

    ddim = diffusion.load_scheduler(args.model, kind="ddim", eta=args.eta)
    start = time.perf_counter()
    images, trajectory = diffusion.sample(unet, ddim, n=args.n, steps=args.ddim_steps, seed=args.seed,
                                          return_trajectory=True)
    print(f"DDIM-{args.ddim_steps}: {time.perf_counter() - start:.1f} s -> {save_image(images, out / 'ddim.png')}")
    print(f"denoising strip at t = {[t for t, _ in trajectory]} -> "
          f"{save_image(diffusion.denoising_strip(trajectory), out / 'strip.png', nrow=len(trajectory))}")

    if args.ddpm_steps:
        ddpm = diffusion.load_scheduler(args.model, kind="ddpm")
        start = time.perf_counter()
        images = diffusion.sample(unet, ddpm, n=args.n, steps=args.ddpm_steps, seed=args.seed)
        print(f"DDPM-{args.ddpm_steps}: {time.perf_counter() - start:.1f} s -> {save_image(images, out / 'ddpm.png')}")


if __name__ == "__main__":
    main()
