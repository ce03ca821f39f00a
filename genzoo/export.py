"""Export to the formats other libraries load, and push to the Hugging Face Hub.

    export(model, "out", "huggingface")        # a folder transformers' GPT2LMHeadModel.from_pretrained reads
    push_to_hub(model, "me/my-gpt", format="huggingface", private=True)

Each family's `genzoo/<family>/export.py` lists its FORMATS and writes them; this module picks the family from the
model's class, holds the small writers they share (nothing is overwritten unless asked; each file appears whole or
not at all), writes the model card, and runs `genzoo export` / `genzoo push`.
"""
from __future__ import annotations

import importlib
import json
import os
import tempfile
from pathlib import Path

import torch

from .errors import ConfigError, GenzooError, HubError

FAMILIES = ("gpt2", "gan", "cyclegan", "vae", "diffusion")


# -- dispatch ------------------------------------------------------------------------------------------------------
def family_of_model(model) -> str:
    parts = type(model).__module__.split(".")
    if len(parts) >= 2 and parts[0] == "genzoo" and parts[1] in FAMILIES:
        return parts[1]
    raise ConfigError(f"{type(model).__name__} is not a genzoo model: export() takes a model returned by a genzoo "
                      f"family's from_pretrained (or built from its classes)")


def family_exporter(family: str):
    return importlib.import_module(f"genzoo.{family}.export")


def formats_for(model) -> tuple[str, ...]:
    return family_exporter(family_of_model(model)).FORMATS


def export(model, directory, format: str = "genzoo", overwrite: bool = False) -> Path:
    """Write `model` into `directory` in `format` (see formats_for(model)); returns the folder.

    "genzoo" is genzoo's own format (what save_pretrained writes). Files already in the folder are never
    replaced unless overwrite=True."""
    exporter = family_exporter(family_of_model(model))
    if format not in exporter.FORMATS:
        raise ConfigError(f"{type(model).__name__} cannot be exported as {format!r}: its formats are "
                          f"{', '.join(exporter.FORMATS)}")
    return Path(exporter.export(model, directory, format, overwrite=overwrite))


# -- writers the families share ------------------------------------------------------------------------------------
def prepare_directory(directory, names, overwrite: bool) -> Path:
    """Create `directory`; refuse (before writing anything) if any of `names` is already in it."""
    directory = Path(directory).expanduser()
    if directory.exists() and not directory.is_dir():
        raise ConfigError(f"{directory} is a file, not a folder: export writes a folder")
    existing = [n for n in names if (directory / n).exists()]
    if existing and not overwrite:
        raise ConfigError(f"{directory} already holds {', '.join(existing)}: pass overwrite=True (--overwrite) to "
                          f"replace them, or choose another folder")
    directory.mkdir(parents=True, exist_ok=True)
    return directory


def _atomic(path: Path, write) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.parent / f".{path.name}.{os.getpid()}.part"
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
    return path


def write_json(path, obj) -> Path:
    def write(tmp):
        with open(tmp, "w") as f:
            json.dump(obj, f, indent=2)
            f.write("\n")
    return _atomic(Path(path), write)


def write_text(path, text: str) -> Path:
    return _atomic(Path(path), lambda tmp: Path(tmp).write_text(text))


def write_safetensors(path, state_dict: dict, metadata: dict | None = None) -> Path:
    """safetensors refuses tensors sharing memory: any repeat is stored as its own copy."""
    from safetensors.torch import save_file

    tensors, seen = {}, set()
    for key, tensor in state_dict.items():
        tensor = tensor.detach().cpu().contiguous()
        ptr = tensor.untyped_storage().data_ptr()
        tensors[key] = tensor.clone() if ptr in seen else tensor
        seen.add(ptr)
    return _atomic(Path(path), lambda tmp: save_file(tensors, str(tmp), metadata={"format": "pt", **(metadata or {})}))


def write_torch(path, obj) -> Path:
    """torch.save of tensors and plain containers only (readable with torch.load(weights_only=True))."""
    def detach(value):
        if isinstance(value, torch.Tensor):
            return value.detach().cpu()
        if isinstance(value, dict):
            return {k: detach(v) for k, v in value.items()}
        return value
    return _atomic(Path(path), lambda tmp: torch.save(detach(obj), tmp))


