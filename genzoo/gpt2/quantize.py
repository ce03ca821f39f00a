"""Weight-only int8, bf16 or fp16 for GPT-2 decoding: `model.quantize("int8")`, `from_pretrained(..., quantize="int8")`.

Every nn.Linear of the blocks becomes an Int8Linear: weights rounded to int8 with one scale per output row
(symmetric, scale = max |w| / 127), activations left in floating point. The tied vocabulary projection gets an
int8 copy of wte the same way (model.head); the embedding lookup keeps reading wte, so the token embeddings are
exact. A token then reads ~1/4 of the fp32 bytes. Which matmul runs is genzoo.gpt2.kernels' choice: on x86 CPUs
torch's dynamic int8 (the activations are also rounded to 8 bits, with one scale per call: per token when decoding),
else an int8 weight-only kernel with bf16 activations.

quantize("bf16") stores the same weights in bf16 instead (half the fp32 bytes) and runs the matmuls in bf16, while
LayerNorm, attention, the KV cache and the residual stream stay fp32. Against casting the whole model with
.to(torch.bfloat16) it is as close to fp32 (teacher-forced top-1 agreement 0.992 vs 0.991 on the embedded model)
and, on a CPU with native bf16, 1.3x faster than fp32 per token where the cast model is slower than fp32
(benchmarks/results/gpt2.md).

quantize("fp16") rounds the weights to fp16 and keeps everything else in fp32, activations and accumulation
included: on x86 CPUs torch's fbgemm keeps them packed and streams them faster than any bf16 kernel here (1.6x the
packed bf16 kernel per token), and fp16's 3 extra significand bits keep it closer to fp32 (agreement 0.9997;
greedy tokens of the embedded model equal fp32's). It is what `genzoo generate` uses on such CPUs by default.

The model is for inference afterwards: the weights have no gradients, quantizing twice is refused, and so is
saving it (save the floating-point model). Quantize on the device it will run on (from_pretrained does): the packed
CPU weights do not move with .to().
"""
from __future__ import annotations

import warnings
import weakref

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..errors import ConfigError
from . import kernels

MODES = ("int8", "bf16", "fp16")

# fbgemm's packed weights are opaque objects that torch.compile cannot trace: under compilation the layers that
# hold them are called through one custom op, by a number, so that the rest of a decode step compiles as one graph.
_PACKED_LAYERS = weakref.WeakValueDictionary()  # id(layer) -> layer


_library = torch.library.Library("genzoo", "FRAGMENT")
_library.define("packed_linear(Tensor rows, int layer) -> Tensor")


@torch.library.impl(_library, "packed_linear", "CPU")
def packed_linear(rows, layer):  # a plain registration: ~3 us per call, custom_op ~20 us
    return _PACKED_LAYERS[layer].packed_matmul(rows)


@torch.library.register_fake("genzoo::packed_linear", lib=_library)
def _(rows, layer):
    return rows.new_empty(rows.size(0), _PACKED_LAYERS[layer].out_features, dtype=torch.float32)


def _packed(layer, rows):
    """layer.packed_matmul(rows), made traceable under torch.compile (a direct call otherwise). Every eager call
    (re)registers the layer, so copies are found too: a prompt always runs eagerly before the compiled step."""
    if torch.compiler.is_compiling():
        return torch.ops.genzoo.packed_linear(rows, id(layer))
    if _PACKED_LAYERS.get(id(layer)) is not layer:
        _PACKED_LAYERS[id(layer)] = layer
    return layer.packed_matmul(rows)


