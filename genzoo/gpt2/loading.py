"""from_pretrained: a catalog name, Hub repo id or local path -> a GPT on the requested device, no random init.

name -> registry -> files (hub) -> state dict (checkpoint: mmap'd safetensors, or weights_only pickles)
     -> convert (Hugging Face / nanoGPT / genzoo) -> GPT built on the meta device, tensors assigned -> device/dtype
"""
from __future__ import annotations

import os
import pickle
from pathlib import Path

import torch

from .. import checkpoint, hub, registry
from ..errors import CheckpointError
from ..runtime import resolve_device, resolve_dtype
from . import convert
from .model import GPT, GPTConfig

WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin", "ckpt.pt")


def from_pretrained(name_or_path, device="auto", dtype=None, revision=None, quantize=None) -> GPT:
    """Load GPT-2 weights.

    name_or_path: a catalog name ("gpt2", "gpt2-medium", "gpt2-large", "gpt2-xl", "shakespeare-char"), a Hub repo
      id ("openai-community/gpt2"), or a local folder or file in any of these formats: Hugging Face
      (model.safetensors / pytorch_model.bin, with or without the "transformer." prefix), nanoGPT (ckpt.pt), or
      genzoo's save_pretrained; or the URL of one weights file (downloaded once into genzoo's cache).
    device: "auto" (cuda, then mps, then cpu), "cpu", "cuda", ... dtype: None keeps the checkpoint's; or
      torch.float16/"bfloat16"/... quantize: None, "int8" or "bf16" (weight-only, for decoding: see quantize.py).
      The returned model is in eval() mode.
    """
    source, entry = _resolve(name_or_path)
    if entry is not None:
        revision = revision or entry.revision
    # A folder, a Hub repo or a file's folder may hold config.json; a URL is one weights file (config from shapes).
    config_path = None if hub.is_url(source) else hub.resolve_optional(source, checkpoint.CONFIG_NAME, revision)
    config = checkpoint.read_config(config_path) if config_path is not None else {}
    _refuse_other_families(config, config_path or source)
    weights = hub.resolve_first(source, WEIGHT_FILES, revision)

    state_dict, config = read_checkpoint(weights, config)
    state_dict = _contiguous_where_copied(state_dict, resolve_device(device), resolve_dtype(dtype))
    model = checkpoint.build_and_load(lambda: GPT(config), state_dict, weights, device=device, dtype=dtype)
    return model.quantize(quantize) if quantize else model


def _contiguous_where_copied(state_dict: dict, device, dtype) -> dict:
    """Hugging Face's Conv1D weights arrive as transposed views of the (memory-mapped) file.

    On the CPU in the file's dtype they stay views: no copy, RSS stays near the file size, and fp32 matmuls are
    as fast on them. A tensor that has to be copied anyway (another device or dtype) is copied once, straight
    into nn.Linear's contiguous layout: bf16 matmuls on a transposed weight are ~10x slower on a CPU without
    native bf16 (measured, see benchmarks/results/gpt2.md), and contiguous is the layout every kernel expects.
    """
    out = {}
    for key, value in state_dict.items():
        new_dtype = dtype if (dtype is not None and value.is_floating_point()) else value.dtype
        if not value.is_contiguous() and (value.device != device or new_dtype != value.dtype):
            value = value.to(device=device, dtype=new_dtype, memory_format=torch.contiguous_format)
        out[key] = value
    return out


def _resolve(name_or_path):
    """(source, catalog entry or None). An explicit filesystem path skips the catalog: reading the catalog imports
    every family's package (see registry._load_catalogs), which costs about a second on a cold start."""
    path = os.fspath(name_or_path)
    if os.sep in path and os.path.exists(os.path.expanduser(path)):
        return os.path.expanduser(path), None
    return registry.resolve(path, "gpt2")


def read_checkpoint(weights: Path, config: dict) -> tuple[dict, GPTConfig]:
    """Any supported file (+ its config.json, possibly empty) -> (genzoo state dict, GPTConfig)."""
    obj = checkpoint.load_state_dict(weights)
    if config.get("genzoo_family") == "gpt2":
        state_dict = checkpoint.unwrap_state_dict(obj, weights)
        convert.require_gpt2_keys(state_dict, weights)
        return state_dict, GPTConfig.from_dict(config)
    if isinstance(obj, dict) and isinstance(obj.get("model_args"), dict):  # nanoGPT's ckpt.pt
        state_dict = convert.from_nanogpt(checkpoint.unwrap_state_dict(obj["model"], weights), weights)
        return state_dict, _guard(convert.config_from_nanogpt, obj["model_args"], state_dict,
                                  _nanogpt_chars(Path(weights).parent), path=weights)
    state_dict = convert.from_huggingface(checkpoint.unwrap_state_dict(obj, weights), weights)
    return state_dict, _guard(convert.config_from_huggingface, config, state_dict, weights, path=weights)


def _guard(fn, *args, path):
    try:
        return fn(*args)
    except KeyError as e:
        raise CheckpointError(f"{path} lacks {e.args[0]!r}, which GPT-2 needs to size the model") from None


def _refuse_other_families(config: dict, where) -> None:
    checkpoint.check_family(config, "gpt2", where)
    if "_class_name" in config:
        raise CheckpointError(f"{where} is a diffusers {config['_class_name']} checkpoint, not GPT-2: "
                              f"load it with genzoo.load() or the family it belongs to")
    if config.get("model_type") not in (None, "gpt2"):
        raise CheckpointError(f"{where} is a {config['model_type']!r} checkpoint (config.json model_type), not GPT-2")


class _PlainDataUnpickler(pickle.Unpickler):
    """Unpickles dicts, lists, strings and numbers only: any class or function reference is refused."""

    def find_class(self, module, name):
        raise pickle.UnpicklingError(f"refused to load {module}.{name} (genzoo unpickles plain data only)")


def _nanogpt_chars(folder: Path) -> str | None:
    """nanoGPT keeps a character model's alphabet in meta.pkl ({"itos": {0: "\\n", ...}}) beside the data."""
    meta = folder / "meta.pkl"
    if not meta.is_file():
        return None
    try:
        with open(meta, "rb") as f:
            itos = _PlainDataUnpickler(f).load()["itos"]
        return "".join(itos[i] for i in range(len(itos)))
    except (pickle.UnpicklingError, KeyError, TypeError, EOFError) as e:
        raise CheckpointError(f"{meta} is not a nanoGPT meta.pkl with a plain 'itos' table: {e}") from e
