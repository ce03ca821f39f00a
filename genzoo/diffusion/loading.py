"""Loading: a catalog name, folder, weights file or Hub repo id -> UNet (from_pretrained), and its noise schedule
(load_scheduler). Reads diffusers' UNet2DModel layout (also a pipeline's unet/ + scheduler/) and genzoo's own."""
from __future__ import annotations

import os
from pathlib import Path

import torch

from .. import checkpoint, hub, registry
from ..errors import CheckpointError, HubError
from .convert import config_from_diffusers, convert_diffusers_state_dict
from .schedulers import make_scheduler
from .unet import UNet, UNetConfig

FAMILY = "diffusion"
DIFFUSERS_WEIGHTS = ("diffusion_pytorch_model.safetensors", "diffusion_pytorch_model.bin")
SCHEDULER_CONFIG = "scheduler_config.json"


def _locate(name_or_path, revision=None):
    """-> (source, subfolder "" or "unet/", revision, config dict, config.json path); follows a pipeline's unet/."""
    source, entry = registry.resolve(name_or_path, FAMILY)
    revision = revision or (entry.revision if entry else None)
    path = Path(os.path.expanduser(source))
    if path.is_file():  # a weights file: its config.json sits next to it
        path = path.parent
        source = str(path)
    for sub in ("", "unet/"):
        if path.is_dir():
            config_path = path / sub / checkpoint.CONFIG_NAME
            config_path = config_path if config_path.is_file() else None
        else:
            config_path = hub.resolve_optional(source, sub + checkpoint.CONFIG_NAME, revision)
        if config_path is not None:
            return source, sub, revision, checkpoint.read_config(config_path), config_path
    _refuse_book_unet(Path(os.path.expanduser(str(name_or_path))))
    hint = (" (offline mode is set, HF_HUB_OFFLINE/GENZOO_OFFLINE: is the repo in the Hugging Face cache?)"
            if hub.is_offline() and not path.exists() else ": is it a diffusion U-Net checkpoint?")
    raise HubError(f"{source} has no config.json (nor unet/config.json){hint}")


def _check_is_unet(config: dict, where) -> None:
    checkpoint.check_family(config, FAMILY, where)
    if "genzoo_family" in config:
        if config.get("model", "unet") != "unet":
            raise CheckpointError(f"{where} holds a genzoo diffusion {config.get('model')!r}, not a U-Net")
        return
    class_name = config.get("_class_name")
    if class_name == "UNet2DModel":
        return
    if class_name is not None:
        family = {"AutoencoderKL": " (a VAE: use genzoo.vae)"}.get(class_name, "")
        raise CheckpointError(f"{where} is a diffusers {class_name}{family}, not a UNet2DModel; genzoo.diffusion "
                              f"loads DDPM U-Nets (UNet2DModel)")
    if config.get("model_type"):
        raise CheckpointError(f"{where} is a transformers {config['model_type']!r} checkpoint, not a diffusion "
                              f"U-Net" + (" (use genzoo.gpt2)" if config["model_type"] == "gpt2" else ""))
    raise CheckpointError(f"{where}: config.json is neither genzoo's nor a diffusers UNet2DModel's "
                          f"(no genzoo_family, no _class_name)")


def from_pretrained(name_or_path, device="auto", dtype=None, revision=None, channels_last: bool = True) -> UNet:
    """A catalog name (`genzoo list --family diffusion`), a local folder, or a Hub repo id -> UNet, in eval mode.

    `unet(x, t)` predicts the noise in x_t. dtype: None keeps the checkpoint's (float32), or "float16"/"bfloat16".
    channels_last stores the conv weights NHWC, so activations flow NHWC too: oneDNN (CPU) and cuDNN convolutions
    run faster without layout conversions, and attention's (B, HW, C) view is free. Values are the same.
    """
    source, sub, revision, config, config_path = _locate(name_or_path, revision)
    _check_is_unet(config, config_path)
    if "genzoo_family" in config:
        weights = hub.resolve_file(source, sub + checkpoint.WEIGHTS_NAME, revision)
        unet_config = UNetConfig.from_dict(config)
        state_dict = checkpoint.load_state_dict(weights)
    else:
        weights = hub.resolve_first(source, [sub + name for name in DIFFUSERS_WEIGHTS], revision)
        unet_config = config_from_diffusers(config, config_path)
        state_dict = checkpoint.unwrap_state_dict(checkpoint.load_state_dict(weights), weights)
        state_dict = convert_diffusers_state_dict(state_dict)
    unet = checkpoint.build_and_load(lambda: UNet(unet_config), state_dict, weights, device=device, dtype=dtype)
    if channels_last and unet.device.type in ("cpu", "cuda"):
        unet = unet.to(memory_format=torch.channels_last)
    return unet


def scheduler_config(name_or_path, revision=None) -> dict:
    """The checkpoint's noise schedule (diffusers names): scheduler_config.json (also under scheduler/), or the
    "scheduler" entry of a genzoo config.json; {} (DDPM's defaults) when it has none."""
    source, sub, revision, config, _ = _locate(name_or_path, revision)
    if isinstance(config.get("scheduler"), dict):
        return dict(config["scheduler"])
    for name in (SCHEDULER_CONFIG, "scheduler/" + SCHEDULER_CONFIG):
        found = hub.resolve_optional(source, name, revision)
        if found is not None:
            return checkpoint.read_config(found)
    return {}


def load_scheduler(name_or_path, kind: str = "ddim", revision=None, **overrides):
    """A "ddpm" or "ddim" scheduler with the checkpoint's noise schedule; overrides (e.g. eta=0.5,
    clip_sample=False) replace config values."""
    make_scheduler(kind)  # an unknown kind fails before anything is read or downloaded
    return make_scheduler(kind, scheduler_config(name_or_path, revision), **overrides)


def _refuse_book_unet(path: Path) -> None:
    """A bare weights file without config.json: say so clearly if it is the book's ch. 15 U-Net."""
    from .convert import BOOK_UNET_MESSAGE, is_book_unet

    if path.is_file() and path.suffix != ".json":
        state_dict = checkpoint.load_state_dict(path)
        if isinstance(state_dict, dict) and is_book_unet(checkpoint.unwrap_state_dict(state_dict, path)):
            raise CheckpointError(BOOK_UNET_MESSAGE.format(path=path))