def int8_rows(weight: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(out, in) float weight -> (int8 weight (out, in), fp32 scale per row): weight ~= int8 * scale[:, None]."""
    w = weight.detach().float()
    scale = w.abs().amax(dim=1).clamp(min=1e-12) / 127
    q = torch.round(w / scale[:, None]).clamp(-127, 127).to(torch.int8)
    return q.contiguous(), scale


class Int8Linear(nn.Module):
    """y = x @ (int8 weight * scale)^T + bias, with the matmul kernel chosen by genzoo.gpt2.kernels."""

    def __init__(self, weight: torch.Tensor, bias: torch.Tensor | None):
        super().__init__()
        q, scale = int8_rows(weight)
        self.kernel = kernels.int8_kernel(weight.device)
        self.act_dtype = kernels.int8_activation_dtype(weight.device.type)
        self.register_buffer("weight", q)
        # the fused kernel wants its scales in the activation dtype; the fallback keeps them exact
        self.register_buffer("scale", scale.to(self.act_dtype) if self.kernel == "int8pack" else scale)
        self.register_buffer("bias", None if bias is None else bias.detach().clone())
        self.in_features, self.out_features = weight.shape[1], weight.shape[0]
        if self.kernel == "dynamic":  # fbgemm's own packed copy of the same int8 values (not in the state dict)
            zeros = torch.zeros(len(scale), dtype=torch.long)
            with warnings.catch_warnings():  # torch marks quantized tensors deprecated (kernels.py probes)
                warnings.simplefilter("ignore")
                qweight = torch._make_per_channel_quantized_tensor(q, scale.double(), zeros, 0)
            bias32 = None if bias is None else bias.detach().float()
            self.packed = torch.ops.quantized.linear_prepack(qweight, bias32)
            self.reduce_range = kernels.int8_reduce_range()

    def packed_matmul(self, rows):
        return torch.ops.quantized.linear_dynamic(rows.float().contiguous(), self.packed, self.reduce_range)

    @classmethod
    def from_linear(cls, linear: nn.Linear) -> "Int8Linear":
        return cls(linear.weight, linear.bias)

    def forward(self, x):
        rows = x.reshape(-1, x.size(-1))
        if self.kernel == "dynamic":  # bias included
            y = _packed(self, rows)
            return y.to(x.dtype).view(*x.shape[:-1], self.out_features)
        if self.kernel == "int8pack":
            y = torch.ops.aten._weight_int8pack_mm(rows.to(self.act_dtype).contiguous(), self.weight, self.scale)
        else:
            y = F.linear(rows, self.weight.to(rows.dtype) * self.scale.to(rows.dtype)[:, None])
        y = y.to(x.dtype)
        if self.bias is not None:
            y = y + self.bias.to(x.dtype)
        return y.view(*x.shape[:-1], self.out_features)

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, kernel={self.kernel}"


class Bf16Linear(nn.Module):
    """y = x @ bf16 weight^T + bias: the matmul in bf16, input and output in x's dtype. Where kernels.bf16_kernel
    says so, the weight is kept only in oneDNN's packed layout (`packed`; `weight` is then None)."""

    def __init__(self, weight: torch.Tensor, bias: torch.Tensor | None):
        super().__init__()
        self.kernel = kernels.bf16_kernel(weight.device)
        w = weight.detach().to(torch.bfloat16, memory_format=torch.contiguous_format)
        # an opaque oneDNN tensor (no storage): a plain attribute, so that state_dict() and .to() leave it alone
        self.packed = torch.ops.mkldnn._reorder_linear_weight(w, 1) if self.kernel == "onednn_packed" else None
        self.register_buffer("weight", None if self.packed is not None else w)
        self.register_buffer("bias", None if bias is None else bias.detach().clone())
        self.in_features, self.out_features = weight.shape[1], weight.shape[0]

    def __deepcopy__(self, memo):  # the packed tensor cannot be copied; its dense form rebuilds the layer
        return Bf16Linear(self.packed.to_dense() if self.packed is not None else self.weight, self.bias)

    @classmethod
    def from_linear(cls, linear: nn.Linear) -> "Bf16Linear":
        return cls(linear.weight, linear.bias)

    def forward(self, x):
        rows = x.reshape(-1, x.size(-1)).to(torch.bfloat16)
        if self.packed is not None:
            y = torch.ops.mkldnn._linear_pointwise(rows, self.packed, None, "none", [], "")
        else:
            y = F.linear(rows, self.weight)
        y = y.to(x.dtype).view(*x.shape[:-1], self.out_features)
        return y if self.bias is None else y + self.bias.to(x.dtype)

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, kernel={self.kernel}"


class Fp16Linear(nn.Module):
    """y = x @ fp16 weight^T + bias with fp32 activations and accumulation: only the weights are rounded (to fp16's
    11-bit significand, 3 bits more than bf16). Where kernels.fp16_kernel says "fbgemm" the weight lives only in
    fbgemm's packed fp16 layout (`packed`; `weight` is then None); else the rounded weight is kept widened to x's
    dtype and F.linear runs (same numbers, no speed-up)."""

    def __init__(self, weight: torch.Tensor, bias: torch.Tensor | None):
        super().__init__()
        self.kernel = kernels.fp16_kernel(weight.device)
        largest = weight.detach().abs().max().item() if weight.numel() else 0.0
        if largest > torch.finfo(torch.float16).max:
            raise ConfigError(f"a weight of magnitude {largest:.4g} (shape {tuple(weight.shape)}) is beyond fp16's "
                              f"range (65504): quantize this model to 'bf16' or 'int8' instead of 'fp16'")
        w = weight.detach().to(torch.float16).float().contiguous()
        bias32 = None if bias is None else bias.detach().float().clone()
        # fbgemm's packed weights are an opaque object: a plain attribute, left alone by state_dict() and .to()
        self.packed = torch.ops.quantized.linear_prepack_fp16(w, bias32) if self.kernel == "fbgemm" else None
        self.register_buffer("weight", None if self.packed is not None else w.to(weight.dtype))
        self.register_buffer("bias", None if bias is None or self.packed is not None else bias.detach().clone())
        self.in_features, self.out_features = weight.shape[1], weight.shape[0]

    def packed_matmul(self, rows):
        return torch.ops.quantized.linear_dynamic_fp16(rows.float().contiguous(), self.packed)

    def __deepcopy__(self, memo):  # the packed object cannot be copied; its unpacked weights rebuild the layer
        if self.packed is None:
            return Fp16Linear(self.weight, self.bias)
        weight, bias = torch.ops.quantized.linear_unpack_fp16(self.packed)
        return Fp16Linear(weight, bias)

    @classmethod
    def from_linear(cls, linear: nn.Linear) -> "Fp16Linear":
        return cls(linear.weight, linear.bias)

    def forward(self, x):
        if self.packed is None:
            return F.linear(x, self.weight.to(x.dtype), None if self.bias is None else self.bias.to(x.dtype))
        rows = x.reshape(-1, x.size(-1))
        y = _packed(self, rows)  # bias included
        return y.to(x.dtype).view(*x.shape[:-1], self.out_features)

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, kernel={self.kernel}"


def quantize(model, mode: str = "int8"):
    """Replace the model's Linear layers and its vocabulary projection by int8 / bf16 / fp16 weight-only ones, in
    place."""
    if mode not in MODES:
        raise ConfigError(f"unknown quantization {mode!r}: one of {', '.join(MODES)}")
    if model.head is not None:
        raise ConfigError("this model is already quantized (quantize it once, from floating-point weights)")
    layer = {"int8": Int8Linear, "bf16": Bf16Linear, "fp16": Fp16Linear}[mode]
    for block in model.h:
        for parent in (block.attn, block.mlp):
            for name, child in list(parent.named_children()):
                if isinstance(child, nn.Linear):
                    setattr(parent, name, layer.from_linear(child))
    model.head = layer(model.output_weight, None)
    model.eval()
    return model
