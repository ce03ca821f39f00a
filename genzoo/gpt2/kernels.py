"""Which kernels and weight layouts GPT-2 decoding uses on this machine: decided here, at run time, once.

Decoding one token reads every weight once, so on a CPU its speed is set by bytes per token and by how close the
matmul kernel gets to the memory's streaming speed. What torch offers differs between CPUs (and torch builds), so
the choice is made from what this process finds:

  precision    | block Linear layers                     | vocabulary projection (tied wte) | KV cache, attention
  -------------|-----------------------------------------|----------------------------------|--------------------
  fp32         | F.linear, each weight stored (out, in)  | CPU: x @ an (n_embd, vocab) copy | fp32
               | or (in, out), whichever this CPU        | made once per weight version     |
               | streams faster for its shape            |                                  |
               | (linear_layout; CPU only)               |                                  |
  bf16 weights | quantize("bf16"): packed once for       | a bf16 copy of wte, same kernel  | fp32 on the CPU (its
               | oneDNN on native-bf16 CPUs, else plain  |                                  | bf16 attention is ~7x
               | F.linear; residual stream stays fp32    |                                  | slower per call)
  fp16 weights | quantize("fp16"): packed once by fbgemm | an fp16 copy of wte, same kernel  | fp32
               | (fp16 weights, fp32 activations and     |                                  |
               | accumulation); else the fp16-rounded    |                                  |
               | weights widened to fp32 for F.linear    |                                  |
  bf16 (all)   | .to(bfloat16): F.linear in bf16         | F.linear in bf16                 | fp32 on the CPU
  int8         | quantize("int8"): int8 weights, a scale | an int8 copy of wte, same kernel | the model's dtype
               | per output row; CPU: fbgemm dynamic     | (the lookup still reads wte)     |
               | int8; else int8pack_mm with bf16        |                                  |
               | activations; else dequantise + F.linear |                                  |

Flags that decide (see `describe()` for what this machine got):
  * the CPU's default reduced precision (`default_quantize`, what `genzoo generate --dtype auto` uses): fp16
    weights where fbgemm's fp16 linear runs (x86 with AVX2): on an AVX-512/bf16/VNNI EPYC it decoded GPT-2 124M
    at 48 tok/s vs 33 for bf16 weights and 25 for fp32 (1 thread), with teacher-forced top-1 agreement 0.9997 with
    fp32 vs 0.992 for bf16 (benchmarks/results/gpt2.md): fp16 keeps 3 more significand bits, and GPT-2's weights
    are far inside its range. Else bf16 weights where bf16 is native; else fp32.
  * native bf16: /proc/cpuinfo has avx512_bf16 or amx_bf16 (x86) and torch's CPU capability is AVX512 or
    higher. Then bf16 is the default dtype to cast to on the CPU (`default_dtype`); without it bf16 matmuls are
    emulated and are no faster than fp32, so fp32 stays the default.
  * fp16 kernel (`fp16_kernel`): fbgemm's where torch.ops.quantized.linear_dynamic_fp16 runs a probe.
  * bf16 kernel (`bf16_kernel`): oneDNN's packed layout where bf16 is native and torch.ops.mkldnn runs a probe.
  * int8 kernel (`int8_kernel`): on a CPU whose torch has the x86/fbgemm quantized engine, dynamic int8
    (activations quantized per call, 8-bit with VNNI, 7-bit without: `int8_reduce_range`); else
    `torch.ops.aten._weight_int8pack_mm` where it runs on a tiny probe on this device, with bf16 activations
    (its fp32 path is 6-10x slower, benchmarks/results/gpt2.md); else dequantize per call.
  * attention of the one-token decode step on the CPU: torch's SDPA (genzoo.nn.attention's default), in every
    precision (the KV cache is fp32 there). Measured against the "math" backend (matmul, softmax, matmul) for one
    query over 33-128 cached positions, GPT-2 124M heads, 1 thread: SDPA 15-67 us per call, math 25-80 us; end to
    end, int8 67.4 vs 67.1 tok/s and fp16 48.8 vs 45.5 tok/s with math. No special case is needed.
  * fp32 weight layout per matrix shape (`linear_layout`): a one-row GEMV's speed depends on how the weight is
    stored, differently per shape and per BLAS/CPU. Measured here (MKL, AVX-512 EPYC, 1 thread, GB/s streamed,
    (out, in) vs (in, out)): 768->2304 11.2 vs 16.1, 768->3072 11.7 vs 18.3, 3072->768 17.2 vs 13.2, so no one
    layout is right for every matrix. So it is measured, once per shape and thread count in a process, on
    throw-away matrices large enough to stream from memory (~0.05 s per shape; matrices under 1 MB are left as
    they are: they sit in cache either way), and the faster layout is kept only when it wins by over 5%.
    GPT.arrange_for_decoding then stores each block weight that way (the same values and (out, in) shape: a
    transposed view where (in, out) wins). The two storages sum in a different order, so fp32 logits may differ
    between machines (or noisy probes) in the last bits (~1e-6 relative), as they do between BLAS thread counts.
  * decode mode "compile" (fast_decode.compile_options): on the CPU the weights are frozen into the compiled
    step, and inductor packs each block matrix once and generates its GEMV (17.5-20.5 GB/s here against 13-17 for
    the library kernels above): fp32 1.3x faster than eager, after ~20 s of compiling.
  * GPUs: bf16 where torch.cuda.is_bf16_supported(), no head copy (either layout streams at full speed), KV
    cache in the model's dtype.
"""
from __future__ import annotations

