"""from_pretrained / save_pretrained for GANs.

genzoo's format is one folder: model.safetensors with keys "generator.*" and/or "discriminator.*", and
config.json {"genzoo_family": "gan", "arch": "dcgan" | "mlp", <config fields>, "parts": [...]}.
A single foreign file (pytorch/examples netG_epoch_N.pth / netD_epoch_N.pth, yunjey's G.ckpt / D.ckpt, or a
{"netG": ..., "netD": ...} bundle) is converted on the fly; its config is inferred from the weight shapes.
"""
from __future__ import annotations

from pathlib import Path

from .. import checkpoint, hub, registry
from ..errors import CheckpointError, ConfigError
from . import convert
from .models import FAMILY, build, config_from_dict, config_to_dict

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
                    config: dict | None = None):
    """Load a GAN generator (default) or discriminator (part="discriminator").

    name_or_path: a catalog name (`genzoo list --family gan`), a genzoo folder, a Hub repo holding one, or one
    foreign checkpoint file. `config` overrides inferred fields for foreign files whose activations or shapes
    cannot be read from the weights (e.g. {"data_shape": [2], "output_activation": "none"} for a curve GAN).
    """
    if part not in PARTS:
        raise ConfigError(f"part must be 'generator' or 'discriminator', not {part!r}")
    source, entry = registry.resolve(name_or_path, FAMILY)
    state_dict, model_config, path = read_part(source, part, revision, config)
    return checkpoint.build_and_load(lambda: build(model_config, part), state_dict, path, device, dtype)


def discriminator_from_pretrained(name_or_path, device="auto", dtype=None, revision=None, config=None):
    """The discriminator of a checkpoint: logits (n,) for inputs shaped like the generator's outputs."""
    return from_pretrained(name_or_path, device, dtype, revision, part="discriminator", config=config)


def read_part(source, part: str, revision=None, overrides: dict | None = None):
    """(genzoo state dict, model config, weights path) of one part of a checkpoint."""
    if Path(source).expanduser().exists():
        family = registry.detect_family(source)
        if family not in (None, FAMILY):
            raise CheckpointError(f"{source} is a {family} checkpoint, not a GAN: load it with "
                                  f"genzoo.{family}.from_pretrained (or genzoo.load)")
    weights = hub.resolve_first(source, [checkpoint.WEIGHTS_NAME], revision)
    saved = {}
    if weights.name == checkpoint.WEIGHTS_NAME and not hub.is_url(source):  # genzoo's format: config beside it
        config_path = hub.resolve_optional(source, checkpoint.CONFIG_NAME, revision)
        saved = checkpoint.read_config(config_path) if config_path is not None else {}
        checkpoint.check_family(saved, FAMILY, weights)
    raw = checkpoint.load_state_dict(weights)
    if saved.get("genzoo_family") == FAMILY:
        state_dict = convert.convert_genzoo(checkpoint.unwrap_state_dict(raw, weights), part, weights)
        config_dict = saved
    else:
        state_dict, found_part, config_dict = _convert_foreign(raw, part, weights)
        if found_part != part:
            other = "gan.discriminator_from_pretrained" if found_part == "discriminator" else "gan.from_pretrained"
            raise CheckpointError(f"{weights} holds a {found_part}, not a {part}: load it with {other}")
    try:
        model_config = config_from_dict({**config_dict, **(overrides or {})})
    except TypeError as e:
        raise CheckpointError(f"{weights}: its config does not describe a GAN: {e}") from e
    return state_dict, model_config, weights


def _convert_foreign(raw, part, path):
    state_dict = convert.from_bare_sequential(convert.unbundle(raw, part, path))
    fmt = convert.detect_format(state_dict)
    if fmt == "genzoo":  # a genzoo model.safetensors that lost its config.json
        raise CheckpointError(f"{path} is in genzoo's GAN format but has no config.json beside it")
    if fmt is None:
        keys = list(state_dict)[:8]
        raise CheckpointError(
            f"{path} is not a GAN checkpoint genzoo knows (keys start: {keys}). Known layouts: genzoo's own folder, "
            f"pytorch/examples dcgan (main.<i>.*), an nn.Sequential of Linear layers (<i>.weight). If it belongs to "
            f"another family, load it with genzoo.<family>.from_pretrained.")
    return convert.CONVERTERS[fmt](state_dict, path)


def load_pair(source, device="auto", dtype=None):
    """(generator, discriminator) of a genzoo checkpoint holding both, e.g. to resume training."""
    return tuple(from_pretrained(source, device, dtype, part=p) for p in PARTS)
