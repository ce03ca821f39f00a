"""Norms and activations by name: one lookup for every family, open to new entries.

    from genzoo.nn import activation, norm
    act = activation("leaky_relu")           # nn.LeakyReLU(0.2)
    act = activation(nn.Mish)                # a class or a zero-argument callable works too
    bn = norm("batch", 64)                   # nn.BatchNorm2d(64); "instance", "group", "layer", "none"

Add one with `register_activation("name", factory)` / `register_norm("name", factory)`; a config that names it
then builds it.
"""
from __future__ import annotations

import functools

import torch.nn as nn

from ..errors import ConfigError

ACTIVATIONS = {
    "relu": nn.ReLU,
    "leaky_relu": functools.partial(nn.LeakyReLU, 0.2),   # the GAN literature's slope
    "silu": nn.SiLU,
    "gelu": nn.GELU,
    "gelu_tanh": functools.partial(nn.GELU, approximate="tanh"),
    "tanh": nn.Tanh,
    "sigmoid": nn.Sigmoid,
    "none": nn.Identity,
}

# Each factory takes the channel count of an (N, C, H, W) feature map. Instance norm without affine parameters
# or running statistics is junyanz's CycleGAN choice; "layer" normalises each sample over channels and pixels
# (GroupNorm with one group: the WGAN-GP critic's norm).
NORMS = {
    "batch": nn.BatchNorm2d,
    "instance": nn.InstanceNorm2d,
    "group": lambda channels, groups=32, eps=1e-6: nn.GroupNorm(groups, channels, eps=eps),
    "layer": lambda channels: nn.GroupNorm(1, channels),
    "none": lambda channels: nn.Identity(),
}


def register_activation(name: str, factory) -> None:
    ACTIVATIONS[name] = factory


def register_norm(name: str, factory) -> None:
    NORMS[name] = factory


def _lookup(table: dict, what: str, name_or_factory, option: str | None = None):
    if callable(name_or_factory):
        return name_or_factory
    if not isinstance(name_or_factory, str) or name_or_factory not in table:
        raise ConfigError(f"{option or what}={name_or_factory!r} is not a known {what}: one of "
                          f"{', '.join(sorted(table))}, or register one with genzoo.nn.register_{what}")
    return table[name_or_factory]


def check_activation(name, option: str | None = None) -> None:
    """Raise ConfigError unless `name` is a registered activation (or a callable); `option` names the setting."""
    _lookup(ACTIVATIONS, "activation", name, option)


def check_norm(name, option: str | None = None) -> None:
    _lookup(NORMS, "norm", name, option)


def activation(name_or_factory) -> nn.Module:
    """A new activation module from a registered name, or from a module class / zero-argument callable."""
    return _lookup(ACTIVATIONS, "activation", name_or_factory)()


def norm(name_or_factory, channels: int, **kwargs) -> nn.Module:
    """A new norm layer over `channels` from a registered name, or from a factory taking the channel count."""
    return _lookup(NORMS, "norm", name_or_factory)(channels, **kwargs)
