"""Reading and writing state dicts safely, and loading them into a model without a random init.

* `.safetensors` is memory-mapped; `.bin/.pt/.pth/.ckpt` go through `torch.load(weights_only=True)` only, so a
  checkpoint can never run code on the reader's machine.
* `save_pretrained` writes genzoo's own format: `model.safetensors` + `config.json` (with "genzoo_family").
* `build_and_load` constructs a model on the meta device and assigns the checkpoint's tensors into it, after
  one reconciliation that reports every missing key, unexpected key and shape mismatch at once.
"""
from __future__ import annotations

import json
import os
import pickle
import zipfile
from pathlib import Path

import torch

from .atomic import recover_folder, write_folder_atomic  # noqa: F401  (checkpoint.write_folder_atomic)
from .errors import CheckpointError
from .runtime import resolve_device, resolve_dtype

WEIGHTS_NAME = "model.safetensors"
CONFIG_NAME = "config.json"
FORMAT_VERSION = 1


def load_state_dict(path, map_location="cpu") -> dict[str, torch.Tensor]:
    """Read every tensor of a checkpoint file. Pickles are read with weights_only=True and nothing else."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"no checkpoint file at {path}")
    if path.suffix == ".safetensors":
        return _load_safetensors(path, map_location)
    return _load_torch(path, map_location)


def _load_safetensors(path: Path, map_location) -> dict[str, torch.Tensor]:
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    try:
        return load_file(str(path), device=str(map_location))
    except (SafetensorError, OSError, ValueError, RuntimeError) as e:
        raise CheckpointError(f"{path} is not a readable safetensors file (truncated or corrupt?): {e}") from e


def _load_torch(path: Path, map_location):
    # mmap avoids a second copy in RAM, but only the zip format (torch >= 1.6) supports it.
    mmap = zipfile.is_zipfile(path)
    try:
        obj = torch.load(path, map_location=map_location, weights_only=True, mmap=mmap)
    except pickle.UnpicklingError as e:
        raise CheckpointError(
            f"refused to load {path}: it is a pickle that needs more than tensors and plain containers "
            f"(weights_only=True rejected it, and genzoo never unpickles code). Convert it to safetensors in a "
            f"trusted environment. Detail: {str(e).splitlines()[0]}") from e
    except (RuntimeError, EOFError, OSError, ValueError, zipfile.BadZipFile) as e:
        raise CheckpointError(f"{path} is not a readable torch checkpoint (truncated or corrupt?): {e}") from e
    return obj


def unwrap_state_dict(obj, path="<checkpoint>", nested_keys=("state_dict", "model", "model_state_dict")) -> dict:
    """Trainers wrap state dicts ({"state_dict": ...}, {"model": ...}); return the dict of tensors inside."""
    if isinstance(obj, dict) and obj and all(isinstance(v, torch.Tensor) for v in obj.values()):
        return obj
    if isinstance(obj, dict):
        for key in nested_keys:
            if isinstance(obj.get(key), dict):
                return unwrap_state_dict(obj[key], path, nested_keys)
    raise CheckpointError(f"{path} holds no state dict of tensors (top-level keys: {list(obj)[:10] if isinstance(obj, dict) else type(obj).__name__})")


def rename_keys(state_dict: dict, table) -> dict:
    """Apply a converter's rename table: (regex pattern, replacement) pairs, every pair to every key, in order.

    Raises CheckpointError if two keys end up with the same name (a checkpoint mixing two spellings).
    """
    import re

    compiled = [(re.compile(pattern), replacement) for pattern, replacement in table]
    out = {}
    for key, tensor in state_dict.items():
        new_key = key
        for pattern, replacement in compiled:
            new_key = pattern.sub(replacement, new_key)
        if new_key in out:
            raise CheckpointError(f"two checkpoint keys map to {new_key!r} (the second is {key!r}): the checkpoint "
                                  f"mixes two spellings of the same weight")
        out[new_key] = tensor
    return out


def strip_common_prefix(state_dict: dict, prefixes=("module.", "_orig_mod.")) -> dict:
    """Drop wrapper prefixes (DataParallel/DDP's "module.", torch.compile's "_orig_mod.") carried by every key."""
    for prefix in prefixes:
        if state_dict and all(k.startswith(prefix) for k in state_dict):
            state_dict = {k[len(prefix):]: v for k, v in state_dict.items()}
    return state_dict


def read_config(path) -> dict:
    path = Path(path)
    if path.is_dir():
        path = path / CONFIG_NAME
    try:
        with open(path) as f:
            return json.load(f)
    except FileNotFoundError as e:
        raise CheckpointError(f"no {CONFIG_NAME} at {path}") from e
    except json.JSONDecodeError as e:
        raise CheckpointError(f"{path} is not valid JSON: {e}") from e


def save_pretrained(directory, state_dict: dict, config: dict, family: str, extra_files: dict | None = None) -> Path:
    """Write `model.safetensors` + `config.json` (genzoo's own format) into `directory`; returns it.

    The folder is written as one version (see genzoo.atomic): a process killed mid-save leaves the previous
    checkpoint or the new one, never a mix. `extra_files` (name -> writer(path)) join that version, e.g.
    {"train_state.pt": lambda path: torch.save(state, path)}.
    """
    from safetensors.torch import save_file

    tensors, seen = {}, set()
    for key, tensor in state_dict.items():
        tensor = tensor.detach()
        # safetensors refuses tensors that share storage (tied weights): store a copy of any repeat.
        ptr = tensor.untyped_storage().data_ptr() if tensor.device.type != "meta" else None
        if ptr in seen:
            tensor = tensor.clone()
        seen.add(ptr)
        tensors[key] = tensor.contiguous().cpu()
    full_config = {"genzoo_family": family, "genzoo_format": FORMAT_VERSION, **config}

    def write_config(path):
        with open(path, "w") as f:
            json.dump(full_config, f, indent=2, sort_keys=False)
            f.write("\n")

    files = {WEIGHTS_NAME: lambda path: save_file(tensors, str(path), metadata={"format": "pt", "genzoo_family": family}),
             CONFIG_NAME: write_config, **(extra_files or {})}
    write_folder_atomic(directory, files)
    return Path(directory)


def check_family(config: dict, family: str, path) -> None:
    """Refuse a genzoo checkpoint of another family with a clear message."""
    found = config.get("genzoo_family")
    if found is not None and found != family:
        raise CheckpointError(f"{path} is a genzoo '{found}' checkpoint, not '{family}': load it with genzoo.{found}.from_pretrained")


def reconcile(model: torch.nn.Module, state_dict: dict, path="<checkpoint>", ignore=()) -> None:
    """Raise one CheckpointError listing every missing key, unexpected key and shape mismatch."""
    expected = model.state_dict()
    missing = [k for k in expected if k not in state_dict]
    unexpected = [k for k in state_dict if k not in expected and not any(k.endswith(s) for s in ignore)]
    mismatched = [f"{k}: checkpoint {tuple(state_dict[k].shape)} vs model {tuple(v.shape)}"
                  for k, v in expected.items() if k in state_dict and tuple(state_dict[k].shape) != tuple(v.shape)]
    if missing or unexpected or mismatched:
        lines = [f"{path} does not fit {type(model).__name__}:"]
        for title, items in (("missing keys", missing), ("unexpected keys", unexpected), ("shape mismatches", mismatched)):
            if items:
                shown = ", ".join(items[:12]) + (f", ... ({len(items)} in all)" if len(items) > 12 else "")
                lines.append(f"  {title}: {shown}")
        lines.append("  Is it a checkpoint of this family and format? Pass a checkpoint made for this model, or the "
                     "matching config.")
        raise CheckpointError("\n".join(lines))


def build_and_load(build, state_dict: dict, path="<checkpoint>", device=None, dtype=None, ignore=()) -> torch.nn.Module:
    """Construct `build()` on the meta device (no random init), load `state_dict` strictly, move, eval().

    Modules whose buffers are not in the state dict (persistent=False) must recompute them in a
    `reset_buffers()` method: it is called after loading, on the target device.
    """
    device = resolve_device(device)
    dtype = resolve_dtype(dtype)
    with torch.device("meta"):
        model = build()
    reconcile(model, state_dict, path, ignore=ignore)
    expected = model.state_dict()
    state_dict = {k: v for k, v in state_dict.items() if k in expected}
    # Cast while moving, one copy at most; floating tensors only (integer buffers keep their dtype).
    moved = {}
    for k, v in state_dict.items():
        target_dtype = dtype if (dtype is not None and v.is_floating_point()) else None
        if v.device != device or target_dtype not in (None, v.dtype):
            # A copy happens anyway: make it contiguous (a transposed view stays slow, e.g. bf16 matmuls on CPU).
            v = v.to(device=device, dtype=target_dtype, memory_format=torch.contiguous_format)
        moved[k] = v
    model.load_state_dict(moved, strict=True, assign=True)
    for module in model.modules():
        if hasattr(module, "reset_buffers"):
            module.reset_buffers()
    leftover = [n for n, t in list(model.named_parameters()) + list(model.named_buffers()) if t.device.type == "meta"]
    if leftover:
        raise CheckpointError(f"{type(model).__name__} has tensors that no checkpoint key and no reset_buffers() filled: {leftover[:8]}")
    return model.eval()


def find_weights_file(directory, candidates=(WEIGHTS_NAME, "diffusion_pytorch_model.safetensors", "pytorch_model.bin",
                                              "diffusion_pytorch_model.bin")) -> Path | None:
    directory = Path(directory)
    for name in candidates:
        if (directory / name).is_file():
            return directory / name
    return None