import functools
import os
import statistics
import time
import warnings

import torch
import torch.nn.functional as F

from ..runtime import auto_dtype, cpu_capability, cpu_flags, native_bf16_cpu  # noqa: F401 (re-exported)


def default_dtype(device) -> torch.dtype:
    """The fastest dtype to decode in on `device` that does not lose quality beyond bf16 rounding: what
    dtype="auto" means in every family (genzoo.runtime.auto_dtype)."""
    return auto_dtype(device)


def default_quantize(device) -> str | None:
    """The weight-only reduced precision `genzoo generate --dtype auto` decodes with on `device` (None: none).
    On the CPU, fp16 weights where fbgemm runs them: measured faster than bf16 weights (54 vs 36 tok/s, 1 thread)
    and closer to fp32 (teacher-forced top-1 agreement 0.9997 vs 0.992 on the embedded model); else bf16 weights
    where bf16 is native; else none (fp32). Elsewhere None: the model is cast to default_dtype instead."""
    if torch.device(device).type != "cpu":
        return None
    if fp16_kernel(device) == "fbgemm":
        return "fp16"
    return "bf16" if native_bf16_cpu() else None


def kv_cache_dtype(device, weight_dtype: torch.dtype) -> torch.dtype:
    """Keys/values are kept in fp32 on the CPU: its bf16/fp16 attention kernels are far slower than fp32 ones."""
    if torch.device(device).type == "cpu" and weight_dtype in (torch.bfloat16, torch.float16):
        return torch.float32
    return weight_dtype


def uses_head_copy(device, dtype: torch.dtype) -> bool:
    """Decode the vocabulary projection against an (n_embd, vocab) copy of wte: only fp32 on the CPU, where the
    GEMV over that layout runs ~1.7-3.6x faster than over (vocab, n_embd) (measured, benchmarks/results/gpt2.md)."""
    return torch.device(device).type == "cpu" and dtype == torch.float32


LAYOUTS = ("out_in", "in_out")  # nn.Linear's own storage; transformers' Conv1D storage (a transposed view here)
_SMALL_MATRIX_BYTES = 1 << 20      # below this a matrix stays in cache and its layout does not matter


def linear_layout(n_in: int, n_out: int, device, dtype: torch.dtype) -> str | None:
    """The storage ("out_in" or "in_out") of an (n_out, n_in) Linear weight whose one-row F.linear streams faster
    on `device`, or None: leave the weight as loaded. Only fp32 on the CPU is measured (GPUs stream either layout
    at full speed; the reduced-precision paths pack their weights themselves)."""
    if torch.device(device).type != "cpu" or dtype != torch.float32 or n_in * n_out * 4 < _SMALL_MATRIX_BYTES:
        return None
    return _measured_layout(n_in, n_out, torch.get_num_threads())


