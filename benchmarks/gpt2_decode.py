"""GPT-2 124M greedy decoding on CPU: genzoo fp32 / bf16 / int8 vs transformers fp32 / bf16, against the memory floor.

    python benchmarks/gpt2_decode.py                      # 2 threads, 32-token prompt, 128 new tokens, 3 rounds
    python benchmarks/gpt2_decode.py --modes static compile --rounds 5
    python benchmarks/gpt2_decode.py --quality            # bf16 / int8 agreement with fp32 on held-out text
    python benchmarks/gpt2_decode.py --device cuda --size gpt2-xl --threads 8   # GPU: eager vs cuda_graph (not run yet)

One process, same random weights for everyone (transformers' init, saved with save_pretrained, read by genzoo).
Every round runs every variant once, in turn, so a busy neighbour on a shared machine slows them all alike; the
figures are medians over rounds, and the ratio to transformers fp32 is taken within each round.
Reported per variant: tokens/s (prefill of the short prompt included) by wall time and by process CPU time (per
thread: on a shared machine, with --threads 1, the figure least disturbed by neighbours), ratios to transformers
fp32, bytes of weights read per token, and the fraction of the floor = streaming bandwidth / those bytes. The
bandwidth is probed in the same run (a sum over a 512 MiB fp32 array, same threads) before every round and after
the last, and its median is used.
"""
import argparse
import statistics
import tempfile
import time
import warnings

import torch

from genzoo.gpt2.quantize import Fp16Linear


def timed(fn):
    """(wall seconds, process CPU seconds) of fn(): with one thread the CPU time leaves out the time this process
    spent descheduled by its neighbours on a shared machine (with n threads it is ~n times the wall time)."""
    sync = torch.cuda.synchronize if torch.cuda.is_initialized() else (lambda: None)
    sync()
    wall, cpu = time.perf_counter(), time.process_time()
    fn()
    sync()
    return time.perf_counter() - wall, time.process_time() - cpu


def stream_bandwidth(buffer) -> tuple[float, float]:
    """GB/s (by wall time, by CPU time per thread) of one torch.sum over `buffer` (larger than every cache, pages
    touched): what a weight-streaming GEMV could reach."""
    buffer.sum()
    wall, cpu = timed(buffer.sum)
    size = buffer.numel() * buffer.element_size() / 1e9
    return size / wall, size / max(cpu / torch.get_num_threads(), 1e-9)


def weight_bytes_per_token(model) -> int:
    """Bytes a one-token step of a genzoo model reads: every matrix of the blocks and the vocabulary projection,
    not the embedding tables (of which it reads one row each). transformers reads the same matrices."""
    tensors = [t for name, t in list(model.named_parameters()) + list(model.named_buffers())
               if name not in ("wte.weight", "wpe.weight")]
    tensors += [m.packed for m in model.modules() if isinstance(getattr(m, "packed", None), torch.Tensor)]
    total = sum(t.numel() * t.element_size() for t in tensors)
    total += sum(m.in_features * m.out_features * 2 + m.out_features * 4 for m in model.modules()
                 if isinstance(m, Fp16Linear) and m.packed is not None)  # fbgemm's packed fp16 weights + bias
    if model.head is None:  # the logits read wte itself (or its fp32 copy, the same bytes)
        total += model.wte.weight.numel() * model.wte.weight.element_size()
    return total


