"""The two bases every genzoo model is built on: `Config` (its hyper-parameters) and `PretrainedModel`.

    @dataclass
    class GPTConfig(Config):
        model_type = "gpt"                   # the value of config.json's "model" key
        n_layer: int = 12
        ...

    class GPT(PretrainedModel):
        family = "gpt2"
        def __init__(self, config: GPTConfig): ...

    model.save_pretrained("dir")            # model.safetensors + config.json, read back by from_pretrained
    GPT.from_pretrained("dir")              # or genzoo.gpt2.from_pretrained / genzoo.load
    model.num_parameters(), model.device, model.dtype

A config checks every value's type as it is built (from Python or from config.json), refuses keys it does not
know (a typo would otherwise be silently ignored) and refuses sizes beyond its LIMITS, so no config can make the
loader build for ever; each family's __post_init__ adds the checks only it knows.
"""
from __future__ import annotations

import importlib
import math
import types
import typing
from dataclasses import fields
from typing import ClassVar

import torch
from torch import nn

from .errors import ConfigError

TYPE_KEY = "model"
RESERVED_KEYS = ("genzoo_family", "genzoo_format", TYPE_KEY)
DEFAULT_LIMIT = 1 << 20   # no count or width in any genzoo model comes near a million


class Config:
    """Mixin for a family's config dataclass: typed values, to_dict/from_dict with one type key."""

    model_type: ClassVar[str] = ""
    LIMITS: ClassVar[dict] = {}     # field -> (lowest, highest) for numbers; ints default to [.., DEFAULT_LIMIT]

    def __post_init__(self):
        hints = typing.get_type_hints(type(self))
        for f in fields(self):
            value = _check_type(type(self).__name__, f.name, getattr(self, f.name), hints.get(f.name))
            low, high = self.LIMITS.get(f.name, (None, DEFAULT_LIMIT))
            for item in (value if isinstance(value, tuple) else (value,)):
                if isinstance(item, (int, float)) and not isinstance(item, bool):
                    if not math.isfinite(item) or (low is not None and item < low) or (high is not None and item > high):
                        raise ConfigError(f"{type(self).__name__}.{f.name}={value!r} is out of range "
                                          f"[{low if low is not None else '-inf'}, {high}]")
            object.__setattr__(self, f.name, value)

    def to_dict(self) -> dict:
        """JSON-ready: tuples become lists; the type key says which config class reads it back."""
        out = {TYPE_KEY: self.model_type} if self.model_type else {}
        for f in fields(self):
            value = getattr(self, f.name)
            out[f.name] = list(value) if isinstance(value, tuple) else value
        return out

    @classmethod
    def from_dict(cls, d: dict, where: str = "config.json"):
        """Build from a config.json dict. Unknown keys are refused, naming them; genzoo's own bookkeeping keys
        (genzoo_family, genzoo_format, model) are not fields."""
        if not isinstance(d, dict):
            raise ConfigError(f"{where}: a {cls.__name__} must be a JSON object, got {type(d).__name__}")
        declared = d.get(TYPE_KEY)
        if declared is not None and cls.model_type and declared != cls.model_type:
            raise ConfigError(f"{where} describes a {declared!r} model, not a {cls.model_type!r} ({cls.__name__})")
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(d) - known - set(RESERVED_KEYS))
        if unknown:
            raise ConfigError(f"{where}: unknown {cls.__name__} keys {unknown}; known: {sorted(known)}")
        return cls(**{k: v for k, v in d.items() if k in known})


def _check_type(owner: str, name: str, value, hint):
    """`value` as the annotation `hint` wants it (JSON lists -> tuples, ints -> floats), or a ConfigError."""
    if hint is None or hint is typing.Any:
        return value
    options = typing.get_args(hint) if isinstance(hint, types.UnionType) or typing.get_origin(hint) is typing.Union \
        else (hint,)
    if value is None:
        if type(None) in options:
            return None
        raise ConfigError(f"{owner}.{name} must not be None")
    for option in options:
        origin = typing.get_origin(option) or option
        if origin is type(None):
            continue
        if origin is bool and isinstance(value, bool):
            return value
        if origin is int and isinstance(value, int) and not isinstance(value, bool):
            return value
        if origin is float and isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        if origin is str and isinstance(value, str):
            return value
        if origin is tuple and isinstance(value, (list, tuple)):
            return tuple(value)
        if origin is dict and isinstance(value, dict):
            return value
        if origin is list and isinstance(value, (list, tuple)):
            return list(value)
    wanted = " or ".join(getattr(o, "__name__", str(o)) for o in options)
    raise ConfigError(f"{owner}.{name} must be {wanted}, got {value!r} ({type(value).__name__})")


class PretrainedModel(nn.Module):
    """What every genzoo network offers: config, device, dtype, num_parameters(), save/from_pretrained."""

    family: ClassVar[str] = ""
    load_options: ClassVar[dict] = {}   # from_pretrained keywords that select this class (e.g. a GAN's part)
    config: Config

    @property
    def device(self) -> torch.device:
        tensor = next(self.parameters(), None)
        if tensor is None:
            tensor = next(self.buffers(), None)
        return tensor.device if tensor is not None else torch.device("cpu")

    @property
    def dtype(self) -> torch.dtype:
        tensor = next((p for p in self.parameters() if p.is_floating_point()), None)
        return tensor.dtype if tensor is not None else torch.get_default_dtype()

    def num_parameters(self, trainable_only: bool = False) -> int:
        return sum(p.numel() for p in self.parameters() if p.requires_grad or not trainable_only)

    def set_attention_backend(self, name: str | None) -> None:
        """Run this model's attention with backend `name` ("sdpa", "math", or one you registered); None resets."""
        from .nn.attention import set_model_backend

        set_model_backend(self, name)

    def checkpoint_config(self) -> dict:
        """What config.json holds besides genzoo's bookkeeping; models saving more than their config override it."""
        return self.config.to_dict()

    def save_pretrained(self, directory, format: str = "genzoo", **options):
        """Write the model to `directory`. format="genzoo": model.safetensors + config.json, read back by
        from_pretrained; other formats ("huggingface", "diffusers", "junyanz", ...) go to genzoo.export."""
        if format != "genzoo":
            from . import export

            return export.export(self, directory, format, **options)
        from .checkpoint import save_pretrained

        return save_pretrained(directory, self.state_dict(), self.checkpoint_config(), family=self.family)

    def push_to_hub(self, repo_id: str, **options):
        """Upload to the Hugging Face Hub (see genzoo.export.push_to_hub for format, private, revision)."""
        from . import export

        return export.push_to_hub(self, repo_id, **options)

    @classmethod
    def from_pretrained(cls, name_or_path, device="auto", dtype=None, revision=None, **options):
        """Load with the family's loader and check that the result is this class."""
        from .errors import CheckpointError

        family = importlib.import_module(f"genzoo.{cls.family}")
        model = family.from_pretrained(name_or_path, device=device, dtype=dtype, revision=revision,
                                       **{**cls.load_options, **options})
        if not isinstance(model, cls):
            raise CheckpointError(f"{name_or_path} holds a {type(model).__name__}, not a {cls.__name__}: load it "
                                  f"with genzoo.{cls.family}.from_pretrained")
        return model
