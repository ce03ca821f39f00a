"""The one loading skeleton every family's from_pretrained runs:

    locate     a catalog name, local file or folder (or its diffusers sub-folder), Hub repo id + revision, or URL
               (+ sha256) -> the weights file and the config.json beside it
    refuse     a checkpoint of another family (genzoo's, diffusers' or transformers' config.json says so)
    read       the weights: safetensors memory-mapped, pickles with torch.load(weights_only=True) only
    convert    the family's converter: convert(checkpoint, config_json, path, **options) -> (state_dict, config)
    build      the model on the meta device, the converted tensors assigned (no random init), device/dtype

    model = loader.load("gpt2", "gpt2-xl", convert=convert.convert, build=GPT,
                        weight_names=("model.safetensors", "pytorch_model.bin"), device="cuda")

A family passes what only it knows (file names, sub-folders, its converter's options such as a GAN's part);
everything else, and every error about finding files, lives here.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from . import checkpoint, hub, registry
from .catalog import ModelEntry
from .errors import CheckpointError, GenzooError, HubError, NotFoundError
from .runtime import resolve_device, resolve_dtype

CONFIG_NAME = checkpoint.CONFIG_NAME

# config.json markers of the formats genzoo reads, and the family that reads each.
DIFFUSERS_CLASSES = {"UNet2DModel": "diffusion", "AutoencoderKL": "vae"}
TRANSFORMERS_TYPES = {"gpt2": "gpt2"}
WHAT = {"gpt2": "GPT-2", "diffusion": "diffusion U-Net", "vae": "VAE", "gan": "GAN", "cyclegan": "CycleGAN"}


@dataclass
class Located:
    """Where a checkpoint's files are, once found on disk (downloaded if need be)."""
    weights: Path                  # the weights file
    config: dict                   # its config.json ({} when there is none)
    config_path: Path | None
    source: str                    # what the files were found from: a folder, file, repo id or URL
    subfolder: str                 # "" or e.g. "unet/" inside a pipeline folder or repo
    revision: str | None
    entry: ModelEntry | None       # the catalog entry, for a catalog name

    @property
    def where(self) -> Path:
        return self.config_path or self.weights


def locate(name_or_path, family: str, weight_names, revision=None, subfolders=("",),
           config_required: bool = False) -> Located:
    """Find the weights file (the first of `weight_names` present) and its config.json, refusing a checkpoint
    whose config.json belongs to another family before anything else is read or downloaded.

    `subfolders` are tried in order, e.g. ("", "unet/") reads a diffusers pipeline's U-Net. `config_required`:
    a Hub repo without config.json is an error (rather than a guess from the tensor shapes).
    """
    source, entry = registry.resolve(name_or_path, family)
    revision = revision or (entry.revision if entry else None)
    if hub.is_url(source):
        weights = hub.download_url(source, sha256=entry.sha256 if entry else None)
        return Located(weights, {}, None, source, "", revision, entry)
    path = Path(os.path.expanduser(source))
    if path.is_file():
        config_path = path.parent / CONFIG_NAME   # present but not a file (a folder, a FIFO): read_config refuses it
        return _found(path, config_path if os.path.lexists(config_path) else None, source, "", revision, entry, family)
    if path.is_dir():
        return _locate_in_folder(path, weight_names, subfolders, revision, entry, family, config_required)
    if str(source).startswith((".", "/", "~")) or path.suffix in (".pth", ".pt", ".bin", ".safetensors", ".ckpt"):
        raise NotFoundError(f"no checkpoint file or folder at {path}")
    return _locate_in_repo(source, weight_names, subfolders, revision, entry, config_required, family)


def _read_config(config_path, family: str) -> dict:
    config = checkpoint.read_config(config_path) if config_path is not None else {}
    if not isinstance(config, dict):
        raise CheckpointError(f"{config_path} is not a JSON object (it holds a {type(config).__name__})")
    refuse_other_family(config, family, config_path)
    return config


def _found(weights, config_path, source, subfolder, revision, entry, family) -> Located:
    config = _read_config(config_path, family)
    return Located(Path(weights), config, config_path, str(source), subfolder, revision, entry)


def _locate_in_folder(folder: Path, weight_names, subfolders, revision, entry, family, config_required) -> Located:
    if config_required and not any(os.path.lexists(folder / sub / CONFIG_NAME) for sub in subfolders):
        raise HubError(f"{folder} has no {_config_names(subfolders)}: is it a {family} checkpoint?")
    for sub in subfolders:
        inner = folder / sub
        config_path = inner / CONFIG_NAME if os.path.lexists(inner / CONFIG_NAME) else None
        if config_path is not None:
            _read_config(config_path, family)
        weights = checkpoint.find_weights_file(inner, weight_names) if inner.is_dir() else None
        if weights is not None:
            return _found(weights, config_path, folder, sub, revision, entry, family)
    tried = " or ".join(f"{folder / sub}" for sub in subfolders) if subfolders != ("",) else str(folder)
    raise NotFoundError(f"{tried} holds none of {list(weight_names)}; it holds: "
                   f"{sorted(p.name for p in folder.iterdir())[:20]}")