# -- the model card ------------------------------------------------------------------------------------------------
LOADERS = {
    "genzoo": "from genzoo import {family}\nmodel = {family}.from_pretrained(\"{repo_id}\")",
    "huggingface": "from transformers import GPT2LMHeadModel\nmodel = GPT2LMHeadModel.from_pretrained(\"{repo_id}\")",
    "diffusers": "import diffusers\nmodel = diffusers.{diffusers_class}.from_pretrained(\"{repo_id}\")",
}


def model_card(model, repo_id: str, format: str, training_data: str | None = None, quality=None) -> str:
    """README.md for the Hub: what the model is, its config, what it was trained on, how good it is, how to load it."""
    family = family_of_model(model)
    config = _config_dict(model)
    diffusers_class = "DDPMPipeline" if family == "diffusion" else "AutoencoderKL"
    load = LOADERS.get(format, LOADERS["genzoo"]).format(family=family, repo_id=repo_id, diffusers_class=diffusers_class)
    if isinstance(quality, dict):
        quality = "\n".join(f"- {k}: {v}" for k, v in quality.items())
    params = sum(p.numel() for p in model.parameters())
    lines = [
        "---", "library_name: genzoo", f"tags:\n- genzoo\n- {family}\n- {format}", "---", "",
        f"# {repo_id.split('/')[-1]}", "",
        f"A genzoo **{family}** model ({type(model).__name__}, {params:,} parameters), in the **{format}** format.", "",
        "## Training data", "", training_data or "Not recorded (pass training_data= to push_to_hub).", "",
        "## Measured quality", "", quality or "Not measured (pass quality= to push_to_hub).", "",
        "## Config", "", "```json", json.dumps(config, indent=2, default=str), "```", "",
        "## Load it", "", "```python", load, "```", "",
    ]
    return "\n".join(lines)


def _config_dict(model) -> dict:
    config = getattr(model, "config", None)
    if config is None and hasattr(model, "configs"):
        return model.configs()
    if hasattr(config, "to_dict"):
        return config.to_dict()
    from dataclasses import asdict, is_dataclass

    return asdict(config) if is_dataclass(config) else {}


# -- push to the Hub -----------------------------------------------------------------------------------------------
def push_to_hub(model, repo_id: str, format: str = "genzoo", private: bool = False, revision: str | None = None,
                token: str | None = None, commit_message: str | None = None, training_data: str | None = None,
                quality=None) -> str:
    """Export `model` in `format`, add a model card (README.md), create the repo if needed and upload the folder
    through huggingface_hub. The token is `token`, else huggingface_hub's (HF_TOKEN, `huggingface-cli login`).
    Returns the URL of the commit. No token, offline mode or no network: HubError, saying which."""
    import huggingface_hub
    from huggingface_hub import HfApi

    if "/" not in repo_id or repo_id.count("/") > 1:
        raise ConfigError(f"repo_id must be 'user/name' or 'org/name', not {repo_id!r}")
    if os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes", "on"):
        raise HubError(f"cannot push {repo_id}: offline mode is set (HF_HUB_OFFLINE); unset it to upload")
    if (token or huggingface_hub.get_token()) is None:
        raise HubError(f"cannot push {repo_id}: no Hugging Face token. Run `huggingface-cli login`, set HF_TOKEN, "
                       f"or pass token=...")
    with tempfile.TemporaryDirectory(prefix="genzoo-push-") as tmp:
        folder = export(model, Path(tmp) / "model", format)
        write_text(folder / "README.md", model_card(model, repo_id, format, training_data, quality))
        api = HfApi(token=token)
        try:
            api.create_repo(repo_id, private=private, exist_ok=True, repo_type="model")
            if revision:
                api.create_branch(repo_id, branch=revision, exist_ok=True)
            commit = api.upload_folder(folder_path=str(folder), repo_id=repo_id, revision=revision,
                                       commit_message=commit_message or f"Upload {type(model).__name__} ({format}) "
                                                                        f"with genzoo")
        except GenzooError:
            raise
        except Exception as e:  # huggingface_hub raises HTTP, connection and auth errors of many classes
            raise HubError(f"pushing to {repo_id} failed: {type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"
                           f" (network, token permissions, or repo name?)") from e
    return str(getattr(commit, "commit_url", commit))


# -- the commands --------------------------------------------------------------------------------------------------
def _saved_model(config_path: Path):
    """What a genzoo config.json says it holds ("model"; genzoo 0.1 wrote "kind")."""
    config = json.loads(config_path.read_text())
    return config.get("model") or config.get("kind")


