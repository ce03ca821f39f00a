"""GPT-2, written from scratch (read top to bottom).

The architecture of Radford et al. (2019): token + learned position embeddings, `n_layer` pre-LayerNorm blocks
(causal self-attention, then a tanh-GELU MLP, each with a residual connection), a final LayerNorm, and logits
from the token embedding matrix itself (tied input/output embeddings: no separate lm_head tensor, unless
config.tie_embeddings is False, as in the book's word-level GPT of ch. 12).

Module names follow the checkpoints OpenAI published through Hugging Face (`wte`, `h.0.attn.c_attn`, `ln_f`, ...),
so loading them is a rename-free map apart from one transpose (their Conv1D stores weights as (in, out); we use
nn.Linear, (out, in)). Attention runs through genzoo.nn.attention (torch's SDPA by default, a readable math version on request); generation uses a KV cache
that is allocated once per call and written in place (no torch.cat per token).

Decoding fast is kept out of this file's arithmetic: which kernels and layouts run (fp32 / bf16 / int8, the
vocabulary projection's layout, the KV cache dtype) is decided in kernels.py, int8/bf16 weights come from
quantize.py (`model.quantize(...)`), and the fixed-shape step for torch.compile / CUDA graphs is fast_decode.py.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..errors import ConfigError
from ..nn.attention import attention
from ..pretrained import Config, PretrainedModel
from . import fast_decode, kernels


# config.activation -> F.gelu's `approximate`: GPT-2 (OpenAI, transformers' "gelu_new") uses the tanh approximation;
# nanoGPT's nn.GELU() is the exact erf form.
GELU_APPROXIMATIONS = {"gelu_tanh": "tanh", "gelu": "none"}


@dataclass
class GPTConfig(Config):
    model_type = "gpt"
    LIMITS = {"vocab_size": (1, 1 << 22), "n_positions": (1, 1 << 20), "n_embd": (1, 1 << 16),
              "n_layer": (1, 1024), "n_head": (1, 1024), "n_inner": (1, 1 << 18), "dropout": (0.0, 1.0),
              "layer_norm_epsilon": (0.0, 1.0), "bos_token_id": (0, 1 << 22), "eos_token_id": (0, 1 << 22)}

    vocab_size: int = 50257
    n_positions: int = 1024          # the context window ("block_size" in nanoGPT)
    n_embd: int = 768
    n_layer: int = 12
    n_head: int = 12
    n_inner: int | None = None       # MLP width; None means 4 * n_embd
    bias: bool = True                # biases in Linear and LayerNorm (GPT-2: yes; nanoGPT trains without by default)
    layer_norm_epsilon: float = 1e-5
    activation: str = "gelu_tanh"    # GPT-2's tanh approximation of GELU; "gelu" is the exact erf form
    dropout: float = 0.0             # training only
    bos_token_id: int = 50256        # what an empty prompt starts from (<|endoftext|> for GPT-2's BPE)
    eos_token_id: int | None = 50256 # generation stops here (None: never)
    tokenizer: dict = field(default_factory=lambda: {"type": "gpt2"})  # or {"type": "char", "chars": "..."}
    tie_embeddings: bool = True      # logits from wte itself (GPT-2); False: a separate lm_head (the book's ch. 12)

    def __post_init__(self):
        super().__post_init__()
        if self.n_embd % self.n_head:
            raise ConfigError(f"n_embd ({self.n_embd}) must be divisible by n_head ({self.n_head})")
        if self.activation not in GELU_APPROXIMATIONS:
            raise ConfigError(f"activation must be one of {tuple(GELU_APPROXIMATIONS)}, not {self.activation!r}")
        for name in ("vocab_size", "n_positions", "n_embd", "n_layer", "n_head"):
            if int(getattr(self, name)) < 1:
                raise ConfigError(f"{name} must be a positive integer, not {getattr(self, name)!r}")

    @property
    def mlp_width(self) -> int:
        return self.n_inner or 4 * self.n_embd


# The four sizes OpenAI released (124M, 350M, 774M, 1558M parameters).
SIZES = {
    "gpt2": dict(n_layer=12, n_head=12, n_embd=768),
    "gpt2-medium": dict(n_layer=24, n_head=16, n_embd=1024),
    "gpt2-large": dict(n_layer=36, n_head=20, n_embd=1280),
    "gpt2-xl": dict(n_layer=48, n_head=25, n_embd=1600),
}


def config_for(size: str, **overrides) -> GPTConfig:
    if size not in SIZES:
        raise ConfigError(f"unknown GPT-2 size {size!r}: one of {', '.join(SIZES)}")
    return GPTConfig(**{**SIZES[size], **overrides})


class KVCache:
    """Keys and values of every layer, preallocated for `max_len` positions and written in place.

    `length` is how many positions are filled; GPT.forward appends its new tokens' keys/values at that offset.
    `head` optionally holds the output embedding laid out (n_embd, vocab_size) for decoding on the CPU (see
    GPT.decode_head): the model's cached copy, rebuilt only when wte changes. The dtype of the keys/values is
    genzoo.gpt2.kernels' choice (fp32 on the CPU even for a bf16 model: its bf16 attention is far slower).
    fast_decode.StaticKVCache is the fixed-shape variant.
    """

    static = False

    def __init__(self, config: GPTConfig, batch_size: int, max_len: int, device, dtype, head=None):
        head_dim = config.n_embd // config.n_head
        shape = (config.n_layer, batch_size, config.n_head, max_len, head_dim)
        self.k = torch.empty(shape, device=device, dtype=dtype)
        self.v = torch.empty(shape, device=device, dtype=dtype)
        self.max_len = max_len
        self.length = 0
        self.head = head

    def reset(self):
        self.length = 0

    def reorder(self, beam_idx: torch.Tensor):
        """Row i takes row beam_idx[i]'s keys and values (beam search keeps the beams that survive a step)."""
        filled = slice(0, self.length)
        self.k[:, :, :, filled] = self.k[:, :, :, filled].index_select(1, beam_idx)
        self.v[:, :, :, filled] = self.v[:, :, :, filled].index_select(1, beam_idx)

    def update(self, layer: int, k, v):
        """Append the new tokens' keys/values (B, H, T, D) at `length`; return every cached one so far."""
        start, end = self.length, self.length + k.size(2)
        self.k[layer, :, :, start:end] = k
        self.v[layer, :, :, start:end] = v
        return self.k[layer, :, :, :end], self.v[layer, :, :, :end]


