"""from_pretrained: a catalog name, a URL, a junyanz .pth or run folder, or a genzoo folder -> a generator.

What a source may be:
  * a catalog name ("horse2zebra"): junyanz's published generator, downloaded from his server by URL (see
    catalog.py about the sha256 pins) and cached under ~/.cache/genzoo/urls/;
  * a junyanz file: NAME.pth (published) or latest_net_G_A.pth / latest_net_G_B.pth / latest_net_G.pth of a run;
  * a junyanz run folder (checkpoints/NAME/): latest_net_G_A.pth for direction="AtoB", latest_net_G_B.pth for "BtoA";
  * a genzoo folder (config.json + model.safetensors) written by `generator.save_pretrained` or by train.py
    (which holds both generators: `direction` picks G_A or G_B), or a Hugging Face repo id holding one.
"""
from __future__ import annotations

from pathlib import Path

import torch

from .. import hub, registry
from ..checkpoint import (CONFIG_NAME, WEIGHTS_NAME, build_and_load, check_family, load_state_dict, read_config,
                          unwrap_state_dict)
from ..errors import CheckpointError, ConfigError, GenzooError
from ..runtime import resolve_device
from .convert import convert_junyanz_generator
from .model import DiscriminatorConfig, GeneratorConfig, NLayerDiscriminator, build_generator

FAMILY = "cyclegan"
DIRECTIONS = {"AtoB": "G_A", "BtoA": "G_B"}
RUN_FILES = {"AtoB": ("latest_net_G_A.pth", "latest_net_G.pth"), "BtoA": ("latest_net_G_B.pth",)}


def from_pretrained(name_or_path, device="auto", dtype=None, revision=None, direction: str = "AtoB",
                    allow_nonfinite: bool = False) -> torch.nn.Module:
    """The generator of a CycleGAN checkpoint, in eval mode: images (N, C, H, W) in [-1, 1] -> same range.

    `direction` matters for checkpoints that hold both generators (a genzoo training folder, a junyanz run
    folder): "AtoB" is G_A, "BtoA" is G_B. A published single-direction file (horse2zebra.pth) only has "AtoB";
    its reverse is its own catalog entry (zebra2horse).
    """
    if direction not in DIRECTIONS:
        raise ConfigError(f"direction must be 'AtoB' or 'BtoA', not {direction!r}")
    device = resolve_device(device)   # an unavailable device fails before any download
    try:
        config, state_dict, path = load_generator_state(name_or_path, revision, direction)
    except (TypeError, ValueError, KeyError, AttributeError, IndexError) as e:
        if isinstance(e, GenzooError):
            if str(name_or_path) in str(e):
                raise
            raise type(e)(f"{name_or_path}: {e}") from e   # say which checkpoint holds the bad value
        # a config value or checkpoint entry of a type the reader did not expect: still the file's fault
        raise CheckpointError(f"{name_or_path}: cannot read this CycleGAN checkpoint ({type(e).__name__}: "
                              f"{str(e)[:200]}): is a config.json value of the wrong type, or a key missing?") from e
    model = build_and_load(lambda: build_generator(config), state_dict, path, device=device, dtype=dtype,
                           allow_nonfinite=allow_nonfinite)
    model.source = str(name_or_path)
    return model


def load_generator_state(name_or_path, revision=None, direction="AtoB") -> tuple[GeneratorConfig, dict, Path]:
    source, entry = registry.resolve(name_or_path, FAMILY)
    if entry is not None and entry.url:
        path = hub.download_url(entry.url, sha256=entry.sha256)
        return _from_junyanz_file(path, direction, single=True)
    if hub.is_url(source):
        return _from_junyanz_file(hub.download_url(source), direction, single=True)
    local = Path(source).expanduser()
    if local.is_dir():
        if (local / CONFIG_NAME).is_file():
            return _from_genzoo_folder(local, direction)
        for name in RUN_FILES[direction]:
            if (local / name).is_file():
                return _from_junyanz_file(local / name, direction, single=False)
        raise CheckpointError(f"{local} holds neither a genzoo checkpoint ({CONFIG_NAME} + {WEIGHTS_NAME}) nor a "
                              f"junyanz generator for {direction} ({' or '.join(RUN_FILES[direction])}); it holds: "
                              f"{sorted(p.name for p in local.iterdir())[:12]}")
    if local.is_file():
        if local.suffix == ".safetensors" and (local.parent / CONFIG_NAME).is_file():
            return _from_genzoo_folder(local.parent, direction, weights=local)
        return _from_junyanz_file(local, direction, single=True)  # one file, one generator: whichever it is
    if str(source).startswith((".", "/", "~")) or local.suffix in (".pth", ".pt", ".bin", ".safetensors"):
        raise CheckpointError(f"no checkpoint file or folder at {local}")
    # A Hugging Face repo id: a genzoo folder pushed to the Hub, or a repo with junyanz .pth files.
    config_file = hub.resolve_optional(source, CONFIG_NAME, revision=revision)
    if config_file is not None:
        return _from_genzoo_folder(config_file.parent, direction,
                                   weights=hub.resolve_file(source, WEIGHTS_NAME, revision=revision))
    return _from_junyanz_file(hub.resolve_first(source, RUN_FILES[direction], revision=revision), direction, single=False)


