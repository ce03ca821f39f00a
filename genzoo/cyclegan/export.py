"""Write CycleGAN networks as a junyanz/pytorch-CycleGAN-and-pix2pix run folder (his test.py / --continue_train read it).

  * a generator -> latest_net_G_A.pth; a discriminator -> latest_net_D_A.pth;
  * a whole CycleGAN (train.py's four networks) -> latest_net_G_A.pth, latest_net_G_B.pth, latest_net_D_A.pth,
    latest_net_D_B.pth.
Each file is torch.save of the network's state dict with junyanz's `model.N.*` keys (convert.to_junyanz).
"""
from __future__ import annotations

from pathlib import Path

from ..errors import ConfigError
from ..export import prepare_directory, write_torch
from . import convert
from .model import CycleGAN, NLayerDiscriminator

FORMATS = ("genzoo", "junyanz")


def export(model, directory, format: str, overwrite: bool = False) -> Path:
    if format == "genzoo":
        prepare_directory(directory, ("model.safetensors", "config.json"), overwrite)
        return Path(model.save_pretrained(directory))
    if format != "junyanz":
        raise ConfigError(f"a CycleGAN network cannot be exported as {format!r}: one of {', '.join(FORMATS)}")
    nets = ({f"latest_net_{name}.pth": getattr(model, name) for name in ("G_A", "G_B", "D_A", "D_B")}
            if isinstance(model, CycleGAN) else
            {"latest_net_D_A.pth" if isinstance(model, NLayerDiscriminator) else "latest_net_G_A.pth": model})
    files = {}
    for name, net in nets.items():
        refusals = convert.junyanz_refusals(net.config)
        if refusals:
            raise ConfigError(f"this {'discriminator' if isinstance(net, NLayerDiscriminator) else 'generator'} "
                              f"cannot be exported as 'junyanz': his networks.py has no option for "
                              f"{'; '.join(refusals)}. Export it as 'genzoo'")
        if isinstance(net, NLayerDiscriminator):
            files[name] = convert.discriminator_to_junyanz(net.state_dict(), net.config)
            continue
        files[name] = convert.generator_to_junyanz(net.state_dict(), net.config)
    directory = prepare_directory(directory, tuple(files), overwrite)
    for name, state_dict in files.items():
        write_torch(directory / name, state_dict)
    return directory