def _load_for_export(name: str, family: str | None) -> list:
    """The networks a checkpoint holds, for export: a GAN folder's generator and (if saved) discriminator, a CycleGAN
    training folder's four networks as one CycleGAN, a U-Net with its noise schedule; else the one model."""
    from .registry import family_of, load, resolve

    family = family or family_of(name)
    folder = Path(resolve(name, family)[0]).expanduser()
    config_path = folder / "config.json"
    if family == "cyclegan" and config_path.is_file() and _saved_model(config_path) == "cyclegan":
        from .cyclegan import load_cyclegan

        return [load_cyclegan(folder, device="cpu")]
    models = [load(name, family=family, device="cpu")]
    if family == "gan":
        from .gan import discriminator_from_pretrained

        try:
            models.append(discriminator_from_pretrained(name, device="cpu"))
        except GenzooError:
            pass  # the checkpoint holds a generator only
    if family == "diffusion":
        from .diffusion import scheduler_config

        models[0].scheduler_config = scheduler_config(name)
    return models


def _card_defaults(name: str, family: str | None) -> tuple[str | None, dict | None]:
    """What the checkpoint itself says about its training: the catalog's description, and the training.json a
    genzoo training script leaves beside the weights (its data set and the last logged metrics)."""
    from .registry import family_of, find, resolve

    entry = find(name)
    training_data = entry.description if entry is not None else None
    report = Path(resolve(name, family or family_of(name))[0]).expanduser() / "training.json"
    if not report.is_file():
        return training_data, None
    log = json.loads(report.read_text())
    last = (log.get("history") or [{}])[-1]
    quality = {f"{k} (last logged, {log.get('script', 'training')})": v for k, v in last.items()
               if isinstance(v, (int, float)) and k not in ("epoch", "step", "seconds")}
    return log.get("data") or training_data, quality or None


def export_command(argv: list[str]) -> int:
    import argparse

    parser = argparse.ArgumentParser(prog="genzoo export", description="Write a model in a format another library "
                                     "loads (gpt2: huggingface, nanogpt; diffusion: diffusers; vae: diffusers, "
                                     "pytorch-examples; cyclegan: junyanz; gan: pytorch-examples; all: genzoo).")
    parser.add_argument("model", help="catalog name or local checkpoint")
    parser.add_argument("out", help="output folder")
    parser.add_argument("--format", required=True)
    parser.add_argument("--family", help="the model's family, for a checkpoint without config.json")
    parser.add_argument("--overwrite", action="store_true", help="replace files already in OUT")
    args = parser.parse_args(argv)
    models = _load_for_export(args.model, args.family)
    if args.format == "genzoo" and len(models) == 2:  # a GAN pair: one genzoo folder holds both parts
        from .gan.loading import save_gan

        prepare_directory(args.out, ("model.safetensors", "config.json"), args.overwrite)
        folder = save_gan(args.out, *models)
    else:
        for model in models:
            folder = export(model, args.out, args.format, overwrite=args.overwrite)
    print(f"wrote {args.format} export of {args.model} to {folder}: {', '.join(sorted(p.name for p in folder.iterdir()))}")
    return 0


def push_command(argv: list[str]) -> int:
    import argparse

    parser = argparse.ArgumentParser(prog="genzoo push", description="Upload a model to the Hugging Face Hub "
                                     "(with a model card).")
    parser.add_argument("model", help="catalog name or local checkpoint")
    parser.add_argument("repo_id", help="user/name or org/name")
    parser.add_argument("--format", default="genzoo")
    parser.add_argument("--family")
    parser.add_argument("--private", action="store_true")
    parser.add_argument("--revision", help="branch to push to (created if needed)")
    parser.add_argument("--training-data", help="what the model was trained on (for the model card)")
    parser.add_argument("--quality", help="its measured quality (for the model card)")
    args = parser.parse_args(argv)
    model = _load_for_export(args.model, args.family)[0]  # a GAN's generator; a CycleGAN folder's four networks
    known_data, known_quality = _card_defaults(args.model, args.family)
    url = push_to_hub(model, args.repo_id, format=args.format, private=args.private, revision=args.revision,
                      training_data=args.training_data or known_data, quality=args.quality or known_quality)
    print(f"pushed {args.model} to {args.repo_id}: {url}")
    return 0
