"""Devices, dtypes, random generators and numerical policy, spelled the same way across every family.

Randomness (one rule for every family): noise is drawn on the device the generator lives on, with that
generator, and then moved to where the model needs it. So a CPU `torch.Generator()` works with a CUDA model
and a CUDA generator (the diffusers idiom) works too, and a given generator state gives the same noise whatever
device the model is on. `seed=` becomes a generator through `make_generator(seed, generator, device)`, where
the family chooses the device: the image families draw once per call and seed a CPU generator (same seed, same
images on any device); GPT-2 draws every token and seeds one on the model's device (no host round trip per
token; a seed's text then depends on the device, as in transformers).

dtype="auto" (see auto_dtype): the fastest dtype on the device that keeps quality, the same choice in every family:
bf16 on a CPU that computes it natively (/proc/cpuinfo has avx512_bf16 or amx_bf16 and torch dispatches AVX-512
kernels: bf16 convolutions and matmuls then run ~2x faster than fp32), fp32 on other CPUs (bf16 is emulated there
and no faster); on CUDA bf16 where the GPU supports it, else fp16; fp32 elsewhere (mps).

TF32 (see allow_tf32): on Ampere and later GPUs torch runs float32 convolutions in TF32 by default (10-bit
mantissa) and float32 matmuls in full precision. genzoo does not change that at import; `allow_tf32(False)`
makes both exact float32 (the test suite and every parity check run that way), `allow_tf32(True)` makes both
TF32 (faster; results then differ from the CPU at about 1e-3 relative).
"""
from __future__ import annotations

import contextlib
import functools

import torch

from .errors import ConfigError, NumericalError

_DTYPES = {
    "float32": torch.float32, "fp32": torch.float32, "float": torch.float32,
    "float16": torch.float16, "fp16": torch.float16, "half": torch.float16,
    "bfloat16": torch.bfloat16, "bf16": torch.bfloat16,
}


def resolve_device(device=None) -> torch.device:
    """None or "auto" picks cuda, then mps, then cpu; anything else goes through torch.device and is checked."""
    if device is None or device == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        mps = getattr(torch.backends, "mps", None)
        if mps is not None and mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        device = torch.device(device)
    except (RuntimeError, TypeError) as e:
        raise ConfigError(f"unknown device {device!r}: use 'auto', 'cpu', 'cuda', 'cuda:1' or 'mps'") from e
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise ConfigError("device 'cuda' was asked for but torch sees no CUDA GPU (torch.cuda.is_available() is False)")
        count = torch.cuda.device_count()
        if device.index is not None and device.index >= count:
            raise ConfigError(f"device {str(device)!r} does not exist: torch sees {count} CUDA GPU(s), "
                              f"cuda:0 to cuda:{count - 1} (CUDA_VISIBLE_DEVICES renumbers them)")
    return device


def resolve_dtype(dtype=None, device=None, what: str = "dtype") -> torch.dtype | None:
    """None keeps the checkpoint's dtype; accepts torch dtypes, names like "bfloat16" or "fp16", and "auto"
    (auto_dtype of `device`, resolved as resolve_device does). `what` names the option in the error."""
    if dtype is None or isinstance(dtype, torch.dtype):
        return dtype
    name = str(dtype).lower().removeprefix("torch.")
    if name == "auto":
        return auto_dtype(resolve_device(device))
    if name not in _DTYPES:
        raise ConfigError(f"unknown {what} {dtype!r}: use auto or one of {', '.join(sorted(set(_DTYPES)))}")
    return _DTYPES[name]


@functools.cache
def cpu_flags() -> frozenset[str]:
    """The CPU feature flags the kernel reports (empty where /proc/cpuinfo does not exist, e.g. macOS)."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith(("flags", "Features")):
                    return frozenset(line.split(":", 1)[1].split())
    except OSError:
        pass
    return frozenset()


def cpu_capability() -> str:
    """torch's name for the vector ISA its CPU kernels were dispatched to ("AVX512", "AVX2", "DEFAULT", ...)."""
    try:
        return torch.backends.cpu.get_cpu_capability()
    except (AttributeError, RuntimeError):
        return "unknown"


def native_bf16_cpu() -> bool:
    """True where the CPU computes bf16 dot products in hardware and torch dispatches AVX-512 kernels to it."""
    has_bf16 = bool({"avx512_bf16", "amx_bf16"} & cpu_flags())
    return has_bf16 and cpu_capability().startswith(("AVX512", "AMX"))


def auto_dtype(device) -> torch.dtype:
    """What dtype="auto" means on `device`: the fastest dtype there that keeps quality (module docstring)."""
    device = torch.device(device)
    if device.type == "cuda":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    if device.type == "cpu":
        return torch.bfloat16 if native_bf16_cpu() else torch.float32
    return torch.float32


# -- random generators ---------------------------------------------------------------------------------------------
def make_generator(seed=None, generator=None, device="cpu") -> torch.Generator | None:
    """One place that turns `seed=` / `generator=` into a torch.Generator (None: global RNG).

    A seed makes a generator on `device` (the family's choice, see the module docstring); a given generator is
    returned as it is, wherever it lives.
    """
    if generator is not None:
        if seed is not None:
            raise ConfigError("pass either seed or generator, not both")
        return check_generator(generator)
    if seed is None:
        return None
    try:
        seed = int(seed)
    except (TypeError, ValueError) as e:
        raise ConfigError(f"seed must be an int, not {seed!r}") from e
    g = torch.Generator(device=torch.device(device))
    g.manual_seed(seed)
    return g


def check_generator(generator) -> torch.Generator | None:
    if generator is not None and not isinstance(generator, torch.Generator):
        raise ConfigError(f"generator must be a torch.Generator (on any device) or None, not "
                          f"{type(generator).__name__}; for a number use seed=")
    return generator


