"""A decode step whose shapes never change: the same kernels at every token, so it can be compiled or captured once.

The ordinary step (GPT.forward with a KVCache) attends over the `length` cached positions, a shape that grows by
one per token. Here the cache is a StaticKVCache: attention always runs over all `max_len` slots, with a boolean
mask saying which slots hold real tokens so far, and where the next token goes (`slot`) and which position
embedding it gets (`positions`) are tensors updated in place on the device. Nothing in a step reads a value back to
Python, so a step is one fixed graph:

    model.set_decode_mode("static")       # the fixed-shape step, eager (what the CPU tests compare token by token)
    model.set_decode_mode("compile")      # torch.compile of that step (compiled once per model and batch shape)
    model.set_decode_mode("cuda_graph")   # CUDA only: the step captured as a CUDA graph per generate() call,
                                          # replayed per token (no kernel-launch overhead, no host sync)
    model.generate(ids, ...)              # generate() picks it up through model.new_cache()

A prompt (more than one token per row) always runs through the ordinary forward pass, writing the same buffers;
`record_prefill` then sets the slot, the positions and the slot mask from it.

Measured on a CPU (benchmarks/results/gpt2.md, GPT-2 124M, 1 thread): "static" is no faster than "eager";
"compile" decodes fp32 1.29x faster than "eager" (1.64x transformers fp32, 0.69 of the memory floor), fp16 weights
and int8 ~1.1x, once compiled: ~20 s per process and per cache-length bucket on a CPU, which is why "eager" stays
the default. Most of the fp32 gain is inductor's own GEMV over weights frozen into the graph (compile_options);
the rest, and the first gains, came from: one tensor per layer in the cache (a write into a slice of one big
tensor was turned into copies of it: ~9 ms per step of generated code, now ~1.3 ms), fbgemm's packed layers reached
through one plain library op (quantize.py; a custom_op wrapper cost ~20 us per call), a token column copied so its
stride does not change with max_new_tokens, and cache lengths rounded up to powers of two (slots_for). What still
costs: dynamo's guards over every module (~0.5 ms per step). The point of the fixed shapes on a GPU is
"cuda_graph": a 124M-parameter step there is mostly kernel-launch overhead. That mode is written to replay exactly
what the tested "static" step does, but has not run on a GPU yet.
"""
from __future__ import annotations

import inspect
import warnings

import torch

from ..errors import ConfigError

MODES = ("eager", "static", "compile", "cuda_graph")


def check_mode(mode: str, device) -> str:
    if mode not in MODES:
        raise ConfigError(f"unknown decode mode {mode!r}: one of {', '.join(MODES)}")
    if mode == "cuda_graph" and torch.device(device).type != "cuda":
        raise ConfigError(f"decode mode 'cuda_graph' needs the model on a CUDA device, not {device} "
                          f"(use 'static' or 'compile' elsewhere)")
    return mode


def slots_for(mode: str, max_len: int, limit: int) -> int:
    """How many slots a fixed-shape cache gets for `max_len` positions: for "compile", the next power of two (at
    most `limit`), so that generate() calls with other lengths reuse the compiled step instead of recompiling it
    (30-100 s on a CPU); the unused slots are masked. Other modes: exactly max_len."""
    if mode != "compile":
        return max_len
    return min(1 << (max_len - 1).bit_length(), limit)