def _probe_bytes() -> int:
    """How much weight memory one probe pass streams: twice the last-level cache, at least 64 MB, at most 256 MB."""
    try:
        cache = os.sysconf("SC_LEVEL3_CACHE_SIZE")
    except (ValueError, OSError, AttributeError):
        cache = 0
    return min(max(2 * cache, 64 << 20), 256 << 20)


@functools.cache
def _measured_layout(n_in: int, n_out: int, threads: int) -> str | None:
    """Time a one-row F.linear over enough (n_out, n_in) matrices to stream from memory, in both storages,
    alternating, 3 rounds; the faster layout when its median beats the other's by over 5%, else None."""
    count = max(1, _probe_bytes() // (n_in * n_out * 4))
    buffers = [torch.full((n_in * n_out,), 0.01) for _ in range(count)]  # the same memory read both ways
    weights = {"out_in": [b.view(n_out, n_in) for b in buffers], "in_out": [b.view(n_in, n_out).t() for b in buffers]}
    row = torch.full((1, n_in), 0.01)
    times = {layout: [] for layout in LAYOUTS}
    with torch.inference_mode():
        for _ in range(4):  # the first round warms up and is dropped
            for layout in LAYOUTS:
                start = time.perf_counter()
                for w in weights[layout]:
                    F.linear(row, w)
                times[layout].append(time.perf_counter() - start)
    out_in, in_out = (statistics.median(times[layout][1:]) for layout in LAYOUTS)
    if in_out < 0.95 * out_in:
        return "in_out"
    if out_in < 0.95 * in_out:
        return "out_in"
    return None


def stored_layout(weight: torch.Tensor) -> str:
    """How an (out, in) weight is stored: "out_in" (row-major) or "in_out" (the transpose of a row-major one)."""
    return "in_out" if weight.dim() == 2 and weight.stride(0) == 1 and weight.size(1) > 1 else "out_in"


@functools.cache
def _int8pack_works(device_type: str) -> bool:
    op = getattr(torch.ops.aten, "_weight_int8pack_mm", None)
    if op is None:
        return False
    try:
        act = int8_activation_dtype(device_type)
        x = torch.ones(1, 32, dtype=act, device=device_type)
        w = torch.ones(8, 32, dtype=torch.int8, device=device_type)
        out = op(x, w, torch.full((8,), 0.5, dtype=act, device=device_type))
        return bool(torch.allclose(out.float().cpu(), torch.full((1, 8), 16.0)))
    except (RuntimeError, NotImplementedError):
        return False


@functools.cache
def _dynamic_int8_works() -> bool:
    """torch's x86 (fbgemm) dynamic int8 linear: int8 weights, activations quantized per call, int32 accumulate."""
    if not {"fbgemm", "x86"} & set(torch.backends.quantized.supported_engines):
        return False
    try:
        with warnings.catch_warnings():  # torch marks quantized tensors deprecated; if they go, this returns False
            warnings.simplefilter("ignore")
            w = torch._make_per_channel_quantized_tensor(torch.ones(8, 32, dtype=torch.int8),
                                                         torch.full((8,), 0.5, dtype=torch.double),
                                                         torch.zeros(8, dtype=torch.long), 0)
        packed = torch.ops.quantized.linear_prepack(w, None)
        out = torch.ops.quantized.linear_dynamic(torch.ones(1, 32), packed, int8_reduce_range())
        return bool(torch.allclose(out, torch.full((1, 8), 16.0), rtol=0.02))
    except (RuntimeError, NotImplementedError, AttributeError):
        return False


def int8_reduce_range() -> bool:
    """fbgemm without VNNI multiplies u8 x s8 pairs into saturating int16: activations must then use 7 bits.
    With VNNI (avx512_vnni / avx_vnni / amx_int8) the products accumulate in int32, so all 8 bits are used
    (teacher-forced agreement with fp32 on the embedded model: 0.990 with 8 bits vs 0.981 with 7)."""
    return not {"avx512_vnni", "avx_vnni", "amx_int8"} & cpu_flags()


@functools.cache
def _onednn_bf16_works() -> bool:
    """oneDNN bf16 linear over a weight packed once into its blocked layout (what inductor's CPU freezing uses)."""
    try:
        w = torch.ones(8, 32, dtype=torch.bfloat16)
        packed = torch.ops.mkldnn._reorder_linear_weight(w, 1)
        out = torch.ops.mkldnn._linear_pointwise(torch.ones(3, 32, dtype=torch.bfloat16), packed, None, "none", [], "")
        return bool(torch.equal(out.float(), torch.full((3, 8), 32.0)))
    except (RuntimeError, NotImplementedError, AttributeError):
        return False


@functools.cache
def _fbgemm_fp16_works() -> bool:
    """fbgemm's fp16-weight linear: weights packed once as fp16, activations and accumulation fp32 (x86 with
    AVX2+F16C or AVX-512; absent from torch builds without fbgemm)."""
    try:
        packed = torch.ops.quantized.linear_prepack_fp16(torch.full((8, 32), 0.5), None)
        out = torch.ops.quantized.linear_dynamic_fp16(torch.ones(3, 32), packed)
        return bool(torch.equal(out, torch.full((3, 8), 16.0)))
    except (RuntimeError, NotImplementedError, AttributeError):
        return False


def fp16_kernel(device) -> str:
    """"fbgemm" on CPUs where torch's fbgemm fp16 linear runs (fp16 weights, fp32 activations; per token 2.5x faster
    than fp32 F.linear and 1.6x faster than packed bf16 here: benchmarks/gpt2_kernels.py); else "widened": the fp16-rounded weights are kept
    widened to fp32 for F.linear (the same numbers, fp32's speed and memory: no gain, only the same results)."""
    device = torch.device(device)
    return "fbgemm" if device.type == "cpu" and _fbgemm_fp16_works() else "widened"


def bf16_kernel(device) -> str:
    """"onednn_packed" on CPUs with native bf16 where torch has oneDNN (weights packed once; measured 1.5x faster
    per token than F.linear on the plain bf16 weight, which re-lays it out on every call), else "linear"."""
    device = torch.device(device)
    return "onednn_packed" if device.type == "cpu" and native_bf16_cpu() and _onednn_bf16_works() else "linear"


def int8_activation_dtype(device_type: str) -> torch.dtype:
    """Activations fed to the int8 weight-only kernel: bf16 (its fp32 path is 6-10x slower on the CPU)."""
    return torch.bfloat16


def int8_kernel(device) -> str:
    """The int8 matmul for Linear layers on `device`, fastest first:
    "dynamic": CPU with torch's x86/fbgemm engine: activations quantized to 8 bits per call (one scale per call,
      i.e. per token when decoding one row), int8 x int8 products (2x faster than "int8pack" per token here);
    "int8pack": torch's fused int8 weight-only GEMM (weights int8, activations bf16);
    "dequantize": int8 weights widened to the activation dtype per call (the memory saving stays, the speed not)."""
    device = torch.device(device)
    if device.type == "cpu" and _dynamic_int8_works():
        return "dynamic"
    return "int8pack" if _int8pack_works(device.type) else "dequantize"


def describe(device="cpu") -> dict:
    """What this machine gets, for benchmark reports and bug reports."""
    device = torch.device(device)
    interesting = ("avx2", "fma", "avx512f", "avx512_bf16", "avx512_vnni", "amx_bf16", "amx_int8", "asimd", "bf16")
    return {
        "device": str(device),
        "torch": torch.__version__,
        "cpu_capability": cpu_capability(),
        "cpu_flags": sorted(f for f in interesting if f in cpu_flags()),
        "native_bf16": native_bf16_cpu() if device.type == "cpu" else None,
        "default_dtype": str(default_dtype(device)).removeprefix("torch."),
        "bf16_kernel": bf16_kernel(device),
        "fp16_kernel": fp16_kernel(device),
        "default_quantize": default_quantize(device),
        "int8_kernel": int8_kernel(device),
        "int8_reduce_range": int8_reduce_range() if device.type == "cpu" else None,
    }