class CausalSelfAttention(nn.Module):
    def __init__(self, config: GPTConfig):
        super().__init__()
        self.n_head = config.n_head
        self.n_embd = config.n_embd
        self.c_attn = nn.Linear(config.n_embd, 3 * config.n_embd, bias=config.bias)  # q, k, v in one matmul
        self.c_proj = nn.Linear(config.n_embd, config.n_embd, bias=config.bias)
        self.dropout = config.dropout
        self.attn_backend = None   # None: genzoo.nn.attention's current default ("sdpa" unless changed)
        self.resid_dropout = nn.Dropout(config.dropout)

    def forward(self, x, layer: int, cache: KVCache | None, mask: torch.Tensor | None, is_causal: bool):
        B, T, C = x.shape
        q, k, v = self.c_attn(x).split(self.n_embd, dim=2)
        q, k, v = (t.view(B, T, self.n_head, C // self.n_head).transpose(1, 2) for t in (q, k, v))  # (B, H, T, D)
        if cache is not None:
            k, v = cache.update(layer, k, v)
            q = q.to(k.dtype)  # the cache's dtype may be wider than the weights' (kernels.kv_cache_dtype)
        y = attention(q, k, v, mask=mask, is_causal=is_causal, dropout=self.dropout if self.training else 0.0,
                      backend=self.attn_backend)
        y = y.to(x.dtype).transpose(1, 2).reshape(B, T, C)
        return self.resid_dropout(self.c_proj(y))


class MLP(nn.Module):
    def __init__(self, config: GPTConfig):
        super().__init__()
        self.c_fc = nn.Linear(config.n_embd, config.mlp_width, bias=config.bias)
        self.c_proj = nn.Linear(config.mlp_width, config.n_embd, bias=config.bias)
        self.approximate = GELU_APPROXIMATIONS[config.activation]
        self.dropout = nn.Dropout(config.dropout)

    def forward(self, x):
        return self.dropout(self.c_proj(F.gelu(self.c_fc(x), approximate=self.approximate)))


class Block(nn.Module):
    def __init__(self, config: GPTConfig):
        super().__init__()
        self.ln_1 = nn.LayerNorm(config.n_embd, eps=config.layer_norm_epsilon, bias=config.bias)
        self.attn = CausalSelfAttention(config)
        self.ln_2 = nn.LayerNorm(config.n_embd, eps=config.layer_norm_epsilon, bias=config.bias)
        self.mlp = MLP(config)

    def forward(self, x, layer, cache, mask, is_causal):
        x = x + self.attn(self.ln_1(x), layer, cache, mask, is_causal)
        return x + self.mlp(self.ln_2(x))


class GPT(PretrainedModel):
    family = "gpt2"

    def __init__(self, config: GPTConfig):
        super().__init__()
        self.config = config
        # Passing the (uninitialised) tables skips nn.Embedding's own init: _init_weights below does it, and on the
        # meta device torch's normal_ would import ~800 modules (sympy, ...) for nothing: 1-2 s of a cold load.
        self.wte = nn.Embedding(config.vocab_size, config.n_embd, _weight=torch.empty(config.vocab_size, config.n_embd))
        self.wpe = nn.Embedding(config.n_positions, config.n_embd, _weight=torch.empty(config.n_positions, config.n_embd))
        self.drop = nn.Dropout(config.dropout)
        self.h = nn.ModuleList(Block(config) for _ in range(config.n_layer))
        self.ln_f = nn.LayerNorm(config.n_embd, eps=config.layer_norm_epsilon, bias=config.bias)
        self.lm_head = None if config.tie_embeddings else nn.Linear(config.n_embd, config.vocab_size, bias=False)
        self.head = None            # an int8/bf16 copy of wte for the logits, set by quantize() (else wte itself)
        self.decode_mode = "eager"  # how new_cache() decodes: see set_decode_mode
        self._head_copy = None      # (key of the wte it was made from, (n_embd, vocab) copy): see decode_head
        if self.wte.weight.device.type != "meta":  # on the meta device (loading) there is nothing to initialise
            self.apply(self._init_weights)
            # GPT-2 scales the residual projections by 1/sqrt(2 * n_layer) (the paper's "modified initialization").
            for name, p in self.named_parameters():
                if name.endswith("c_proj.weight"):
                    nn.init.normal_(p, mean=0.0, std=0.02 / math.sqrt(2 * config.n_layer))

    @staticmethod
    def _init_weights(module):
        if isinstance(module, nn.Linear):
            nn.init.normal_(module.weight, mean=0.0, std=0.02)
            if module.bias is not None:
                nn.init.zeros_(module.bias)
        elif isinstance(module, nn.Embedding):
            nn.init.normal_(module.weight, mean=0.0, std=0.02)

    def forward(self, input_ids, targets=None, *, attention_mask=None, position_ids=None, cache: KVCache | None = None,
                last_only: bool = False):
        """Logits (B, T, vocab_size); with `targets` (B, T) also the mean cross-entropy: (logits, loss).

        attention_mask: (B, past + T), 1 for tokens, 0 for (left) padding, covering the cache and the new tokens.
        cache: a KVCache from new_cache(); the new tokens' keys/values are appended and cache.length advances.
          With a StaticKVCache (decode modes other than "eager") a one-token step takes its positions and key mask
          from the cache, and its new token is taken to be a real one (generate() never feeds padding there).
        last_only: compute logits for the last position only (generation: the vocabulary matmul is the
        largest in the model, and a prompt's other positions are never sampled from).
        """
        B, T = input_ids.shape
        past = cache.length if cache is not None else 0
        if past + T > self.config.n_positions:
            raise ConfigError(f"sequence of {past + T} tokens is longer than the context window "
                              f"({self.config.n_positions} positions); crop it, or let generate() slide the window")
        if cache is not None and past + T > cache.max_len:
            raise ConfigError(f"the KV cache holds {cache.max_len} positions, {past + T} are needed")
        if cache is not None and cache.static and T == 1 and past > 0 and targets is None and position_ids is None:
            return cache.step(self, input_ids)  # the fixed-shape step (fast_decode): no shape depends on `past`
        if position_ids is None:
            if attention_mask is not None:  # left padding: each row counts its positions from its first token
                position_ids = (attention_mask.long().cumsum(-1) - 1).clamp(min=0)[:, past:past + T]
            else:
                position_ids = torch.arange(past, past + T, device=input_ids.device).unsqueeze(0)
        mask, is_causal = self._attention_mask(attention_mask, B, T, past, input_ids.device)

        x = self.drop(self.wte(input_ids) + self.wpe(position_ids))
        for layer, block in enumerate(self.h):
            x = block(x, layer, cache, mask, is_causal)
        if cache is not None:
            if cache.static:
                cache.record_prefill(attention_mask, past, T)
            cache.length = past + T
        x = self.ln_f(x)
        if last_only:
            x = x[:, -1:]
        logits = self.logits(x, head=cache.head if cache is not None else None)
        if targets is None:
            return logits
        loss = F.cross_entropy(logits.float().view(-1, logits.size(-1)), targets.reshape(-1), ignore_index=-100)
        return logits, loss

    def logits(self, x, head=None):
        """The vocabulary projection of final hidden states x (..., n_embd), by output_weight (wte when tied).
        head: output_weight laid out (n_embd, vocab), a decoding cache's copy (see decode_head), for one-token rows."""
        if self.head is not None:
            return self.head(x)  # quantize(): int8/bf16 copy of output_weight
        if head is not None and x.size(-2) == 1:
            return x @ head  # one token per row: the GEMV over the (n_embd, vocab) copy streams faster on a CPU
        return F.linear(x, self.output_weight)

    @staticmethod
    def _attention_mask(attention_mask, B, T, past, device):
        """(mask, is_causal) for SDPA: no mask at all in the common cases, a boolean one when it must be."""
        if attention_mask is None or bool(attention_mask.all()):
            if past == 0:
                return None, T > 1   # plain causal attention
            if T == 1:
                return None, False   # one new token sees everything cached
        total = past + T
        query_pos = torch.arange(past, total, device=device).view(T, 1)
        key_pos = torch.arange(total, device=device).view(1, total)
        allowed = (key_pos <= query_pos).view(1, 1, T, total)
        if attention_mask is not None:
            keys = attention_mask[:, :total].bool().view(B, 1, 1, total)
            # A padding position still sees itself, so that no row is fully masked (SDPA would return NaN there).
            allowed = allowed & (keys | (key_pos == query_pos).view(1, 1, T, total))
        return allowed, False

    # --- inference helpers ------------------------------------------------------------------------------------

    def new_cache(self, batch_size: int, max_len: int | None = None, mode: str | None = None):
        """A KV cache for decoding `batch_size` rows; mode (default: self.decode_mode) "eager" gives a KVCache,
        "static" / "compile" / "cuda_graph" a fast_decode.StaticKVCache (see set_decode_mode)."""
        max_len = min(max_len or self.config.n_positions, self.config.n_positions)
        mode = fast_decode.check_mode(mode or self.decode_mode, self.device)
        self.arrange_for_decoding()
        dtype = kernels.kv_cache_dtype(self.device, self.dtype)
        if mode == "eager":
            return KVCache(self.config, batch_size, max_len, self.device, dtype, head=self.decode_head())
        max_len = fast_decode.slots_for(mode, max_len, self.config.n_positions)
        return fast_decode.StaticKVCache(self.config, batch_size, max_len, self.device, dtype,
                                         head=self.decode_head(), mode=mode)

    def set_decode_mode(self, mode: str) -> "GPT":
        """How generation decodes: "eager" (default: attention over the filled cache prefix), "static" (a
        fixed-shape step over the whole cache), "compile" (that step through torch.compile), "cuda_graph" (that
        step captured as a CUDA graph; CUDA only). All give the same tokens; see genzoo/gpt2/fast_decode.py."""
        self.decode_mode = fast_decode.check_mode(mode, self.device)
        return self

    def arrange_for_decoding(self) -> "GPT":
        """Store each block Linear's weight in the layout kernels.linear_layout finds faster for a one-row GEMV on
        this machine (fp32 on the CPU; elsewhere nothing changes). Values, shapes and Parameter objects stay the
        same (an optimizer keeps working): only the memory order of `.data` changes, once per weight."""
        for module in self.h.modules():
            if not isinstance(module, nn.Linear):
                continue
            w = module.weight
            wanted = kernels.linear_layout(module.in_features, module.out_features, w.device, w.dtype)
            if wanted is None or wanted == kernels.stored_layout(w):
                continue
            with torch.inference_mode(False), torch.no_grad():  # generate() may run under inference_mode
                w.data = w.data.t().contiguous().t() if wanted == "in_out" else w.data.contiguous()
        return self

    def decode_head(self):
        """wte laid out (n_embd, vocab) for the one-token vocabulary GEMV where kernels.uses_head_copy says it
        pays (fp32 on the CPU), else None. Made once and kept until wte changes (training step, load, .to())."""
        p = self.output_weight
        if self.head is not None or not kernels.uses_head_copy(p.device, p.dtype):
            self._head_copy = None
            return None
        key = (p.data_ptr(), p._version, p.dtype, p.device, p.shape)
        if self._head_copy is None or self._head_copy[0] != key:
            self._head_copy = None  # free the stale copy before making the new one
            with torch.inference_mode(False), torch.no_grad():
                self._head_copy = (key, p.detach().t().contiguous())
        return self._head_copy[1]

    def quantize(self, mode: str = "int8") -> "GPT":
        """Int8 or bf16 weight-only Linear layers and vocabulary projection, in place (see gpt2/quantize.py)."""
        from .quantize import quantize

        return quantize(self, mode)

    @property
    def output_weight(self) -> torch.Tensor:
        """The (vocab_size, n_embd) matrix that turns hidden states into logits: wte when tied, else lm_head."""
        return self.wte.weight if self.lm_head is None else self.lm_head.weight

    @property
    def tokenizer(self):
        """The tokenizer this model was trained with (GPT-2's BPE, or the characters in its config)."""
        if getattr(self, "_tokenizer", None) is None:
            from .tokenizer import tokenizer_from_config

            self._tokenizer = tokenizer_from_config(self.config.tokenizer)
        return self._tokenizer

    def generate(self, input_ids, max_new_tokens: int = 100, temperature: float = 1.0, top_k: int | None = None,
                 top_p: float | None = None, seed: int | None = None, **kwargs):
        """Prompt ids + new ids; see genzoo.gpt2.generate.generate for every option."""
        from .generate import check_options, generate

        check_options(generate, kwargs)
        return generate(self, input_ids, max_new_tokens=max_new_tokens, temperature=temperature, top_k=top_k,
                        top_p=top_p, seed=seed, **kwargs)

    def generate_text(self, prompt, max_new_tokens: int = 100, **kwargs):
        """Text in, text out (prompt + completion); a list of prompts gives a list. See generate.generate_text."""
        from .generate import check_options, generate_text

        check_options(generate_text, kwargs)
        return generate_text(self, prompt, max_new_tokens=max_new_tokens, **kwargs)

    def stream_text(self, prompt: str, max_new_tokens: int = 100, **kwargs):
        """Yield the completion of one prompt piece by piece as it is generated. See generate.stream_text."""
        from .generate import check_options, stream_text

        check_options(stream_text, kwargs)
        return stream_text(self, prompt, max_new_tokens=max_new_tokens, **kwargs)

    def save_pretrained(self, directory, format: str = "genzoo", **options):
        if self.head is not None:
            raise ConfigError("a quantized model cannot be saved: save the floating-point model, and pass "
                              "quantize='int8' to from_pretrained when loading it")
        return super().save_pretrained(directory, format=format, **options)
