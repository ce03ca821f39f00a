"""Every GPU measurement in one command; writes benchmarks/results/gpu.md with the device named.

    python benchmarks/gpu.py                                  # on a CUDA machine: the full run (not yet timed)
    python benchmarks/gpu.py --device cpu --quick --out /tmp/gpu-quick.md     # the same code path, tiny shapes
    python benchmarks/gpu.py --sections XL --out benchmarks/results/gpu-xl.md  # one part (124M, XL, ddim, vae)

What it measures (random weights, saved once and loaded by both libraries, so both run the same numbers):
  1. the memory floor: a device-to-device copy bandwidth probe (bytes read + written per second);
  2. GPT-2 124M and XL-shaped, bf16 and fp16, batch 1, greedy: genzoo generate() (and each fast decode mode the
     model offers through set_decode_mode, if any) vs transformers eager and transformers' static cache (which
     transformers compiles itself on CUDA); tok/s, the ratio, and the fraction of the floor reached
     (floor = bytes of weights + KV cache read per token / copy bandwidth); load time and peak memory;
  3. DDIM-50 on the cifar10-32 U-Net shape, batch 8 (fp32 with TF32 off, and fp16) vs a diffusers loop;
  4. SD-VAE decode of a 512x512 image (fp32; fp16, which both libraries upcast to fp32 as force_upcast says;
     bf16) vs diffusers.
Timing: CUDA is synchronised before and after every timed call; every measurement alternates genzoo and the
reference in the same process, several rounds after a warm-up, and reports medians and the median ratio.
"""
from __future__ import annotations

import argparse
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
GiB = 1 << 30


# -- timing ------------------------------------------------------------------------------------------------------
def sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def timed(fn, device):
    sync(device)
    start = time.perf_counter()
    out = fn()
    sync(device)
    return time.perf_counter() - start, out


def alternate(runs: dict, device, rounds: int) -> dict:
    """{name: fn}: one warm-up each, then `rounds` rounds in turn; {name: median seconds}."""
    for fn in runs.values():
        fn()
    times = {name: [] for name in runs}
    for _ in range(rounds):
        for name, fn in runs.items():
            times[name].append(timed(fn, device)[0])
    return {name: statistics.median(t) for name, t in times.items()}


def peak_memory(device) -> str:
    if device.type != "cuda":
        return "n/a (CPU)"
    return f"{torch.cuda.max_memory_allocated(device) / GiB:.2f} GiB"


def reset_peak(device):
    if device.type == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(device)