class StaticKVCache:
    """Per-layer keys/values for `max_len` slots, plus the on-device state of the fixed-shape step.

    The one-token steps are for generation: the new token of each row is a real token (no padding), which is what
    generate() feeds. Left padding inside a prompt is honoured (it is recorded in `key_mask` at prefill).
    """

    static = True

    def __init__(self, config, batch_size: int, max_len: int, device, dtype, head=None, mode: str = "static"):
        head_dim = config.n_embd // config.n_head
        shape = (batch_size, config.n_head, max_len, head_dim)
        # zeros, not empty: masked slots still enter the attention matmul, and garbage there could be NaN/inf.
        # One tensor per layer: under torch.compile a write into a slice of one big tensor is turned into copies
        # of that tensor, a write into a whole tensor is done in place.
        self.k = [torch.zeros(shape, device=device, dtype=dtype) for _ in range(config.n_layer)]
        self.v = [torch.zeros(shape, device=device, dtype=dtype) for _ in range(config.n_layer)]
        self.max_len = max_len
        self.length = 0          # Python-side count, for bounds checks and the caller's window logic
        self.head = head
        self.mode = mode
        self.slot = torch.zeros((), dtype=torch.long, device=device)                  # where the next token goes
        self.positions = torch.zeros(batch_size, 1, dtype=torch.long, device=device)  # its position id, per row
        self.key_mask = torch.zeros(batch_size, max_len, dtype=torch.bool, device=device)  # slots holding tokens
        self.stepping = False    # inside a fixed-shape step: update() writes at `slot`
        self._runner = None

    def reset(self):
        self.length = 0
        self.slot.zero_()
        self.key_mask.zero_()

    def reorder(self, beam_idx: torch.Tensor):
        """Row i takes row beam_idx[i]'s keys, values and masks (beam search keeps the beams that survive)."""
        for table in (*self.k, *self.v):
            table.copy_(table.index_select(0, beam_idx))
        self.positions.copy_(self.positions.index_select(0, beam_idx))
        self.key_mask.copy_(self.key_mask.index_select(0, beam_idx))

    def update(self, layer: int, k, v):
        """Write the new keys/values; return what attention reads (the prefix, or every slot in a step)."""
        if self.stepping:
            self.k[layer].index_copy_(2, self.slot.view(1), k.to(self.k[layer].dtype))
            self.v[layer].index_copy_(2, self.slot.view(1), v.to(self.v[layer].dtype))
            return self.k[layer], self.v[layer]
        start, end = self.length, self.length + k.size(2)
        self.k[layer][:, :, start:end] = k
        self.v[layer][:, :, start:end] = v
        return self.k[layer][:, :, :end], self.v[layer][:, :, :end]

    def record_prefill(self, attention_mask, past: int, T: int):
        """After an ordinary forward pass of T tokens at offset `past`: where the next step writes and reads."""
        end = past + T
        if attention_mask is None:
            self.key_mask[:, past:end] = True
            self.positions.fill_(end)
        else:
            self.key_mask[:, past:end] = attention_mask[:, past:end].bool()
            self.positions.copy_(attention_mask[:, :end].long().sum(-1, keepdim=True))
        self.slot.fill_(end)

    def step(self, model, tokens):
        """Logits (B, 1, vocab) for one new token per row (B, 1), through this cache's mode."""
        if self._runner is None:
            self._runner = _make_runner(self.mode, model, self)
        logits = self._runner(tokens)
        self.length += 1
        return logits


def fixed_shape_step(model, cache: StaticKVCache, tokens):
    """One token per row through every block, attending over all max_len slots: the same shapes at every call."""
    B = tokens.size(0)
    cache.key_mask.index_fill_(1, cache.slot.view(1), True)
    slots = torch.arange(cache.max_len, device=tokens.device)
    visible = cache.key_mask & (slots <= cache.slot)  # slots past this one may hold stale keys: never read them
    mask = visible.view(B, 1, 1, cache.max_len)
    x = model.wte(tokens) + model.wpe(cache.positions)
    cache.stepping = True
    try:
        for layer, block in enumerate(model.h):
            x = block(x, layer, cache, mask, False)
    finally:
        cache.stepping = False
    cache.positions.add_(1)
    cache.slot.add_(1)
    return model.logits(model.ln_f(x), head=cache.head)


def _make_runner(mode, model, cache):
    if mode == "static":
        return lambda tokens: fixed_shape_step(model, cache, tokens)
    if mode == "compile":
        compiled = _compiled_step(model)
        # a fresh (B, 1) tensor: generate() passes a column of its history, whose stride changes with its length
        return lambda tokens: compiled(model, cache, tokens.new_empty(tokens.shape).copy_(tokens))
    if mode == "cuda_graph":
        return CudaGraphStep(model, cache)
    raise ConfigError(f"decode mode {mode!r} has no fixed-shape step")


def compile_options(device) -> dict | None:
    """Inductor options for the compiled step. On the CPU the weights are frozen into it (constants: inductor
    packs each matmul's weight once into its own blocked layout) and its matmuls autotuned between inductor's C++
    GEMM template and the library call. For the one-row fp32 GEMVs of GPT-2 124M this streams 17.5-20.5 GB/s
    where MKL streams 13-17 (benchmarks/results/gpt2.md). It costs a second copy of the fp32 weights while the
    step lives, and a recompilation whenever the weights change (see _compiled_step). Elsewhere: the defaults."""
    if torch.device(device).type == "cpu" and _ISOLATED_COMPILES:
        # (and no autotuning report on stderr: ~30 lines per compile, of interest to inductor's developers only)
        return {"freezing": True, "max_autotune": True, "autotune_num_choices_displayed": 0,
                "max_autotune_report_choices_stats": False}
    return None


