"""DDIM sampling speed: genzoo vs diffusers, same U-Net weights, same scheduler, one process, interleaved runs.

    python benchmarks/diffusion_ddim.py                       # DDIM-50, batch 8, ddpm-cifar10-32 architecture, CPU fp32
    python benchmarks/diffusion_ddim.py --rounds 5 --threads 2
    python benchmarks/diffusion_ddim.py --device cuda --dtype float16
    python benchmarks/diffusion_ddim.py --precision --threads 1   # one U-Net call, fp32 vs bf16, vs diffusers
    python benchmarks/diffusion_ddim.py --embedded --threads 1 --batch 256 --rounds 2   # mnist-ddpm: bf16 vs fp32

The U-Net is google/ddpm-cifar10-32's architecture (35.7M parameters) with random weights (no download): diffusers
builds it from the published config.json, its state dict is saved with the old attention key names as that repo
ships it, and genzoo loads the folder through diffusion.from_pretrained. Each round runs diffusers' DDIMPipeline
loop (UNet2DModel + DDIMScheduler under torch.no_grad) and genzoo's diffusion.sample with the same seed, in
alternating order, so that load from other processes hits both alike. Prints per-round wall and CPU times, the
median ratios, and how far the two outputs are apart (per U-Net call, and after the whole chain).

--embedded: the trained mnist-ddpm sampled as `genzoo sample` does (--scheduler, --steps 50, seed 0), the whole chain
in fp32 and in bf16 from the same noise (and fp32 without channels_last, a control for float rounding alone),
alternating, process CPU time; each against the fp32 images (max and mean pixel difference, images in [-1, 1]) and
the fraction whose MNIST-classifier label agrees.
"""
from __future__ import annotations

import argparse
import copy
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

CIFAR10_32 = dict(
    sample_size=32, in_channels=3, out_channels=3, block_out_channels=(128, 256, 256, 256), layers_per_block=2,
    down_block_types=("DownBlock2D", "AttnDownBlock2D", "DownBlock2D", "DownBlock2D"),
    up_block_types=("UpBlock2D", "AttnUpBlock2D", "UpBlock2D", "UpBlock2D"), attention_head_dim=None,
    norm_num_groups=32, norm_eps=1e-6, downsample_padding=0, flip_sin_to_cos=False, freq_shift=1,
    center_input_sample=False, time_embedding_type="positional", act_fn="silu", mid_block_scale_factor=1)


def embedded_probe(batch: int, steps: int, rounds: int, scheduler: str) -> None:
    """mnist-ddpm, the whole sampling chain from the same seed in fp32 and bf16 (channels_last, the default) and in
    fp32 contiguous (a control: how far float rounding alone moves a chain): CPU time, how the images differ."""
    from genzoo import diffusion
    from genzoo.evaluation import classifier_score, load_classifier

    models = {name: diffusion.from_pretrained("mnist-ddpm", device="cpu", dtype=dtype, channels_last=channels_last)
              for name, dtype, channels_last in (("fp32", torch.float32, True), ("bf16", torch.bfloat16, True),
                                                 ("fp32 contiguous", torch.float32, False))}

    def run(name):
        return diffusion.sample(models[name], diffusion.load_scheduler("mnist-ddpm", kind=scheduler), n=batch,
                                steps=steps, seed=0, progress=False)

    seconds, images = {name: [] for name in models}, {}
    for r in range(rounds):
        for name in (list(models) if r % 2 == 0 else list(models)[::-1]):
            start = time.process_time()
            images[name] = run(name)
            seconds[name].append(time.process_time() - start)
    classifier = load_classifier()
    labels = {name: classifier(x.clamp(-1, 1)).argmax(1) for name, x in images.items()}
    print(f"mnist-ddpm, {scheduler} {steps} steps, {batch} images, seed 0, CPU s per chain, median of {rounds}")
    print("| variant | CPU s | x fp32 | max / mean abs diff vs fp32 | images with a pixel off by > 0.5 | classifier "
          "labels agree with fp32 | mean confidence | classes present |")
    print("|---|---|---|---|---|---|---|---|")
    for name in models:
        diff = (images[name] - images["fp32"]).abs()
        score = classifier_score(images[name], classifier=classifier)
        ratio = statistics.median(a / b for a, b in zip(seconds[name], seconds["fp32"]))
        print(f"| {name} | {statistics.median(seconds[name]):.1f} | {ratio:.2f} | {diff.max().item():.3f} / "
              f"{diff.mean().item():.4f} | {(diff.flatten(1).amax(1) > 0.5).float().mean().item():.3f} | "
              f"{(labels[name] == labels['fp32']).float().mean().item():.4f} | {score['mean_confidence']:.4f} | "
              f"{score['classes_present']} |")


