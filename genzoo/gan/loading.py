"""from_pretrained / save_pretrained for GANs.

genzoo's format is one folder: model.safetensors with keys "generator.*" and/or "discriminator.*", and
config.json {"genzoo_family": "gan", "model": "dcgan" | "mlp" | a registered backbone, <config fields>,
"parts": [...]}.
A single foreign file (pytorch/examples netG_epoch_N.pth / netD_epoch_N.pth, yunjey's G.ckpt / D.ckpt, or a
{"netG": ..., "netD": ...} bundle) is converted on the fly; its config is inferred from the weight shapes.
"""
from __future__ import annotations

from pathlib import Path

from .. import checkpoint, loader
from ..errors import ConfigError
from . import convert
from .models import FAMILY, build, config_to_dict

PARTS = ("generator", "discriminator")


def save_gan(directory, generator=None, discriminator=None, extra_config: dict | None = None) -> Path:
    """Write one or both networks (they must share a config) in genzoo's format; returns the folder."""
    parts = {name: m for name, m in (("generator", generator), ("discriminator", discriminator)) if m is not None}
    if not parts:
        raise ConfigError("save_gan needs a generator, a discriminator, or both")
    configs = [config_to_dict(m.config) for m in parts.values()]
    if configs[0] != configs[-1]:
        raise ConfigError("the generator and discriminator have different configs; save them separately")
    state_dict = {f"{name}.{k}": v for name, m in parts.items() for k, v in m.state_dict().items()}
    config = {**config_to_dict(next(iter(parts.values())).config), "parts": list(parts), **(extra_config or {})}
    return checkpoint.save_pretrained(directory, state_dict, config, FAMILY)


def from_pretrained(name_or_path, device="auto", dtype=None, revision=None, part: str = "generator",
                    config: dict | None = None, allow_nonfinite: bool = False):
    """Load a GAN generator (default) or discriminator (part="discriminator").

    name_or_path: a catalog name (`genzoo list --family gan`), a genzoo folder, a Hub repo holding one, or one
    foreign checkpoint file. `config` overrides inferred fields for foreign files whose activations or shapes
    cannot be read from the weights (e.g. {"data_shape": [2], "output_activation": "none"} for a curve GAN).
    """
    if part not in PARTS:
        raise ConfigError(f"part must be 'generator' or 'discriminator', not {part!r}")
    return loader.load(FAMILY, name_or_path, convert=convert.convert, build=lambda c: build(c, part),
                       weight_names=(checkpoint.WEIGHTS_NAME,), device=device, dtype=dtype, revision=revision,
                       part=part, overrides=config, allow_nonfinite=allow_nonfinite)


def discriminator_from_pretrained(name_or_path, device="auto", dtype=None, revision=None, config=None):
    """The discriminator of a checkpoint: logits (n,) for inputs shaped like the generator's outputs."""
    return from_pretrained(name_or_path, device, dtype, revision, part="discriminator", config=config)


def load_pair(source, device="auto", dtype=None):
    """(generator, discriminator) of a genzoo checkpoint holding both, e.g. to resume training."""
    return tuple(from_pretrained(source, device, dtype, part=p) for p in PARTS)