# A graph with frozen weights must never run for another model: that needs one isolated compile per model, which
# torch.compile offers from torch 2.10 on (isolate_recompiles). Older versions compile without freezing.
_ISOLATED_COMPILES = "isolate_recompiles" in inspect.signature(torch.compile).parameters


def _weights_key(model) -> tuple:
    """Which weights a compiled step froze: every parameter's and buffer's storage and in-place version."""
    return tuple((t.data_ptr(), t._version) for t in (*model.parameters(), *model.buffers()))


def _compiled_step(model):
    """One torch.compile of fixed_shape_step per model (kept on the model: a new cache of the same shapes reuses
    it; a new shape or dtype triggers one recompilation, never one per token). Where compile_options freezes the
    weights into the graph, the compile is also per weights: once they change (an optimizer step, load_state_dict,
    a copy of the model) it is compiled anew, and each model's graphs are isolated from every other's (a graph
    frozen with one model's weights never runs for another). Recompiling drops every compiled graph of this step,
    to free the stale frozen weights: other models' steps then compile again at their next call."""
    options = compile_options(model.device)
    key = _weights_key(model) if options else None
    cached = getattr(model, "_compiled_step", None)
    if cached is not None and cached[0] == key:
        return cached[1]
    if not options:
        step = torch.compile(fixed_shape_step, dynamic=False)
    else:
        if cached is not None:
            torch._dynamo.reset_code(fixed_shape_step.__code__)  # frees the stale frozen weights (and the rest)
            warnings.warn("decode mode 'compile': the weights changed since the compiled step was built, so it is "
                          "compiled again (seconds to a minute on a CPU); for a model that is still training, "
                          "decode with set_decode_mode('eager')", stacklevel=4)
        step = _frozen_compile(options)
    object.__setattr__(model, "_compiled_step", (key, step))  # a function, not a submodule or a parameter
    return step


def _frozen_compile(options: dict):
    """fixed_shape_step compiled in its own isolated cache, every call under `options`: they must be set while
    dynamo traces (it reads `freezing` to treat parameters as constants; torch.compile's options= reach only
    inductor), and compilation happens inside a call."""
    from torch._inductor import config as inductor_config  # loaded by torch.compile's first call anyway

    compiled = torch.compile(fixed_shape_step, dynamic=False, isolate_recompiles=True)
    options = {key: value for key, value in options.items() if hasattr(inductor_config, key)}  # torch versions

    def step(*args):
        with inductor_config.patch(options), warnings.catch_warnings():
            # inductor's autotuner calls a deprecated storage API of torch's own: not the user's concern
            warnings.filterwarnings("ignore", message="TypedStorage is deprecated")
            return compiled(*args)

    return step


class CudaGraphStep:
    """fixed_shape_step captured once as a CUDA graph for one cache; each call copies the new tokens into the
    graph's input buffer and replays it. The cache's tensors (keys, values, slot, positions, mask) are the graph's
    state: replays update them in place, exactly as the eager step does."""

    def __init__(self, model, cache: StaticKVCache):
        B = cache.positions.size(0)
        self.tokens = torch.zeros(B, 1, dtype=torch.long, device=cache.slot.device)
        # Warm up on a side stream (lazy cuBLAS/cuDNN initialisation must not happen during capture), then put
        # back the state that the warm-up step advanced: it wrote at `slot`, which the real step rewrites.
        saved = cache.slot.clone(), cache.positions.clone(), cache.key_mask.clone()
        stream = torch.cuda.Stream()
        stream.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(stream):
            fixed_shape_step(model, cache, self.tokens)
        torch.cuda.current_stream().wait_stream(stream)
        self.graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(self.graph):  # recorded, not run: the state is untouched by the capture itself
            self.logits = fixed_shape_step(model, cache, self.tokens)
        for tensor, value in zip((cache.slot, cache.positions, cache.key_mask), saved):
            tensor.copy_(value)

    def __call__(self, tokens):
        self.tokens.copy_(tokens)
        self.graph.replay()
        return self.logits.clone()  # the graph overwrites its output buffer at the next replay
