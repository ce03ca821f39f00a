"""Reading and writing state dicts safely, and loading them into a model without a random init.

* `.safetensors` is memory-mapped; `.bin/.pt/.pth/.ckpt` go through `torch.load(weights_only=True)` only, so a
  checkpoint can never run code on the reader's machine.
* `save_pretrained` writes genzoo's own format: `model.safetensors` + `config.json` (with "genzoo_family"), as one
  version of the folder (`write_folder_atomic`, from genzoo.atomic: a kill mid-save leaves old or new, never a mix;
  training code passes its state as `extra_files` so that it joins the same version).
* `build_and_load` constructs a model on the meta device and assigns the checkpoint's tensors into it, after
  one reconciliation that reports every missing key, unexpected key and shape mismatch at once.
"""
from __future__ import annotations

import contextlib
import json
import pickle
import stat
import threading
import zipfile
from pathlib import Path

import torch

from .atomic import recover_folder, write_folder_atomic  # noqa: F401  (checkpoint.write_folder_atomic)
from .errors import CheckpointError, GenzooError
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
    except Exception as e:   # whatever else a damaged file provokes is still a damaged file
        raise CheckpointError(f"{path} is not a readable safetensors file: {type(e).__name__}: {e}") from e


def _load_torch(path: Path, map_location):
    from .torchscript import is_torchscript, read_torchscript

    if is_torchscript(path):  # torch.jit.save archives: their tensors are read, their code never runs
        return read_torchscript(path)
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
    except Exception as e:   # a damaged pickle can raise nearly anything (KeyError, IndexError, struct.error, ...)
        raise CheckpointError(f"{path} is not a readable torch checkpoint (truncated or corrupt?): "
                              f"{type(e).__name__}: {str(e)[:200]}") from e
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


MAX_CONFIG_BYTES = 16 << 20   # a config.json is a few KB; anything this big is not one


def read_config(path) -> dict:
    """A config.json as a dict; anything else (missing, a folder or FIFO, binary, not JSON, not an object) is one
    CheckpointError naming the file."""
    path = Path(path)
    if path.is_dir() and path.name != CONFIG_NAME:
        path = path / CONFIG_NAME
    try:
        info = path.stat()
    except FileNotFoundError as e:
        raise CheckpointError(f"no {CONFIG_NAME} at {path}") from e
    except OSError as e:
        raise CheckpointError(f"cannot read {path}: {e}") from e
    if not stat.S_ISREG(info.st_mode):
        raise CheckpointError(f"{path} is not a regular file (a folder, FIFO or device?): it should be the JSON "
                              f"config saved with the model")
    if info.st_size > MAX_CONFIG_BYTES:
        raise CheckpointError(f"{path} is {info.st_size} bytes: too big to be a config.json "
                              f"(limit {MAX_CONFIG_BYTES})")
    try:
        config = json.loads(path.read_bytes().decode("utf-8-sig"))
    except UnicodeDecodeError as e:
        raise CheckpointError(f"{path} is not UTF-8 text (bad byte at offset {e.start}): is it really a config.json, "
                              f"not a binary file (a pickle, weights) saved under that name?") from None
    except json.JSONDecodeError as e:
        raise CheckpointError(f"{path} is not valid JSON: {e}") from None
    except (ValueError, RecursionError) as e:   # e.g. a 5000-digit number, or lists nested 100,000 deep
        raise CheckpointError(f"{path} is not a usable JSON config: {type(e).__name__}: {str(e)[:200]}") from None
    except OSError as e:
        raise CheckpointError(f"cannot read {path}: {e}") from e
    if not isinstance(config, dict):
        raise CheckpointError(f"{path} is not a JSON object (it holds a {type(config).__name__})")
    return config


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

    def write_weights(path):
        save_file(tensors, str(path), metadata={"format": "pt", "genzoo_family": family})

    files = {WEIGHTS_NAME: write_weights, CONFIG_NAME: write_config, **(extra_files or {})}
    write_folder_atomic(directory, files)
    return Path(directory)


def _kind(tensor) -> str:
    if not isinstance(tensor, torch.Tensor):
        return type(tensor).__name__
    return "float" if tensor.is_floating_point() else "complex" if tensor.is_complex() else "integer"


def reconcile(model: torch.nn.Module, state_dict: dict, path="<checkpoint>", ignore=()) -> None:
    """Raise one CheckpointError listing every missing key, unexpected key and shape mismatch."""
    expected = model.state_dict()
    missing = [k for k in expected if k not in state_dict]
    unexpected = [k for k in state_dict if k not in expected and not any(k.endswith(s) for s in ignore)]
    mismatched = [f"{k}: checkpoint {tuple(state_dict[k].shape)} vs model {tuple(v.shape)}"
                  for k, v in expected.items() if k in state_dict and tuple(state_dict[k].shape) != tuple(v.shape)]
    # A weight stored as integers (or an integer buffer stored as floats) is no weight of this model.
    mismatched += [f"{k}: checkpoint dtype {state_dict[k].dtype} vs model {v.dtype}" for k, v in expected.items()
                   if k in state_dict and _kind(state_dict[k]) != _kind(v)]
    if missing or unexpected or mismatched:
        lines = [f"{path} does not fit {type(model).__name__}:"]
        for title, items in (("missing keys", missing), ("unexpected keys", unexpected), ("shape mismatches", mismatched)):
            if items:
                shown = ", ".join(items[:12]) + (f", ... ({len(items)} in all)" if len(items) > 12 else "")
                lines.append(f"  {title}: {shown}")
        lines.append("  Is it a checkpoint of this family and format? Pass a checkpoint made for this model, or the "
                     "matching config.")
        raise CheckpointError("\n".join(lines))


