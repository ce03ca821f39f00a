"""SD-VAE decode: genzoo vs diffusers on the same weights, in one process; peak memory of tiled vs untiled decode.

    python benchmarks/vae_decode.py                      # speed at 256^2 and 512^2, then memory at 1024^2
    python benchmarks/vae_decode.py --sizes 256 --repeats 5 --skip-memory
    python benchmarks/vae_decode.py --memory-only --size 1024
    python benchmarks/vae_decode.py --precision --sizes 256 --repeats 2 --threads 1   # fp32 vs bf16, channels_last
    python benchmarks/vae_decode.py --embedded --repeats 3 --threads 1   # trained mnist-vae: bf16 vs fp32 quality

The architecture is the real one (stabilityai/sd-vae-ft-mse config: block_out_channels 128,256,512,512,
layers_per_block 2, 4 latent channels, sample_size 256; 83.65M parameters) with random weights: diffusers'
AutoencoderKL is built with a fixed seed and its state dict is converted into genzoo's model, so both decode with
identical weights (the outputs are compared too). Runs alternate genzoo/diffusers so that load changes on a
shared machine hit both alike; the per-pair ratio is reported as well as the medians.

--embedded: the trained mnist-vae reconstructs genzoo's 2,000 held-out MNIST digits and decodes 1,000 prior samples
(seed 0) in fp32 and bf16, each contiguous and channels_last: process CPU time (alternating, median), reconstruction
MSE, pixel difference from fp32, and how often the MNIST classifier's label agrees with fp32's.

Memory: each measurement runs in a fresh subprocess (resource.getrusage(RUSAGE_SELF).ru_maxrss), which reports
the peak resident set after building the model (baseline) and after the decode.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time

import torch

SD_VAE = dict(in_channels=3, out_channels=3, down_block_types=("DownEncoderBlock2D",) * 4,
              up_block_types=("UpDecoderBlock2D",) * 4, block_out_channels=(128, 256, 512, 512), layers_per_block=2,
              latent_channels=4, norm_num_groups=32, sample_size=256, act_fn="silu")


def build_pair():
    from diffusers import AutoencoderKL as DiffusersAutoencoderKL

    from genzoo.vae.convert import convert_diffusers_autoencoder_kl
    from genzoo.vae.loading import build_model

    torch.manual_seed(0)
    reference = DiffusersAutoencoderKL(**SD_VAE).eval()
    config, state_dict = convert_diffusers_autoencoder_kl(reference.state_dict(), dict(reference.config))
    ours = build_model(config).eval()
    ours.load_state_dict(state_dict)
    return ours, reference


def build_genzoo_only():
    from genzoo.vae import AutoencoderKL, AutoencoderKLConfig

    torch.manual_seed(0)
    return AutoencoderKL(AutoencoderKLConfig(block_out_channels=(128, 256, 512, 512), sample_size=256)).eval()


def speed(sizes, repeats):
    ours, reference = build_pair()
    params = sum(p.numel() for p in ours.parameters())
    print(f"parameters: genzoo {params:,}, diffusers {sum(p.numel() for p in reference.parameters()):,}")
    results = {}
    with torch.inference_mode():  # warm-up on a small latent (first-call allocations, kernel selection)
        ours.decode(torch.zeros(1, 4, 8, 8)), reference.decode(torch.zeros(1, 4, 8, 8))
    for size in sizes:
        z = torch.randn(1, 4, size // 8, size // 8, generator=torch.Generator().manual_seed(1))
        times, outputs = {"genzoo": [], "diffusers": []}, {}
        with torch.inference_mode():
            for r in range(repeats):
                order = ("genzoo", "diffusers") if r % 2 == 0 else ("diffusers", "genzoo")
                for name in order:
                    start = time.perf_counter()
                    out = ours.decode(z) if name == "genzoo" else reference.decode(z).sample
                    times[name].append(time.perf_counter() - start)
                    outputs.setdefault(name, out)
        max_diff = (outputs["genzoo"] - outputs["diffusers"]).abs().max().item()
        ratios = [g / d for g, d in zip(times["genzoo"], times["diffusers"])]
        results[size] = dict(genzoo_s=[round(t, 3) for t in times["genzoo"]],
                             diffusers_s=[round(t, 3) for t in times["diffusers"]],
                             genzoo_median_s=round(statistics.median(times["genzoo"]), 3),
                             diffusers_median_s=round(statistics.median(times["diffusers"]), 3),
                             ratio_median=round(statistics.median(ratios), 3), max_abs_diff=max_diff)
        print(f"{size}x{size}: {json.dumps(results[size])}", flush=True)
    return results


def precision_probe(size: int, repeats: int) -> None:
    """One decode of a size^2 image: genzoo fp32 / bf16, each contiguous and channels_last, vs diffusers fp32.
    Process CPU time per decode (steadier on a shared machine with --threads 1), ratio to diffusers fp32 within
    each repeat, and each output's distance from diffusers fp32 (outputs in [-1, 1])."""
    import copy

    ours, reference = build_pair()
    cl = torch.channels_last
    variants = {"genzoo fp32": (ours, torch.float32, False), "genzoo fp32 channels_last": (ours, torch.float32, True),
                "genzoo bf16": (ours, torch.bfloat16, False), "genzoo bf16 channels_last": (ours, torch.bfloat16, True)}
    z = torch.randn(1, 4, size // 8, size // 8, generator=torch.Generator().manual_seed(1))
    calls = {"diffusers fp32": lambda: reference.decode(z).sample}
    for name, (model, dtype, channels_last) in variants.items():
        m = copy.deepcopy(model).to(dtype=dtype, memory_format=cl if channels_last else torch.contiguous_format)
        zz = z.to(dtype).contiguous(memory_format=cl if channels_last else torch.contiguous_format)
        calls[name] = lambda m=m, zz=zz: m.decode(zz).float()
    with torch.inference_mode():
        outputs = {name: fn() for name, fn in calls.items()}  # also the warm-up
        seconds = {name: [] for name in calls}
        for _ in range(repeats):
            for name, fn in calls.items():
                start = time.process_time()
                fn()
                seconds[name].append(time.process_time() - start)
    print(f"| decode {size}x{size} | CPU s (median of {repeats}) | x diffusers fp32 | max abs diff vs diffusers fp32 |")
    print("|---|---|---|---|")
    for name in calls:
        ratio = statistics.median(a / b for a, b in zip(seconds[name], seconds["diffusers fp32"]))
        diff = (outputs[name] - outputs["diffusers fp32"]).abs().max().item()
        print(f"| {name} | {statistics.median(seconds[name]):.2f} | {ratio:.2f} | {diff:.2e} |")


def embedded_probe(repeats: int) -> None:
    """mnist-vae in fp32 / bf16 x contiguous / channels_last: CPU time and quality of reconstructions and samples."""
    from genzoo import datasets, vae
    from genzoo.evaluation import load_classifier

    images, labels = datasets.mnist("heldout")
    classifier = load_classifier()
    cl = torch.channels_last
    variants = {}
    for name, dtype, memory_format in (("fp32", torch.float32, torch.contiguous_format), ("fp32 channels_last",
                                       torch.float32, cl), ("bf16", torch.bfloat16, torch.contiguous_format),
                                       ("bf16 channels_last", torch.bfloat16, cl)):
        model = vae.from_pretrained("mnist-vae", device="cpu", dtype=dtype).to(memory_format=memory_format)
        x = images.to(dtype).contiguous(memory_format=memory_format)
        variants[name] = (lambda m=model, x=x: m.reconstruct(x).float(), lambda m=model: m.sample(1000, seed=0).float())
    seconds = {name: {"reconstruct": [], "sample": []} for name in variants}
    outputs = {}
    with torch.inference_mode():
        for r in range(repeats + 1):   # round 0 is the warm-up
            for name in (list(variants) if r % 2 else list(variants)[::-1]):
                for task, fn in zip(("reconstruct", "sample"), variants[name]):
                    start = time.process_time()
                    outputs[name, task] = fn()
                    if r:
                        seconds[name][task].append(time.process_time() - start)
        predicted = {key: classifier(out.clamp(-1, 1)).argmax(1) for key, out in outputs.items()}
    print(f"mnist-vae: 2,000 held-out digits reconstructed, 1,000 samples (seed 0); CPU s median of {repeats}")
    print("| variant | reconstruct s | sample s | recon MSE | label acc. | max / mean abs diff vs fp32 (recon) "
          "| labels agree with fp32 (recon / samples) | max / mean abs diff vs fp32 (samples) |")
    print("|---|---|---|---|---|---|---|---|")
    for name in variants:
        recon, drawn = outputs[name, "reconstruct"], outputs[name, "sample"]
        d_recon, d_drawn = (recon - outputs["fp32", "reconstruct"]).abs(), (drawn - outputs["fp32", "sample"]).abs()
        agree = [(predicted[name, t] == predicted["fp32", t]).float().mean().item() for t in ("reconstruct", "sample")]
        print(f"| {name} | {statistics.median(seconds[name]['reconstruct']):.3f} | "
              f"{statistics.median(seconds[name]['sample']):.3f} | {(recon - images).pow(2).mean().item():.5f} | "
              f"{(predicted[name, 'reconstruct'] == labels).float().mean().item():.4f} | "
              f"{d_recon.max().item():.3f} / {d_recon.mean().item():.4f} | {agree[0]:.4f} / {agree[1]:.4f} | "
              f"{d_drawn.max().item():.3f} / {d_drawn.mean().item():.4f} |")


def _maxrss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports KiB


def memory_child(mode: str, size: int, tile: int) -> None:
    """Runs in a subprocess: build, note the peak RSS, decode once, note it again; print JSON."""
    torch.set_num_threads(int(os.environ.get("BENCH_THREADS", "2")))
    if mode.startswith("diffusers"):
        _, model = build_pair()
        if mode == "diffusers-tiled":
            model.enable_tiling()
    else:
        model = build_genzoo_only()
    z = torch.randn(1, 4, size // 8, size // 8, generator=torch.Generator().manual_seed(1))
    baseline = _maxrss_mb()
    start = time.perf_counter()
    with torch.inference_mode():
        if mode == "genzoo-tiled":
            out = model.decode(z, tiled=True, tile_size=tile)
        elif mode == "genzoo":
            out = model.decode(z)
        else:
            out = model.decode(z).sample
    seconds = time.perf_counter() - start
    print(json.dumps(dict(mode=mode, size=size, tile=tile if "tiled" in mode else None, out=list(out.shape),
                          baseline_maxrss_mb=round(baseline), peak_maxrss_mb=round(_maxrss_mb()),
                          decode_extra_mb=round(_maxrss_mb() - baseline), seconds=round(seconds, 1))))


def memory(size: int, tile: int, modes) -> list:
    results = []
    for mode in modes:
        cmd = [sys.executable, __file__, "--memory-child", mode, "--size", str(size), "--tile", str(tile)]
        done = subprocess.run(cmd, capture_output=True, text=True)
        if done.returncode != 0:
            print(f"{mode}: failed\n{done.stderr[-2000:]}")
            continue
        line = done.stdout.strip().splitlines()[-1]
        print(line, flush=True)
        results.append(json.loads(line))
    return results


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[256, 512])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--size", type=int, default=1024, help="memory benchmark image size")
    parser.add_argument("--tile", type=int, default=256, help="tile size in pixels (the config's sample_size)")
    parser.add_argument("--memory-modes", nargs="+", default=["genzoo", "genzoo-tiled"],
                        choices=["genzoo", "genzoo-tiled", "diffusers", "diffusers-tiled"])
    parser.add_argument("--skip-memory", action="store_true")
    parser.add_argument("--memory-only", action="store_true")
    parser.add_argument("--precision", action="store_true",
                        help="instead: fp32 vs bf16 (and channels_last) decode at --sizes[0], CPU time and outputs")
    parser.add_argument("--embedded", action="store_true",
                        help="instead: the trained mnist-vae in fp32 vs bf16 (and channels_last): time and quality")
    parser.add_argument("--memory-child", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    os.environ["BENCH_THREADS"] = str(args.threads)
    torch.set_num_threads(args.threads)
    if args.memory_child:
        memory_child(args.memory_child, args.size, args.tile)
        return
    import diffusers

    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__} "
          f"({args.threads} threads), diffusers {diffusers.__version__}, CUDA: "
          f"{'yes' if torch.cuda.is_available() else 'no GPU (CPU only)'}", flush=True)
    if args.embedded:
        return embedded_probe(args.repeats)
    if args.precision:
        return precision_probe(args.sizes[0], args.repeats)
    if not args.memory_only:
        speed(args.sizes, args.repeats)
    if not args.skip_memory:
        memory(args.size, args.tile, args.memory_modes)


if __name__ == "__main__":
    main()