def draw_device(generator, default) -> torch.device:
    """Where noise is drawn: on the generator's device; with no generator, on `default` (torch's global RNG there)."""
    return generator.device if generator is not None else torch.device(default)


def randn(shape, generator=None, device="cpu", dtype=torch.float32, draw_on=None) -> torch.Tensor:
    """N(0, I) noise of `shape` on `device`, drawn where `generator` lives and then moved.

    With no generator, drawn from torch's global RNG on `draw_on` (default: `device`).
    """
    check_generator(generator)
    where = draw_device(generator, draw_on if draw_on is not None else device)
    return torch.randn(shape, generator=generator, device=where, dtype=dtype).to(device)


def multinomial(probs: torch.Tensor, generator=None) -> torch.Tensor:
    """One draw per row of (B, V) probabilities -> (B,) indices, the noise drawn where `generator` lives.

    argmax(p / q) with q ~ Exp(1) picks i with probability p_i. It is how torch.multinomial draws one sample, with
    the same generator calls (on the CPU the result is identical, tests/test_runtime.py checks it). Unlike
    torch.multinomial it never syncs with the host and never hits a device-side assert (check for NaN first).
    """
    check_generator(generator)
    where = draw_device(generator, probs.device)
    q = torch.empty(probs.shape, device=where, dtype=probs.dtype).exponential_(1, generator=generator)
    return (probs / q.to(probs.device)).argmax(dim=-1)


# -- numerical checks ------------------------------------------------------------------------------------------------
def check_finite(x: torch.Tensor, what: str, hint: str = "") -> None:
    """Raise NumericalError if `x` holds a NaN or an infinity. One host sync: call it where one happens anyway."""
    if x.is_floating_point() and not bool(torch.isfinite(x).all()):
        nan, inf = int(torch.isnan(x).sum()), int(torch.isinf(x).sum())
        raise NumericalError(f"{what} holds {nan} NaN and {inf} infinite value(s) out of {x.numel()}"
                             f"{'; ' + hint if hint else ''}")


def nonfinite_rows(logits: torch.Tensor) -> torch.Tensor:
    """(B,) bool on the logits' device: rows holding NaN or +inf, or with no finite logit (-inf marks a masked
    token; all of them masked is a model that overflowed)."""
    best = logits.amax(dim=-1)  # NaN where a row holds a NaN, +inf where it holds +inf, -inf where all are -inf
    return ~torch.isfinite(best)  # one pass over the logits


def _nonfinite_error(logits: torch.Tensor, what: str) -> NumericalError:
    return NumericalError(f"{what} hold NaN or infinite values ({logits.dtype}, {logits.device}): an fp16 "
                          f"overflow? run the model in bfloat16 or float32")


def check_logits(logits: torch.Tensor, what: str = "the model's next-token logits") -> None:
    """Before choosing a token: NaN or +inf anywhere, or a row with no finite logit, is a model that overflowed.
    Raise NumericalError rather than emit a token (greedy on NaN picks id 0, '!' in GPT-2) or hit
    torch.multinomial's device-side assert on CUDA. One host sync (see NonFiniteWatch for loops that avoid it)."""
    if bool(nonfinite_rows(logits.reshape(-1, logits.size(-1))).any()):
        raise _nonfinite_error(logits, what)


class NonFiniteWatch:
    """check_logits without a host sync per step, for decoding loops that never read the device otherwise (a GPU
    can then run ahead of Python). record() notes on the device whether a step's logits were non-finite and gives
    those rows all-zero scores (a uniform draw: torch.multinomial never sees NaN); check() reads the note once and
    raises NumericalError. The loop must call check() before anything it produced is used."""

    def __init__(self, device, what: str = "the model's next-token logits"):
        self.bad = torch.zeros((), dtype=torch.bool, device=device)
        self.what = what
        self.dtype = None

    def record(self, logits: torch.Tensor) -> torch.Tensor:
        rows = nonfinite_rows(logits)
        self.bad |= rows.any()
        self.dtype = logits.dtype
        return logits.masked_fill(rows.unsqueeze(-1), 0.0)

    def check(self) -> None:
        if bool(self.bad):
            raise NumericalError(f"{self.what} held NaN or infinite values at some step ({self.dtype}, "
                                 f"{self.bad.device}): an fp16 overflow? run the model in bfloat16 or float32")


# -- TF32 ----------------------------------------------------------------------------------------------------------
def allow_tf32(enabled: bool) -> None:
    """TF32 for float32 matmuls and cuDNN convolutions on CUDA: True is faster, False is exact float32.

    Sets torch's own switches (torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32), so it
    applies to everything in the process, genzoo or not. No effect on the CPU, bf16 or fp16.
    """
    if not isinstance(enabled, bool):
        raise ConfigError(f"allow_tf32 takes True or False, not {enabled!r}")
    torch.backends.cuda.matmul.allow_tf32 = enabled
    torch.backends.cudnn.allow_tf32 = enabled


def tf32_enabled() -> dict:
    """{"matmul": bool, "conv": bool}: whether float32 matmuls / cuDNN convolutions may use TF32 now."""
    return {"matmul": bool(torch.backends.cuda.matmul.allow_tf32), "conv": bool(torch.backends.cudnn.allow_tf32)}


@contextlib.contextmanager
def tf32(enabled: bool):
    """allow_tf32(enabled) inside a `with` block, the previous switches restored after it."""
    previous = tf32_enabled()
    allow_tf32(enabled)
    try:
        yield
    finally:
        torch.backends.cuda.matmul.allow_tf32 = previous["matmul"]
        torch.backends.cudnn.allow_tf32 = previous["conv"]