# A config that contradicts its weights (n_layer 10**9 beside a 2-layer file) would make build() loop for hours, even
# on the meta device. Every parameter the model registers must come from the checkpoint, so building stops once it
# registers far more parameter tensors than the checkpoint holds.
_building = threading.local()
_hook_lock = threading.Lock()
_hook = None


class _TooManyParameters(Exception):
    pass


def _count_parameter(module, name, param):
    budget = getattr(_building, "budget", None)
    if budget is not None:
        _building.count += 1
        if _building.count > budget:
            raise _TooManyParameters
    return None


@contextlib.contextmanager
def _bounded_build(state_dict: dict, path):
    global _hook
    with _hook_lock:
        if _hook is None:
            _hook = torch.nn.modules.module.register_module_parameter_registration_hook(_count_parameter)
    _building.budget, _building.count = 2 * len(state_dict) + 1000, 0
    try:
        yield
    except _TooManyParameters:
        raise CheckpointError(f"{path}: its config describes a model with more than {_building.budget} parameter "
                              f"tensors, but the checkpoint holds {len(state_dict)} tensors: the config contradicts "
                              f"the weights (a layer or block count?). Use the config saved with these weights"
                              ) from None
    finally:
        _building.budget = None


def _sum_is_finite(tensor: torch.Tensor) -> torch.Tensor:
    # A sum stays NaN/inf once any term is (inf + -inf is NaN), so a finite sum proves every element finite; one
    # reduction pass, 30x faster than isfinite().all() on CPU. Half precision sums in float32 (no overflow).
    low = tensor.dtype in (torch.float16, torch.bfloat16) or tensor.element_size() < 2
    return torch.isfinite(tensor.sum(dtype=torch.float32) if low else tensor.sum())


def check_finite(tensors: dict, path="<checkpoint>", dtype=None) -> None:
    """Refuse floating tensors holding NaN or inf, naming them. One reduction per tensor and a single device sync
    for the whole dict (on a GPU, one .item() per tensor would dominate)."""
    names = [k for k, v in tensors.items() if (v.is_floating_point() or v.is_complex()) and v.numel()]
    if not names:
        return
    flags = torch.stack([_sum_is_finite(tensors[k]).all() for k in names])
    if bool(flags.all()):
        return
    # A non-finite sum can also be an overflow of large finite values: look element by element.
    bad = [k for k, ok in zip(names, flags.tolist()) if not ok and not bool(torch.isfinite(tensors[k]).all())]
    if not bad:
        return
    details = []
    for k in bad[:8]:
        t = tensors[k]
        details.append(f"{k} ({int(torch.isnan(t).sum())} NaN, {int(torch.isinf(t).sum())} inf of {t.numel()})")
    more = f", ... ({len(bad)} tensors in all)" if len(bad) > 8 else ""
    cast = f" (or overflowed when cast to {dtype})" if dtype is not None else ""
    raise CheckpointError(f"{path} holds NaN/inf weights{cast}: {', '.join(details)}{more}. Every output would be "
                          f"NaN: the checkpoint is damaged or was saved after training diverged. To load it anyway, "
                          f"pass allow_nonfinite=True")


def build_and_load(build, state_dict: dict, path="<checkpoint>", device=None, dtype=None, ignore=(),
                   allow_nonfinite: bool = False) -> torch.nn.Module:
    """Construct `build()` on the meta device (no random init), load `state_dict` strictly, move, eval().

    Modules whose buffers are not in the state dict (persistent=False) must recompute them in a
    `reset_buffers()` method: it is called after loading, on the target device. Weights holding NaN/inf (also after
    the cast to `dtype`) are refused, naming them, unless `allow_nonfinite`.
    """
    device = resolve_device(device)
    dtype = resolve_dtype(dtype, device)
    with torch.device("meta"), _bounded_build(state_dict, path):
        try:
            model = build()
        except GenzooError:
            raise
        except (TypeError, ValueError, AttributeError, KeyError, IndexError, RuntimeError, OverflowError,
                ZeroDivisionError) as e:   # a config value the family's checks let through, failing deep in torch
            raise CheckpointError(f"{path}: the model could not be built from its config ({type(e).__name__}: "
                                  f"{str(e)[:200]}). Is a config.json value of the wrong type or out of range? Use the "
                                  f"config saved with these weights") from e
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
    if not allow_nonfinite:
        check_finite(moved, path, dtype)
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