# -- 1. the memory floor -------------------------------------------------------------------------------------------
def copy_bandwidth(device, size_bytes: int, rounds: int = 10) -> float:
    """Bytes moved per second by dst.copy_(src) (read + write), the best of `rounds`."""
    src = torch.empty(size_bytes // 2, dtype=torch.float16, device=device).fill_(1.0)
    dst = torch.empty_like(src)
    dst.copy_(src)
    best = min(timed(lambda: dst.copy_(src), device)[0] for _ in range(rounds))
    return 2 * size_bytes / best


# -- 2. GPT-2 decode -------------------------------------------------------------------------------------------------
GPT2_SHAPES = {
    "124M": dict(n_layer=12, n_head=12, n_embd=768),
    "XL-shaped (1.56B)": dict(n_layer=48, n_head=25, n_embd=1600),
    "tiny (--quick)": dict(n_layer=2, n_head=4, n_embd=128),
}


def write_gpt2(directory: Path, shape: dict, dtype, device, n_positions: int):
    """A random transformers GPT-2 (built on the device: XL initialises in seconds there), saved in `dtype`."""
    from transformers import GPT2Config, GPT2LMHeadModel

    torch.manual_seed(0)
    config = GPT2Config(**shape, n_positions=n_positions, bos_token_id=None, eos_token_id=None)
    with torch.device(device):
        model = GPT2LMHeadModel(config)
    model.to(dtype).save_pretrained(directory)
    del model
    reset_peak(device)


def gpt2_rows(name, shape, dtype, device, args, bandwidth) -> list[str]:
    from transformers import GPT2LMHeadModel

    from genzoo import gpt2

    rows = []
    with tempfile.TemporaryDirectory() as d:
        write_gpt2(Path(d), shape, dtype, device, n_positions=max(1024, args.prompt + args.new))
        reset_peak(device)
        load_s, ours = timed(lambda: gpt2.from_pretrained(d, device=device, dtype=dtype), device)
        load_peak = peak_memory(device)
        hf_load_s, hf = timed(lambda: GPT2LMHeadModel.from_pretrained(d, torch_dtype=dtype).to(device).eval(), device)
    weight_bytes = sum(p.numel() * p.element_size() for p in ours.parameters())
    cfg = ours.config
    prompt = torch.randint(0, cfg.vocab_size, (1, args.prompt), generator=torch.Generator().manual_seed(1))
    new = args.new
    # per token: every weight once, plus the KV cache read so far (its mean length over the run)
    kv_bytes = 2 * cfg.n_layer * (args.prompt + new / 2) * cfg.n_embd * torch.finfo(dtype).bits // 8
    floor_s = (weight_bytes + kv_bytes) / bandwidth

    def genzoo_run():
        return ours.generate(prompt, max_new_tokens=new, temperature=0, eos_token_id=None, progress=False)

    hf_prompt, hf_mask = prompt.to(device), torch.ones_like(prompt, device=device)

    def hf_run(**options):
        with torch.inference_mode():
            return hf.generate(hf_prompt, attention_mask=hf_mask, max_new_tokens=new, min_new_tokens=new,
                               do_sample=False, pad_token_id=0, **options)

    runs = {"genzoo generate (default)": genzoo_run,
            "transformers eager": hf_run,
            "transformers static cache" + (" + compile" if device.type == "cuda" else " (no compile off CUDA)"):
                lambda: hf_run(cache_implementation="static")}
    modes = [m for m in ("static", "compile", "cuda_graph") if hasattr(ours, "set_decode_mode")
             and (m != "cuda_graph" or device.type == "cuda") and (m != "compile" or not args.quick)]
    for mode in modes:
        def run(mode=mode):
            ours.set_decode_mode(mode)
            try:
                return genzoo_run()
            finally:
                ours.set_decode_mode("eager")
        runs[f"genzoo decode mode {mode!r}"] = run
    same = torch.equal(genzoo_run().cpu()[:, :args.prompt + 8], hf_run().cpu()[:, :args.prompt + 8])
    reset_peak(device)
    medians = alternate(runs, device, args.rounds)
    eager = medians["transformers eager"]
    static = next(v for k, v in medians.items() if k.startswith("transformers static"))
    for label, seconds in medians.items():
        per_token = seconds / new   # prefill included: the prompt is short next to the new tokens
        rows.append(f"| {name} | {str(dtype).removeprefix('torch.')} | {label} | {new / seconds:.1f} | "
                    f"{eager / seconds:.2f}x | {static / seconds:.2f}x | {100 * floor_s / per_token:.0f}% |")
    notes = (f"{name} {str(dtype).removeprefix('torch.')}: weights {weight_bytes / GiB:.2f} GiB; floor "
             f"{1e3 * floor_s:.3f} ms/token; genzoo load {load_s:.2f} s (peak {load_peak}), transformers load "
             f"{hf_load_s:.2f} s; decode peak (both libraries) {peak_memory(device)}; first 8 greedy tokens equal "
             f"to transformers: {same}")
    del ours, hf
    reset_peak(device)
    return rows, notes


# -- 3. DDIM-50 ----------------------------------------------------------------------------------------------------------
UNET_CIFAR10 = dict(sample_size=32, in_channels=3, out_channels=3, block_out_channels=(128, 256, 256, 256),
                    layers_per_block=2, down_block_types=("DownBlock2D", "AttnDownBlock2D", "DownBlock2D", "DownBlock2D"),
                    up_block_types=("UpBlock2D", "UpBlock2D", "AttnUpBlock2D", "UpBlock2D"), attention_head_dim=None,
                    norm_num_groups=32, norm_eps=1e-6, downsample_padding=0, flip_sin_to_cos=False, freq_shift=1)
UNET_TINY = dict(UNET_CIFAR10, sample_size=16, block_out_channels=(8, 16, 16, 16), norm_num_groups=4)


def ddim_row(dtype, device, args) -> str:
    from diffusers import DDIMScheduler as HFDDIM
    from diffusers import UNet2DModel

    from genzoo import diffusion

    torch.manual_seed(0)
    config = UNET_TINY if args.quick else UNET_CIFAR10
    steps, n = (5, 2) if args.quick else (50, 8)
    with tempfile.TemporaryDirectory() as d:
        UNet2DModel(**config).save_pretrained(d)
        HFDDIM(num_train_timesteps=1000).save_pretrained(d)
        ours = diffusion.from_pretrained(d, device=device, dtype=dtype)
        scheduler = diffusion.load_scheduler(d, kind="ddim")
        hf = UNet2DModel.from_pretrained(d).to(device, dtype).eval()
        hf_scheduler = HFDDIM.from_pretrained(d)

    def genzoo_run():
        return diffusion.sample(ours, scheduler, n=n, steps=steps, seed=0, progress=False)

    def diffusers_run():   # DDIMPipeline's loop, without its PIL post-processing
        g = torch.Generator().manual_seed(0)
        x = torch.randn(n, 3, config["sample_size"], config["sample_size"], generator=g).to(device, dtype)
        hf_scheduler.set_timesteps(steps)
        with torch.inference_mode():
            for t in hf_scheduler.timesteps:
                x = hf_scheduler.step(hf(x, t).sample, t, x, generator=g).prev_sample
        return x

    medians = alternate({"genzoo": genzoo_run, "diffusers": diffusers_run}, device, args.rounds)
    return (f"| DDIM-{steps}, batch {n}, {'tiny' if args.quick else 'cifar10-32'} U-Net | "
            f"{str(dtype).removeprefix('torch.')} | {medians['genzoo']:.3f} s | {medians['diffusers']:.3f} s | "
            f"{medians['genzoo'] / medians['diffusers']:.2f}x |")


# -- 4. SD-VAE decode -----------------------------------------------------------------------------------------------------
SD_VAE = dict(block_out_channels=(128, 256, 512, 512), down_block_types=("DownEncoderBlock2D",) * 4,
              up_block_types=("UpDecoderBlock2D",) * 4, layers_per_block=2, norm_num_groups=32, sample_size=512)
VAE_TINY = dict(SD_VAE, block_out_channels=(8, 16, 32, 32), norm_num_groups=8, sample_size=64)


def vae_row(dtype, device, args) -> str:
    from diffusers import AutoencoderKL

    from genzoo import vae

    config = VAE_TINY if args.quick else SD_VAE
    size = config["sample_size"]
    torch.manual_seed(0)
    with tempfile.TemporaryDirectory() as d:
        AutoencoderKL(**config).save_pretrained(d)
        ours = vae.from_pretrained(d, device=device, dtype=dtype)
        hf = AutoencoderKL.from_pretrained(d).to(device, dtype).eval()
    z = torch.randn(1, 4, size // 8, size // 8, generator=torch.Generator().manual_seed(0))
    upcast = dtype == torch.float16 and hf.config.force_upcast

    def genzoo_run():
        with torch.inference_mode():
            return ours.decode(z)

    def diffusers_run():   # what StableDiffusionPipeline does: the whole VAE to fp32 and back when force_upcast
        with torch.inference_mode():
            if upcast:
                hf.to(torch.float32)
            image = hf.decode(z.to(device, torch.float32 if upcast else dtype)).sample
            if upcast:
                hf.to(dtype)
            return image

    reset_peak(device)
    medians = alternate({"genzoo": genzoo_run, "diffusers": diffusers_run}, device, args.rounds)
    return (f"| SD-VAE decode {size}x{size} | {str(dtype).removeprefix('torch.')}{' (upcast)' if upcast else ''} | "
            f"{medians['genzoo']:.3f} s | {medians['diffusers']:.3f} s | {medians['genzoo'] / medians['diffusers']:.2f}x |")


def guarded(fn, what, *args):
    """One failing measurement (an out-of-memory, a NumericalError) is reported in the table, not fatal to the run.
    Returns (rows, notes) for gpt2_rows, (row, None) for the image rows."""
    try:
        result = fn(*args)
        return result if isinstance(result, tuple) else (result, None)
    except Exception as e:  # noqa: BLE001 - recorded in the results file with its type and message
        message = f"{what}: FAILED with {type(e).__name__}: {str(e).splitlines()[0][:200] if str(e) else ''}"
        print(message, flush=True)
        return ([f"| {message} |"], message) if fn is gpt2_rows else (f"| {message} |", None)


# -- the report ------------------------------------------------------------------------------------------------------
def describe(device) -> list[str]:
    lines = [f"- torch {torch.__version__}, Python {platform.python_version()}"]
    if device.type == "cuda":
        props = torch.cuda.get_device_properties(device)
        lines.insert(0, f"- device: {torch.cuda.get_device_name(device)} ({props.total_memory / GiB:.0f} GiB, "
                        f"sm_{props.major}{props.minor}), CUDA {torch.version.cuda}")
    else:
        lines.insert(0, f"- device: CPU ({platform.processor() or platform.machine()}, "
                        f"{torch.get_num_threads()} threads)")
    try:
        flags = subprocess.run(["lscpu"], capture_output=True, text=True, timeout=10).stdout
        flags = next((line.split(":", 1)[1].strip() for line in flags.splitlines() if line.startswith("Flags")), "")
        wanted = [f for f in flags.split() if f.startswith(("avx", "amx", "fma", "f16c"))]
        lines.append(f"- host CPU flags (lscpu, vector subset): {' '.join(wanted) or 'unknown'}")
    except (OSError, subprocess.SubprocessError):
        lines.append("- host CPU flags: lscpu not available")
    return lines


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--quick", action="store_true", help="tiny shapes and few steps: checks the script end to end")
    parser.add_argument("--rounds", type=int, default=None, help="timed rounds per measurement (default 3; 2 quick)")
    parser.add_argument("--sections", default="124M,XL,ddim,vae",
                        help="comma-separated subset of 124M,XL,ddim,vae (to split a long run; the floor always runs)")
    parser.add_argument("--prompt", type=int, default=None, help="prompt tokens (default 32; 8 quick)")
    parser.add_argument("--new", type=int, default=None, help="new tokens (default 256; 16 quick)")
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "gpu.md"))
    parser.add_argument("--overwrite", action="store_true", help="replace --out if it exists")
    args = parser.parse_args(argv)
    args.rounds = args.rounds or (2 if args.quick else 3)
    sections = set(args.sections.split(","))
    unknown = sections - {"124M", "XL", "ddim", "vae"}
    if unknown:
        sys.exit(f"unknown --sections {sorted(unknown)}: choose from 124M, XL, ddim, vae")
    args.prompt = args.prompt or (8 if args.quick else 32)
    args.new = args.new or (16 if args.quick else 256)
    out = Path(args.out)
    if out.exists() and not args.overwrite:
        sys.exit(f"{out} exists: pass --overwrite to replace it, or --out another path")

    from genzoo.runtime import allow_tf32, resolve_device

    device = resolve_device(args.device)
    allow_tf32(False)   # fp32 rows are real float32; bf16/fp16 rows are unaffected
    bandwidth = copy_bandwidth(device, (64 << 20) if args.quick else GiB)
    print(f"copy bandwidth {bandwidth / 1e9:.0f} GB/s", flush=True)

    wanted = [name for key, name in (("124M", "124M"), ("XL", "XL-shaped (1.56B)")) if key in sections]
    shapes = ["tiny (--quick)"] if args.quick and wanted else wanted
    dtypes = [torch.bfloat16] if args.quick else [torch.bfloat16, torch.float16]
    gpt_rows, gpt_notes = [], []
    for name in shapes:
        for dtype in dtypes:
            rows, notes = guarded(gpt2_rows, f"GPT-2 {name} {dtype}", name, GPT2_SHAPES[name], dtype, device, args,
                                  bandwidth)
            gpt_rows += rows
            gpt_notes.append(notes)
            print("\n".join(rows), "\n", notes, flush=True)
    image_dtypes = [torch.float32, torch.float16] + ([] if args.quick else [torch.bfloat16])
    ddim = [guarded(ddim_row, f"DDIM {dtype}", dtype, device, args)[0] for dtype in image_dtypes[:2]
            if "ddim" in sections]
    print("\n".join(ddim), flush=True)
    vae_rows = [guarded(vae_row, f"SD-VAE {dtype}", dtype, device, args)[0] for dtype in image_dtypes
                if "vae" in sections]
    print("\n".join(vae_rows), flush=True)

    command = "python benchmarks/gpu.py " + " ".join(argv if argv is not None else sys.argv[1:])
    text = "\n".join([
        "# GPU benchmarks" + (" (--quick: tiny shapes, a check of the script, not a measurement)" if args.quick else ""),
        "", f"Command: `{command.strip()}`", "", *describe(device),
        f"- memory floor: device-to-device copy {bandwidth / 1e9:.0f} GB/s (read + write; best of 10)",
        "- TF32 off (genzoo.runtime.allow_tf32(False)); medians over "
        f"{args.rounds} alternating rounds after a warm-up", "",
        f"## GPT-2 decode: batch 1, greedy, {args.prompt}-token prompt + {args.new} new tokens (prefill included)", "",
        "| model | dtype | implementation | tok/s | vs transformers eager | vs transformers static | of the floor |",
        "|---|---|---|---|---|---|---|", *gpt_rows, "", *[f"- {n}" for n in gpt_notes], "",
        "Targets (issue 14): GPT-2 XL bf16 batch-1 decode >= 1.5x transformers and >= 40% of the floor.", "",
        "## Images", "",
        "| what | dtype | genzoo | diffusers | genzoo / diffusers time |", "|---|---|---|---|---|",
        *ddim, *vae_rows, "",
    ])
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text)
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
