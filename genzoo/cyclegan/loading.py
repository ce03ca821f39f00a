"""from_pretrained: a catalog name, a URL, a junyanz .pth or run folder, or a genzoo folder -> a generator.

What a source may be:
  * a catalog name ("horse2zebra"): junyanz's published generator, downloaded from his server by URL (see
    genzoo/catalog.py about the sha256 pins) and cached under ~/.cache/genzoo/;
  * a junyanz file: NAME.pth (published) or latest_net_G_A.pth / latest_net_G_B.pth / latest_net_G.pth of a run;
  * a junyanz run folder (checkpoints/NAME/): latest_net_G_A.pth for direction="AtoB", latest_net_G_B.pth for "BtoA";
  * a genzoo folder (config.json + model.safetensors) written by `generator.save_pretrained` or by train.py
    (which holds both generators: `direction` picks G_A or G_B), or a Hugging Face repo id holding one.
The steps are genzoo.loader's; CycleGAN adds its file names, the direction, and its converter.
"""
from __future__ import annotations

from pathlib import Path

import torch

from .. import loader
from ..checkpoint import WEIGHTS_NAME, build_and_load, load_state_dict, read_config, unwrap_state_dict
from ..errors import CheckpointError, ConfigError
from . import convert
from .convert import DIRECTIONS, RUN_FILES
from .model import CycleGAN, DiscriminatorConfig, GeneratorConfig, build_discriminator, build_generator

FAMILY = "cyclegan"


def from_pretrained(name_or_path, device="auto", dtype=None, revision=None, direction: str = "AtoB",
                    allow_nonfinite: bool = False) -> torch.nn.Module:
    """The generator of a CycleGAN checkpoint, in eval mode: images (N, C, H, W) in [-1, 1] -> same range.

    `direction` matters for checkpoints that hold both generators (a genzoo training folder, a junyanz run
    folder): "AtoB" is G_A, "BtoA" is G_B. A published single-direction file (horse2zebra.pth) only has "AtoB";
    its reverse is its own catalog entry (zebra2horse).
    """
    if direction not in DIRECTIONS:
        raise ConfigError(f"direction must be 'AtoB' or 'BtoA', not {direction!r}")
    model = loader.load(FAMILY, name_or_path, convert=convert.convert, build=build_generator,
                        weight_names=(WEIGHTS_NAME, *RUN_FILES[direction]), device=device, dtype=dtype,
                        revision=revision, direction=direction, allow_nonfinite=allow_nonfinite)
    model.source = str(name_or_path)
    return model


def load_cyclegan(path, device="auto", dtype=None) -> CycleGAN:
    """All four networks of a genzoo training folder (train.py's output), e.g. to inspect the discriminators."""
    folder = Path(path)
    config = read_config(folder)
    loader.refuse_other_family(config, FAMILY, folder)
    if (config.get("model") or config.get("kind")) != "cyclegan":
        raise CheckpointError(f"{folder} holds a cyclegan {config.get('model') or config.get('kind')!r}, not a full "
                              f"CycleGAN training checkpoint")
    configs = [GeneratorConfig.from_dict(config["G_A"]), GeneratorConfig.from_dict(config["G_B"]),
               DiscriminatorConfig.from_dict(config["D_A"]), DiscriminatorConfig.from_dict(config["D_B"])]
    return build_and_load(lambda: CycleGAN(*configs), load_state_dict(folder / WEIGHTS_NAME), folder, device, dtype)


def discriminator_from_pretrained(path, device="auto", dtype=None):
    """A junyanz latest_net_D_A.pth / latest_net_D_B.pth, or the book's ch. 6 discriminator (its state dict or its
    TorchScript file) -> its PatchGAN discriminator (gan.discriminator_from_pretrained's counterpart)."""
    path = Path(path)
    raw = unwrap_state_dict(load_state_dict(path), path)
    config, state_dict = convert.convert_book_discriminator(raw, path) if convert.is_book_discriminator(raw) else \
        convert.convert_junyanz_discriminator(raw, path)
    return build_and_load(lambda: build_discriminator(config), state_dict, path, device, dtype)


load_discriminator = discriminator_from_pretrained  # the same function under its first name