def _locate_in_repo(repo_id: str, weight_names, subfolders, revision, entry, config_required, family) -> Located:
    # Without network, fail now naming every missing file, rather than one at a time after retries.
    hub.check_fetchable(repo_id, entry.files if entry else (subfolders[0] + CONFIG_NAME, "|".join(weight_names)),
                        revision)
    for sub in subfolders:
        config_path = hub.resolve_optional(repo_id, sub + CONFIG_NAME, revision)
        if config_path is not None:
            break
    else:
        if config_required:
            raise HubError(f"Hub repo {repo_id!r} (revision {revision or 'main'}) has no {_config_names(subfolders)}"
                           + (" and offline mode is set (HF_HUB_OFFLINE/GENZOO_OFFLINE): is it in the Hugging Face "
                              "cache?" if hub.is_offline() else ""))
        sub, config_path = "", None
    names = [f for f in (entry.files if entry else ()) if not f.endswith(".json")]
    names = [n for group in names for n in group.split("|")] or list(weight_names)
    if config_path is not None:
        _read_config(config_path, family)   # refuse another family's repo before downloading its weights
    weights = hub.resolve_first(repo_id, [sub + n for n in names], revision)
    return _found(weights, config_path, repo_id, sub, revision, entry, family)


def _config_names(subfolders) -> str:
    first, *others = [sub + CONFIG_NAME for sub in subfolders]
    return first + (f" (nor {', '.join(others)})" if others else "")


def refuse_other_family(config: dict, family: str, where) -> None:
    """A checkpoint whose config.json says it belongs to another family is refused here, naming that family."""
    found = config.get("genzoo_family")
    if found is not None and found != family:
        raise CheckpointError(f"{where} is a genzoo '{found}' checkpoint, not '{family}': load it with "
                              f"genzoo.{found}.from_pretrained (or genzoo.load)")
    class_name = config.get("_class_name")
    if found is None and class_name is not None and DIFFUSERS_CLASSES.get(class_name) != family:
        owner = DIFFUSERS_CLASSES.get(class_name)
        hint = f": load it with genzoo.{owner}.from_pretrained" if owner else " (genzoo does not read this class)"
        raise CheckpointError(f"{where} is a diffusers {class_name}, not a {WHAT[family]}{hint}")
    model_type = config.get("model_type")
    if found is None and isinstance(model_type, str) and TRANSFORMERS_TYPES.get(model_type) != family:
        owner = TRANSFORMERS_TYPES.get(model_type)
        hint = f": load it with genzoo.{owner}.from_pretrained" if owner else ""
        raise CheckpointError(f"{where} is a transformers {model_type!r} checkpoint (config.json model_type), not "
                              f"a {WHAT[family]}{hint}")


def read(located: Located):
    """The checkpoint object: a dict of tensors, or what a trainer wrapped around one (nanoGPT's ckpt.pt)."""
    return checkpoint.load_state_dict(located.weights)


def load(family: str, name_or_path, *, convert, build, weight_names, device="auto", dtype=None, revision=None,
         subfolders=("",), config_required: bool = False, allow_nonfinite: bool = False, **options):
    """locate -> refuse -> read -> convert -> build: the whole of a plain from_pretrained."""
    device = resolve_device(device)   # a bad device fails before any download
    dtype = resolve_dtype(dtype, device)
    located = locate(name_or_path, family, weight_names, revision, subfolders, config_required)
    return load_located(located, family, convert=convert, build=build, device=device, dtype=dtype,
                        allow_nonfinite=allow_nonfinite, **options)


def load_located(located: Located, family: str, *, convert, build, device, dtype, allow_nonfinite: bool = False,
                 **options):
    try:
        state_dict, config = convert(read(located), located.config, located.weights, **options)
    except (TypeError, ValueError, KeyError, AttributeError, IndexError) as e:
        if isinstance(e, GenzooError):
            if str(located.where) in str(e) or str(located.weights) in str(e):
                raise
            raise type(e)(f"{located.where}: {e}") from e   # say which file holds the bad value
        # a config value or checkpoint entry of a type the converter did not expect: still the file's fault
        raise CheckpointError(f"{located.where}: cannot read this checkpoint ({type(e).__name__}: {str(e)[:200]}): "
                              f"is a config.json value of the wrong type, or a key missing?") from e
    return checkpoint.build_and_load(lambda: build(config), state_dict, located.weights, device=device, dtype=dtype,
                                     allow_nonfinite=allow_nonfinite)
