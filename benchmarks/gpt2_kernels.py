"""Per-token matmul and one-token attention kernels of GPT-2 124M decoding on the CPU, one process, A/B alternated.

    python benchmarks/gpt2_kernels.py                    # 1 thread, 7 rounds, every matmul kernel + attention
    python benchmarks/gpt2_kernels.py --compiled         # also the torch.compile'd reduction GEMV (compiles ~10 s)

Matmuls: the 48 block matrices and the 50257x768 vocabulary projection, one row each (one decoding token), random
weights; per-token milliseconds of process CPU time (median over rounds; every kernel runs once per round, in turn).
Attention: one query over 33 / 96 cached positions (12 heads of 64), the KV cache laid out as genzoo's
(layers, batch, heads, slots, head_dim), the query a view of the fused qkv output as in the model; each call after
touching a 16 MB buffer, as in decoding, where the weights streamed in between have evicted the caches.
"""
import argparse
import math
import statistics
import time
import warnings

import torch
import torch.nn.functional as F

SHAPES = [(768, 2304), (768, 768), (768, 3072), (3072, 768)] * 12 + [(768, 50257)]  # (in, out)


def per_token_ms(fn, repeat=2):
    start = time.process_time()
    for _ in range(repeat):
        fn()
    return (time.process_time() - start) / repeat * 1e3


def matmul_kernels(compiled: bool):
    weights = [torch.randn(n_out, n_in) * 0.02 for n_in, n_out in SHAPES]  # (out, in), contiguous
    inputs = {768: torch.randn(1, 768), 3072: torch.randn(1, 3072)}
    x = lambda w: inputs[w.shape[1]]  # noqa: E731
    inout = [w.t().contiguous().t() for w in weights]  # (out, in) views of (in, out) storage: HF Conv1D's layout
    fp16 = [torch.ops.quantized.linear_prepack_fp16(w, None) for w in weights]
    bf16 = [torch.ops.mkldnn._reorder_linear_weight(w.bfloat16(), 1) for w in weights]
    int8 = []
    for w in weights:
        scale = w.abs().amax(1) / 127
        q = torch.quantize_per_channel(w, scale.double(), torch.zeros(len(scale), dtype=torch.long), 0, torch.qint8)
        int8.append(torch.ops.quantized.linear_prepack(q, None))
    kernels = {
        "fp32 F.linear, (out, in) storage": lambda: [F.linear(x(w), w) for w in weights],
        "fp32 F.linear, (in, out) storage": lambda: [F.linear(x(w), w) for w in inout],
        "bf16 oneDNN packed (bf16 activations)": lambda: [
            torch.ops.mkldnn._linear_pointwise(x(w).bfloat16(), p, None, "none", [], "") for w, p in zip(weights, bf16)],
        "fp16 fbgemm (fp32 activations)": lambda: [
            torch.ops.quantized.linear_dynamic_fp16(x(w), p) for w, p in zip(weights, fp16)],
        "int8 fbgemm dynamic (8-bit activations)": lambda: [
            torch.ops.quantized.linear_dynamic(x(w), p, False) for w, p in zip(weights, int8)],
    }
    if compiled:  # the GEMV as a reduction, which inductor turns into one vectorised loop over the weight
        gemv = torch.compile(lambda x, w: (x.unsqueeze(-2) * w).sum(-1), dynamic=False, fullgraph=True)
        kernels["fp32 compiled reduction, (out, in) storage"] = lambda: [gemv(x(w), w) for w in weights]
    return kernels, sum(w.numel() for w in weights)


def attention_kernels():
    from genzoo.nn.attention import math_attention, sdpa

    cache_k, cache_v = torch.randn(12, 1, 12, 128, 64), torch.randn(12, 1, 12, 128, 64)
    qkv = torch.randn(1, 1, 3 * 768)
    flush = torch.zeros(4 * 2**20)
    kernels = {}
    for length in (33, 96):
        for name, fn in (("sdpa", sdpa), ("math", math_attention)):
            def run(fn=fn, length=length):
                total = 0.0
                for _ in range(50):
                    flush.add_(1)
                    q = qkv.split(768, 2)[0].view(1, 1, 12, 64).transpose(1, 2)
                    k, v = cache_k[3, :, :, :length], cache_v[3, :, :, :length]
                    start = time.process_time()
                    fn(q, k, v, None, False, 0.0)
                    total += time.process_time() - start
                return total / 50 * 1e6
            kernels[f"attention {name}, {length} positions (us per call)"] = run
    return kernels


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--compiled", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    warnings.filterwarnings("ignore")
    matmuls, params = matmul_kernels(args.compiled)
    attention = attention_kernels()
    for fn in matmuls.values():  # warm-up (and compilation)
        fn()
    times = {name: [] for name in [*matmuls, *attention]}
    for _ in range(args.rounds):
        for name, fn in matmuls.items():
            times[name].append(per_token_ms(fn))
        for name, fn in attention.items():
            times[name].append(fn())
    print(f"{args.threads} threads, {args.rounds} rounds, process CPU time, medians; {params / 1e6:.1f}M weights")
    print("| kernel | per token (ms) / per call (us) | weight bytes read, GB/s |")
    print("|---|---|---|")
    for name, values in times.items():
        med = statistics.median(values)
        size = 4 if name.startswith("fp32") else 2 if name.startswith(("bf16", "fp16")) else 1
        rate = f"{params * size / med / 1e6:.1f}" if name in matmuls else ""
        print(f"| {name} | {med:.2f} | {rate} |")


if __name__ == "__main__":
    main()
