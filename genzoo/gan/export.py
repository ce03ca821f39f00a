"""Write a GAN network in the format its ecosystem loads.

  * "pytorch-examples" (64-pixel DCGAN): netG.pth for a generator, netD.pth for a discriminator: torch.save of
    the state dict of pytorch/examples dcgan/main.py's Generator / Discriminator (`main.N.*`), what its
    `--netG` / `--netD` options load.
  * "genzoo": genzoo's own save_pretrained.
"""
from __future__ import annotations

from pathlib import Path

from ..errors import ConfigError
from ..export import prepare_directory, write_torch
from . import convert
from .models import config_to_dict

FORMATS = ("genzoo", "pytorch-examples")
FILES = {"generator": "netG.pth", "discriminator": "netD.pth"}


def export(model, directory, format: str, overwrite: bool = False) -> Path:
    if format == "genzoo":
        prepare_directory(directory, ("model.safetensors", "config.json"), overwrite)
        return Path(model.save_pretrained(directory))
    if format != "pytorch-examples":
        raise ConfigError(f"a GAN cannot be exported as {format!r}: one of {', '.join(FORMATS)}")
    state_dict = convert.to_pytorch_examples(model.state_dict(), config_to_dict(model.config), model.part)
    directory = prepare_directory(directory, (FILES[model.part],), overwrite)
    write_torch(directory / FILES[model.part], state_dict)
    return directory
