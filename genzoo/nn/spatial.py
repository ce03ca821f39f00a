"""Self-attention over the pixels of a feature map, in diffusers' layout (shared by the U-Net and the SD VAE).

GroupNorm, then q/k/v projections of every pixel's channel vector, multi-head attention among all H*W pixels,
an output projection and a residual connection. Module names (`group_norm`, `to_q`, `to_k`, `to_v`, `to_out`)
are diffusers' current ones; RENAMES maps both diffusers spellings in the wild onto them.
"""
from __future__ import annotations

import re

import torch
import torch.nn as nn

from .attention import attention

_BLOCK = r"^(?P<prefix>.*\.attentions\.\d+)\."
# For checkpoint.rename_keys: diffusers < 0.14 wrote query/key/value/proj_attn (what google/ddpm-* and
# sd-vae-ft-mse still ship); current diffusers writes to_q/to_k/to_v/to_out.0 (to_out is [Linear, Dropout]).
RENAMES = [
    (_BLOCK + r"query\.", r"\g<prefix>.to_q."),
    (_BLOCK + r"key\.", r"\g<prefix>.to_k."),
    (_BLOCK + r"value\.", r"\g<prefix>.to_v."),
    (_BLOCK + r"proj_attn\.", r"\g<prefix>.to_out."),
    (_BLOCK + r"to_out\.0\.", r"\g<prefix>.to_out."),
]
_PROJECTION = re.compile(r"\.attentions\.\d+\.to_(q|k|v|out)\.weight$")


def squeeze_conv_projections(state_dict: dict) -> dict:
    """Some exports store the projections as 1x1 convs (C, C, 1, 1); ours are Linear (C, C), same (out, in) order."""
    return {k: (v[:, :, 0, 0] if _PROJECTION.search(k) and v.dim() == 4 and v.shape[2:] == (1, 1) else v)
            for k, v in state_dict.items()}


class SpatialSelfAttention(nn.Module):
    def __init__(self, channels: int, head_dim: int | None = None, groups: int = 32, eps: float = 1e-6,
                 output_scale_factor: float = 1.0):
        super().__init__()
        self.heads = channels // (head_dim or channels)
        self.group_norm = nn.GroupNorm(groups, channels, eps=eps)
        self.to_q = nn.Linear(channels, channels)
        self.to_k = nn.Linear(channels, channels)
        self.to_v = nn.Linear(channels, channels)
        self.to_out = nn.Linear(channels, channels)
        self.output_scale_factor = output_scale_factor
        self.attn_backend = None   # None: genzoo.nn.attention's current default

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, h, w = x.shape
        tokens = self.group_norm(x).flatten(2).transpose(1, 2)   # (B, HW, C): a free view when x is channels_last
        q, k, v = (proj(tokens).view(b, h * w, self.heads, -1).transpose(1, 2)
                   for proj in (self.to_q, self.to_k, self.to_v))
        out = attention(q, k, v, backend=self.attn_backend)
        out = self.to_out(out.transpose(1, 2).reshape(b, h * w, c))
        out = x + out.transpose(1, 2).view(b, c, h, w)   # x first: the sum keeps x's memory format
        return out if self.output_scale_factor == 1.0 else out / self.output_scale_factor