def _from_junyanz_file(path: Path, direction: str, single: bool):
    if single and direction != "AtoB":
        raise ConfigError(f"{path} holds a single generator (one direction): load it with direction='AtoB'; the "
                          f"reverse mapping is a separate checkpoint (zebra2horse for horse2zebra, latest_net_G_B.pth "
                          f"of a junyanz run, or pass the run folder with direction='BtoA')")
    config_file = path.parent / CONFIG_NAME
    if config_file.is_file():  # e.g. someone's pytorch_model.bin next to a genzoo config of another family
        check_family(read_config(config_file), FAMILY, path)
    # convert_junyanz_generator refuses anything that is not a junyanz generator, naming what the file holds.
    config, state_dict = convert_junyanz_generator(unwrap_state_dict(load_state_dict(path), path), path)
    return config, state_dict, path


def _from_genzoo_folder(folder: Path, direction: str, weights: Path | None = None):
    config = read_config(folder)
    check_family(config, FAMILY, folder)
    if config.get("genzoo_family") != FAMILY:
        raise CheckpointError(f"{folder / CONFIG_NAME} is not a genzoo cyclegan config (no \"genzoo_family\": "
                              f"\"cyclegan\"); pass the junyanz .pth file itself, or a folder written by save_pretrained")
    weights = weights or folder / WEIGHTS_NAME
    state_dict = load_state_dict(weights)
    kind = config.get("kind")
    if kind == "generator":
        if direction != "AtoB":
            raise ConfigError(f"{folder} holds a single generator: load it with direction='AtoB'")
        return GeneratorConfig.from_dict(config["generator"]), state_dict, weights
    if kind == "cyclegan":
        name = DIRECTIONS[direction]
        prefix = name + "."
        return (GeneratorConfig.from_dict(config[name]),
                {k[len(prefix):]: v for k, v in state_dict.items() if k.startswith(prefix)}, weights)
    raise CheckpointError(f"{folder / CONFIG_NAME} holds a cyclegan {kind!r}, not a generator "
                          f"(kind must be 'generator' or 'cyclegan')")


def load_cyclegan(path, device="auto", dtype=None):
    """All four networks of a genzoo training folder (train.py's output), e.g. to inspect the discriminators."""
    from .model import CycleGAN

    folder = Path(path)
    config = read_config(folder)
    check_family(config, FAMILY, folder)
    if config.get("kind") != "cyclegan":
        raise CheckpointError(f"{folder} holds a cyclegan {config.get('kind')!r}, not a full CycleGAN training checkpoint")
    configs = [GeneratorConfig.from_dict(config["G_A"]), GeneratorConfig.from_dict(config["G_B"]),
               DiscriminatorConfig.from_dict(config["D_A"]), DiscriminatorConfig.from_dict(config["D_B"])]
    return build_and_load(lambda: CycleGAN(*configs), load_state_dict(folder / WEIGHTS_NAME), folder, device, dtype)


def load_discriminator(path, device="auto", dtype=None) -> NLayerDiscriminator:
    """A junyanz latest_net_D_A.pth / latest_net_D_B.pth -> NLayerDiscriminator."""
    from .convert import convert_junyanz_discriminator

    path = Path(path)
    config, state_dict = convert_junyanz_discriminator(unwrap_state_dict(load_state_dict(path), path), path)
    return build_and_load(lambda: NLayerDiscriminator(config), state_dict, path, device, dtype)
