"""Scaled dot-product attention: the one function GPT-2, the diffusion U-Net and the Stable Diffusion VAE call.

    from genzoo.nn import attention
    y = attention(q, k, v, is_causal=True)               # q, k, v: (batch, heads, tokens, head_dim)
    y = attention(q, k, v, backend="math")               # this call only
    with attention_backend("math"): model(x)             # everything in this block (this thread)
    set_attention_backend("math")                        # from now on, globally
    model.set_attention_backend("math")                  # one model (every genzoo model has it)

Backends:
  * "sdpa": torch's fused kernel (flash / memory-efficient / C++ math, chosen by torch), the default;
  * "math": the five lines below, for reading, debugging and as a reference.
A new backend is one function with attention's signature, registered with `@register_backend("name")`.
Precedence: the per-call `backend=`, then the model's, then an `attention_backend(...)` block, then the global.
"""
from __future__ import annotations

import contextlib
import math
import threading

import torch
import torch.nn.functional as F

from ..errors import ConfigError

_BACKENDS = {}
_global = {"backend": "sdpa"}
_local = threading.local()


def register_backend(name: str):
    """Decorator: make `fn(q, k, v, mask, is_causal, dropout)` selectable as `backend=name`."""
    def add(fn):
        _BACKENDS[name] = fn
        return fn
    return add


@register_backend("sdpa")
def sdpa(q, k, v, mask, is_causal, dropout):
    return F.scaled_dot_product_attention(q, k, v, attn_mask=mask, is_causal=is_causal, dropout_p=dropout)


@register_backend("math")
def math_attention(q, k, v, mask, is_causal, dropout):
    scores = (q @ k.transpose(-2, -1)) / math.sqrt(q.size(-1))   # how much each query attends to each key
    if is_causal:  # query i sees keys 0..i (top-left aligned, as torch's sdpa)
        mask = torch.ones(q.size(-2), k.size(-2), dtype=torch.bool, device=q.device).tril()
    if mask is not None:
        scores = scores.masked_fill(~mask, float("-inf")) if mask.dtype == torch.bool else scores + mask
    weights = F.dropout(scores.softmax(dim=-1), p=dropout) if dropout else scores.softmax(dim=-1)
    return weights @ v


def available_backends() -> list[str]:
    return sorted(_BACKENDS)


def check_backend(name):
    """Return `name` if it is a registered backend (None passes: it means "use the default")."""
    if name is not None and name not in _BACKENDS:
        raise ConfigError(f"unknown attention backend {name!r}: one of {', '.join(available_backends())} "
                          f"(add one with genzoo.nn.register_backend)")
    return name


def current_backend() -> str:
    return getattr(_local, "backend", None) or _global["backend"]


def set_attention_backend(name: str) -> None:
    """Use `name` for every attention call that does not choose its own (all threads)."""
    _global["backend"] = check_backend(name)


@contextlib.contextmanager
def attention_backend(name: str):
    """Use `name` inside the `with` block (this thread only)."""
    previous = getattr(_local, "backend", None)
    _local.backend = check_backend(name)
    try:
        yield
    finally:
        _local.backend = previous


def set_model_backend(model, name: str | None) -> None:
    """Use `name` in every attention layer of `model` (None: back to the default). Layers opt in with an
    `attn_backend` attribute."""
    check_backend(name)
    for module in model.modules():
        if hasattr(module, "attn_backend"):
            module.attn_backend = name


def attention(q, k, v, mask=None, is_causal: bool = False, dropout: float = 0.0, backend: str | None = None):
    """softmax(q k^T / sqrt(d) + mask) v over (..., tokens, head_dim) tensors.

    mask: bool (True = may attend) or additive float, broadcastable to (..., q_tokens, k_tokens).
    is_causal: query i attends to keys 0..i only. dropout: applied to the attention weights (training).
    """
    if mask is not None and is_causal:
        raise ConfigError("attention: pass either mask or is_causal=True, not both (fold the causal part into the mask)")
    fn = _BACKENDS[check_backend(backend) or current_backend()]
    return fn(q, k, v, mask, is_causal, dropout)