def quality(model_name: str):
    """Teacher-forced next-token top-1 agreement with fp32 and perplexity on held-out text: the validation split of
    Tiny Shakespeare (never trained on), 400 windows of 64 tokens (25,600 predictions)."""
    import copy

    from genzoo import gpt2
    from genzoo.datasets import shakespeare
    from genzoo.gpt2 import kernels

    fp32 = gpt2.from_pretrained(model_name, device="cpu")
    windows = 400
    tokens = fp32.tokenizer.encode(shakespeare("val"))[:windows * 65]
    if len(tokens) < windows * 65:
        windows = len(tokens) // 65
        tokens = tokens[:windows * 65]
    ids = torch.tensor(tokens).view(windows, 65)
    others = {"bf16 (weights; quantize='bf16')": copy.deepcopy(fp32).quantize("bf16"),
              "bf16 (all; dtype=bfloat16)": copy.deepcopy(fp32).to(torch.bfloat16),
              f"fp16 (weights; quantize='fp16', kernel {kernels.fp16_kernel('cpu')})": copy.deepcopy(fp32).quantize("fp16"),
              f"int8 (quantize='int8', kernel {kernels.int8_kernel('cpu')})": copy.deepcopy(fp32).quantize("int8")}
    with torch.inference_mode():
        ref_logits, ref_loss = fp32(ids[:, :-1], targets=ids[:, 1:])
        print(f"{model_name}, {ids[:, 1:].numel()} held-out predictions; fp32 perplexity {ref_loss.exp():.4f}")
        print("| path | top-1 agreement with fp32 | perplexity | change |")
        print("|---|---|---|---|")
        for name, model in others.items():
            logits, loss = model(ids[:, :-1], targets=ids[:, 1:])
            agreement = (logits.argmax(-1) == ref_logits.argmax(-1)).float().mean().item()
            print(f"| {name} | {agreement:.4f} | {loss.exp():.4f} | {(loss.exp() / ref_loss.exp() - 1) * 100:+.2f}% |")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--prompt", type=int, default=32)
    parser.add_argument("--new", type=int, default=128)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--modes", nargs="*", default=[], choices=["static", "compile"],
                        help="also genzoo fp32, fp16 weights and int8 through the fixed-shape step (eager, or torch.compile)")
    parser.add_argument("--quality", nargs="?", const="shakespeare-char", default=None, metavar="MODEL",
                        help="only the quality figures, of MODEL (default: the embedded shakespeare-char)")
    parser.add_argument("--device", default="cpu", help="cpu, or cuda: fp32/bf16, eager and cuda_graph decode")
    parser.add_argument("--size", default="gpt2", choices=["gpt2", "gpt2-medium", "gpt2-large", "gpt2-xl"],
                        help="the shape of the random model (the GPU target is gpt2-xl in bf16)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    warnings.filterwarnings("ignore")
    if args.quality:
        return quality(args.quality)

    from transformers import GPT2Config, GPT2LMHeadModel

    from genzoo import gpt2
    from genzoo.gpt2 import kernels

    device = torch.device(args.device)
    torch.manual_seed(0)
    hf = GPT2LMHeadModel(GPT2Config(bos_token_id=None, eos_token_id=None, **gpt2.SIZES[args.size])).eval()
    with tempfile.TemporaryDirectory() as d:
        hf.save_pretrained(d)
        load = lambda **kw: gpt2.from_pretrained(d, device=device, **kw)  # noqa: E731
        ours = {"genzoo fp32": load(), "genzoo bf16 (all)": load(dtype="bfloat16")}
        if device.type == "cpu":
            ours["genzoo bf16 (weights)"] = load(quantize="bf16")
            ours["genzoo fp16 (weights)"] = load(quantize="fp16")
            ours["genzoo int8"] = load(quantize="int8")
            for mode in args.modes:
                ours[f"genzoo fp32 {mode}"] = load().set_decode_mode(mode)
                ours[f"genzoo fp16 (weights) {mode}"] = load(quantize="fp16").set_decode_mode(mode)
                ours[f"genzoo int8 {mode}"] = load(quantize="int8").set_decode_mode(mode)
        else:  # the fixed-shape step captured as a CUDA graph, in both dtypes
            ours["genzoo fp32 cuda_graph"] = load().set_decode_mode("cuda_graph")
            ours["genzoo bf16 (all) cuda_graph"] = load(dtype="bfloat16").set_decode_mode("cuda_graph")
    hf_bf16 = GPT2LMHeadModel(hf.config).eval()
    hf_bf16.load_state_dict(hf.state_dict())
    hf, hf_bf16 = hf.to(device), hf_bf16.to(device, torch.bfloat16)
    prompt = torch.randint(0, 50257, (1, args.prompt), generator=torch.Generator().manual_seed(1)).to(device)
    mask = torch.ones_like(prompt)

    def genzoo_run(model):
        return lambda: model.generate(prompt, max_new_tokens=args.new, temperature=0, eos_token_id=None,
                                      progress=False)

    def hf_run(model):
        def run():
            with torch.inference_mode():
                return model.generate(prompt, attention_mask=mask, max_new_tokens=args.new,
                                      min_new_tokens=args.new, do_sample=False, pad_token_id=0)
        return run

    variants = {name: genzoo_run(m) for name, m in ours.items()}
    variants["transformers fp32"] = hf_run(hf)
    variants["transformers bf16"] = hf_run(hf_bf16)
    sizes = {name: weight_bytes_per_token(m) for name, m in ours.items()}
    sizes["transformers fp32"], sizes["transformers bf16"] = sizes["genzoo fp32"], sizes["genzoo bf16 (all)"]

    reference = variants["transformers fp32"]()[0, args.prompt:]  # also the warm-up
    agree = {}
    for name, fn in variants.items():  # warm-up (and compilation) + how many greedy tokens match fp32's
        out = fn()[0, args.prompt:]
        agree[name] = int((out == reference).cumprod(0).sum())

    buffer = torch.ones(128 * 2**20 * (8 if device.type == "cuda" else 1), device=device)  # 512 MiB (CPU), 4 GiB
    bandwidth, cpu_bandwidth = [], []
    rates, cpu_rates, ratios, cpu_ratios = ({n: [] for n in variants} for _ in range(4))

    def probe():
        wall, cpu = stream_bandwidth(buffer)
        bandwidth.append(wall)
        cpu_bandwidth.append(cpu)

    for r in range(args.rounds):
        probe()
        for name, fn in variants.items():
            wall, cpu = timed(fn)
            rates[name].append(args.new / wall)
            cpu_rates[name].append(args.new / (cpu / args.threads))
        for name in variants:
            ratios[name].append(rates[name][-1] / rates["transformers fp32"][-1])
            cpu_ratios[name].append(cpu_rates[name][-1] / cpu_rates["transformers fp32"][-1])
        print(f"round {r}: {bandwidth[-1]:.1f} GB/s; " +
              ", ".join(f"{n} {rates[n][-1]:.1f}" for n in variants), flush=True)
    probe()

    med = statistics.median
    info = kernels.describe("cpu")
    if device.type == "cuda":
        print(f"\ndevice: {torch.cuda.get_device_name(device)} (CPU time figures do not apply)")
    print(f"\ntorch {info['torch']}, capability {info['cpu_capability']}, flags {' '.join(info['cpu_flags'])}, "
          f"native bf16: {info['native_bf16']}, int8 kernel: {info['int8_kernel']}")
    layouts = {(m.in_features, m.out_features): kernels.stored_layout(m.weight)
               for m in ours["genzoo fp32"].h.modules() if isinstance(m, torch.nn.Linear)}
    print("genzoo fp32 block weights as decoded (in -> out: storage; loaded as (in, out) views of the Hugging Face "
          "checkpoint): " + ", ".join(f"{i} -> {o}: {layout}" for (i, o), layout in layouts.items()))
    print(f"{args.threads} threads, prompt {args.prompt}, {args.new} new tokens (prefill included), "
          f"{args.rounds} rounds; streaming bandwidth {med(bandwidth):.1f} GB/s by wall time, "
          f"{med(cpu_bandwidth):.1f} GB/s by CPU time per thread (medians of {len(bandwidth)} probes: "
          f"{', '.join(f'{b:.1f}' for b in bandwidth)} / {', '.join(f'{b:.1f}' for b in cpu_bandwidth)})")
    print("\n| variant | tok/s wall | x tf fp32 wall | tok/s by CPU time | x tf fp32 CPU | MB/token | floor tok/s "
          "(CPU-time bandwidth) | fraction of floor (CPU time) | greedy tokens equal to tf fp32 |")
    print("|---|---|---|---|---|---|---|---|---|")
    for name in variants:
        floor = med(cpu_bandwidth) * 1e9 / sizes[name]
        print(f"| {name} | {med(rates[name]):.1f} | {med(ratios[name]):.2f} | {med(cpu_rates[name]):.1f} | "
              f"{med(cpu_ratios[name]):.2f} | {sizes[name] / 1e6:.0f} | {floor:.0f} | "
              f"{med(cpu_rates[name]) / floor:.2f} | {agree[name]}/{args.new} |")


if __name__ == "__main__":
    main()