def precision_probe(ours_fp32, ours_bf16, reference, batch: int, rounds: int) -> None:
    """One U-Net call (batch, t=500) in fp32 and bf16, genzoo (channels_last, and contiguous) vs diffusers: CPU time
    per call (process CPU time: steadier than wall time on a shared machine with --threads 1), ratio to diffusers
    fp32 within each round, and each output's distance from diffusers fp32."""
    reference_bf16 = copy.deepcopy(reference).to(torch.bfloat16)
    fp32_contiguous, bf16_contiguous = (copy.deepcopy(m).to(memory_format=torch.contiguous_format)
                                        for m in (ours_fp32, ours_bf16))
    x, t = torch.randn(batch, 3, 32, 32, generator=torch.Generator().manual_seed(1)), torch.full((batch,), 500)
    calls = {"diffusers fp32": lambda: reference(x, t).sample,
             "diffusers bf16": lambda: reference_bf16(x.bfloat16(), t).sample.float(),
             "genzoo fp32": lambda: ours_fp32(x, t),
             "genzoo fp32 contiguous": lambda: fp32_contiguous(x, t),
             "genzoo bf16": lambda: ours_bf16(x.bfloat16(), t).float(),
             "genzoo bf16 contiguous": lambda: bf16_contiguous(x.bfloat16(), t).float()}
    with torch.inference_mode():
        outputs = {name: fn() for name, fn in calls.items()}  # also the warm-up
        seconds = {name: [] for name in calls}
        for _ in range(rounds):
            for name, fn in calls.items():
                start = time.process_time()
                fn()
                seconds[name].append(time.process_time() - start)
    print(f"| U-Net call, batch {batch} | CPU s (median of {rounds}) | x diffusers fp32 | max abs diff vs diffusers fp32 |")
    print("|---|---|---|---|")
    for name in calls:
        ratio = statistics.median(a / b for a, b in zip(seconds[name], seconds["diffusers fp32"]))
        diff = (outputs[name] - outputs["diffusers fp32"]).abs().max().item()
        print(f"| {name} | {statistics.median(seconds[name]):.3f} | {ratio:.2f} | {diff:.2e} |")


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--steps", type=int, default=50)
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    p.add_argument("--device", default="cpu")
    p.add_argument("--dtype", default="float32")
    p.add_argument("--no-channels-last", action="store_true", help="genzoo without channels_last (an ablation)")
    p.add_argument("--embedded", action="store_true",
                   help="instead: the trained mnist-ddpm sampled in fp32 and bf16 (time, image difference, labels)")
    p.add_argument("--scheduler", default="ddim", help="--embedded: the sampler (as genzoo sample --scheduler)")
    p.add_argument("--precision", action="store_true",
                   help="instead: one U-Net call in fp32 and bf16 (genzoo and diffusers), CPU time and outputs")
    args = p.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.embedded:
        return embedded_probe(args.batch, args.steps, args.rounds, args.scheduler)
    import diffusers

    from genzoo import diffusion
    from genzoo.runtime import resolve_dtype

    device, dtype = torch.device(args.device), resolve_dtype(args.dtype)
    torch.manual_seed(0)
    reference = diffusers.UNet2DModel(**CIFAR10_32).eval()
    with tempfile.TemporaryDirectory() as tmp:
        reference.save_config(tmp)
        old_names = {k.replace(".to_q.", ".query.").replace(".to_k.", ".key.").replace(".to_v.", ".value.")
                     .replace(".to_out.0.", ".proj_attn."): v for k, v in reference.state_dict().items()}
        torch.save(old_names, Path(tmp) / "diffusion_pytorch_model.bin")
        ours = diffusion.from_pretrained(tmp, device=device, dtype=dtype,
                                         channels_last=not args.no_channels_last)
        if args.precision:
            ours_bf16 = diffusion.from_pretrained(tmp, device="cpu", dtype=torch.bfloat16,
                                                  channels_last=not args.no_channels_last)
            return precision_probe(ours, ours_bf16, reference, args.batch, args.rounds)
    if device.type != "cpu" or dtype not in (None, torch.float32):
        reference = reference.to(device=device, dtype=dtype)
    params = sum(p.numel() for p in ours.parameters())

    pipe = diffusers.DDIMPipeline(reference, diffusers.DDIMScheduler())
    pipe.set_progress_bar_config(disable=True)

    def run_diffusers():
        return pipe(batch_size=args.batch, generator=diffusion.sample_generators(args.batch, seed=0), eta=0.0,
                    num_inference_steps=args.steps, output_type="np").images

    def run_genzoo():
        images = diffusion.sample(ours, diffusion.DDIMScheduler(), n=args.batch, steps=args.steps, seed=0,
                                  progress=False)
        return (images / 2 + 0.5).permute(0, 2, 3, 1).float().cpu().numpy()

    def timed(fn):
        """-> (wall seconds, CPU seconds of this process, output). With --threads 1 on a shared machine the CPU
        time is the steadier measure: it does not count the time other processes hold the cores."""
        if device.type == "cuda":
            torch.cuda.synchronize()
        start, cpu_start = time.perf_counter(), time.process_time()
        out = fn()
        if device.type == "cuda":
            torch.cuda.synchronize()
        return time.perf_counter() - start, time.process_time() - cpu_start, out

    print(f"torch {torch.__version__}, diffusers {diffusers.__version__}, threads {torch.get_num_threads()}, "
          f"device {device}, dtype {dtype}, U-Net {params / 1e6:.1f}M params, DDIM-{args.steps}, batch {args.batch}")
    times = {"diffusers": [], "genzoo": []}
    cpu = {"diffusers": [], "genzoo": []}
    outputs = {}
    for r in range(args.rounds):
        order = [("diffusers", run_diffusers), ("genzoo", run_genzoo)]
        if r % 2:
            order.reverse()
        for name, fn in order:
            seconds, cpu_seconds, outputs[name] = timed(fn)
            times[name].append(seconds)
            cpu[name].append(cpu_seconds)
        print(f"round {r + 1}: wall diffusers {times['diffusers'][-1]:.2f} s, genzoo {times['genzoo'][-1]:.2f} s "
              f"(ratio {times['genzoo'][-1] / times['diffusers'][-1]:.3f}); CPU diffusers {cpu['diffusers'][-1]:.2f} s, "
              f"genzoo {cpu['genzoo'][-1]:.2f} s (ratio {cpu['genzoo'][-1] / cpu['diffusers'][-1]:.3f})", flush=True)
    diff = abs(outputs["genzoo"] - outputs["diffusers"]).max()
    for label, table in (("wall", times), ("CPU", cpu)):
        ratios = [g / d for g, d in zip(table["genzoo"], table["diffusers"])]
        print(f"median {label}: diffusers {statistics.median(table['diffusers']):.2f} s, genzoo "
              f"{statistics.median(table['genzoo']):.2f} s, genzoo/diffusers {statistics.median(ratios):.3f} "
              f"(per round: {', '.join(f'{x:.3f}' for x in ratios)})")
    x = torch.randn(args.batch, 3, 32, 32, generator=torch.Generator().manual_seed(1)).to(device, dtype)
    with torch.inference_mode():
        call_diff = (ours(x, 500).float() - reference(x, 500).sample.float()).abs().max().item()
    print(f"one U-Net call, same input: max |eps diff| {call_diff:.2e}; after the whole chain: max |pixel diff| "
          f"{diff:.2e} (images in [0, 1]; a random-weight U-Net's DDIM chain amplifies rounding ~1.5x per step)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
