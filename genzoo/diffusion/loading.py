"""Loading: a catalog name, folder, weights file or Hub repo id -> UNet (from_pretrained), and its noise schedule
(load_scheduler). Reads diffusers' UNet2DModel layout (also a pipeline's unet/ + scheduler/) and genzoo's own.

The steps are genzoo.loader's; the diffusion family adds its file names, the pipeline sub-folder, its converter
and the scheduler config that travels with a U-Net.
"""
from __future__ import annotations

import torch

from .. import checkpoint, hub, loader
from ..runtime import resolve_device, resolve_dtype
from . import convert
from .schedulers import make_scheduler
from .unet import UNet

FAMILY = "diffusion"
WEIGHT_FILES = (checkpoint.WEIGHTS_NAME, "diffusion_pytorch_model.safetensors", "diffusion_pytorch_model.bin")
SUBFOLDERS = ("", "unet/")
SCHEDULER_CONFIG = "scheduler_config.json"


def locate(name_or_path, revision=None) -> loader.Located:
    return loader.locate(name_or_path, FAMILY, WEIGHT_FILES, revision, SUBFOLDERS, config_required=True)


def from_pretrained(name_or_path, device="auto", dtype=None, revision=None, channels_last: bool = True,
                    allow_nonfinite: bool = False) -> UNet:
    """A catalog name (`genzoo list --family diffusion`), a local folder, or a Hub repo id -> UNet, in eval mode.

    `unet(x, t)` predicts the noise in x_t. dtype: None keeps the checkpoint's (float32), or "float16"/"bfloat16".
    channels_last stores the conv weights NHWC, so activations flow NHWC too: oneDNN (CPU) and cuDNN convolutions
    run faster without layout conversions, and attention's (B, HW, C) view is free. Values are the same.
    """
    device = resolve_device(device)
    dtype = resolve_dtype(dtype, device)
    located = locate(name_or_path, revision)
    unet = loader.load_located(located, FAMILY, convert=convert.convert, build=UNet, device=device, dtype=dtype,
                               allow_nonfinite=allow_nonfinite)
    if isinstance(located.config.get("scheduler"), dict):
        unet.scheduler_config = dict(located.config["scheduler"])
    if channels_last and unet.device.type in ("cpu", "cuda"):
        unet = unet.to(memory_format=torch.channels_last)
    return unet


def scheduler_config(name_or_path, revision=None) -> dict:
    """The checkpoint's noise schedule (diffusers names): scheduler_config.json (also under scheduler/), or the
    "scheduler" entry of a genzoo config.json; {} (DDPM's defaults) when it has none."""
    located = locate(name_or_path, revision)
    if isinstance(located.config.get("scheduler"), dict):
        return dict(located.config["scheduler"])
    for name in (SCHEDULER_CONFIG, "scheduler/" + SCHEDULER_CONFIG):
        found = hub.resolve_optional(located.source, name, located.revision)
        if found is not None:
            return checkpoint.read_config(found)
    return {}


def load_scheduler(name_or_path, kind: str = "ddim", revision=None, **overrides):
    """A scheduler of any registered kind ("ddpm", "ddim", "dpm++2m", "euler_a", ...: schedulers.scheduler_kinds())
    with the checkpoint's noise schedule; overrides (e.g. eta=0.5, clip_sample=False) replace config values."""
    make_scheduler(kind)  # an unknown kind fails before anything is read or downloaded
    return make_scheduler(kind, scheduler_config(name_or_path, revision), **overrides)
