"""Devices, dtypes and random generators, spelled the same way across every family."""
from __future__ import annotations

import torch

from .errors import ConfigError

_DTYPES = {
    "float32": torch.float32, "fp32": torch.float32, "float": torch.float32,
    "float16": torch.float16, "fp16": torch.float16, "half": torch.float16,
    "bfloat16": torch.bfloat16, "bf16": torch.bfloat16,
}


def resolve_device(device=None) -> torch.device:
    """None or "auto" picks cuda, then mps, then cpu; anything else goes through torch.device."""
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
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError("device 'cuda' was asked for but torch sees no CUDA GPU (torch.cuda.is_available() is False)")
    return device


def resolve_dtype(dtype=None) -> torch.dtype | None:
    """None keeps the checkpoint's dtype; accepts torch dtypes and names like "bfloat16" or "fp16"."""
    if dtype is None or isinstance(dtype, torch.dtype):
        return dtype
    name = str(dtype).lower().removeprefix("torch.")
    if name not in _DTYPES:
        raise ConfigError(f"unknown dtype {dtype!r}: use one of {sorted(set(_DTYPES))}")
    return _DTYPES[name]


def make_generator(seed=None, generator=None, device="cpu") -> torch.Generator | None:
    """One place that turns `seed=` / `generator=` into a torch.Generator (None: global RNG)."""
    if generator is not None:
        if seed is not None:
            raise ConfigError("pass either seed or generator, not both")
        return generator
    if seed is None:
        return None
    g = torch.Generator(device=torch.device(device))
    g.manual_seed(int(seed))
    return g
