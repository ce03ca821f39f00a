"""Model names -> families and sources: lookups over the catalog (genzoo/catalog.py), and `genzoo.load`.

Nothing here imports torch: `genzoo list`, name suggestions and family detection stay instant. The catalog is
filled once, at import, so lookups from many threads at once always see all of it. `register()` adds an entry
of your own (a name for your checkpoint folder or Hub repo).
"""
from __future__ import annotations

import difflib
import importlib
import json
import os
import threading
from pathlib import Path

from .catalog import ENTRIES, ModelEntry, embedded_dir
from .errors import UnknownModelError

__all__ = ["Registry", "FAMILIES", "ModelEntry", "register", "list_models", "find", "get", "resolve", "detect_family",
           "family_of", "load", "embedded_dir", "check_family_name"]

FAMILIES = ("gpt2", "gan", "cyclegan", "vae", "diffusion")


class Registry(dict):
    """Names -> objects for one swap point, filled by one decorator, with one collision policy.

        SCHEDULERS = Registry("scheduler", how="@genzoo.diffusion.register_scheduler('name')")
        @SCHEDULERS.register("ddim")
        class DDIMScheduler: ...
        SCHEDULERS.register("mish", torch.nn.Mish)          # or directly, object second
        SCHEDULERS.lookup("dddim", option="--scheduler")    # ConfigError naming the option and close names

    A name another object holds is refused unless `overwrite=True`. Registering the same object again, or a class
    with the same module and qualified name (a module imported twice), is not a collision. `case_sensitive=False`
    stores names lower-cased. It is a dict, so `name in registry`, `registry[name]` and `sorted(registry)` work.
    """

    def __init__(self, what: str, *, how: str | None = None, case_sensitive: bool = True, check=None):
        super().__init__()
        self.what = what                       # "scheduler", "attention backend", ... (used in messages)
        self.how = how                         # how a user registers one (used in messages)
        self.case_sensitive = case_sensitive
        self.check = check                     # optional callable(name, obj) raising ConfigError on a bad object

    def key(self, name) -> str:
        if not isinstance(name, str) or not name:
            from .errors import ConfigError

            raise ConfigError(f"a {self.what} name must be a non-empty string, got {name!r}")
        return name if self.case_sensitive else name.lower()

    def register(self, name: str, obj=None, *, aliases=(), overwrite: bool = False):
        """`@registry.register("name")` over a class or function, or `registry.register("name", obj)`."""
        keys = [self.key(n) for n in (name, *aliases)]

        def add(obj):
            from .errors import ConfigError

            if self.check is not None:
                self.check(name, obj)
            for key in keys:
                held = dict.get(self, key)
                if held is not None and not overwrite and not _same(held, obj):
                    raise ConfigError(f"{self.what} name {key!r} is taken by {_label(held)}: pick another name or "
                                      f"pass overwrite=True to replace it")
            for key in keys:
                self[key] = obj
            return obj

        return add if obj is None else add(obj)

    def lookup(self, name, option: str | None = None):
        """The object registered as `name`, or a ConfigError naming `option`, the choices and close names."""
        from .errors import ConfigError

        key = name.lower() if isinstance(name, str) and not self.case_sensitive else name
        if isinstance(key, str) and key in self:
            return self[key]
        close = difflib.get_close_matches(str(name), list(self), n=3, cutoff=0.6)
        hint = f" Did you mean {' or '.join(close)}?" if close else ""
        register = f", or register one with {self.how}" if self.how else ""
        raise ConfigError(f"{option or self.what} {name!r} is not known: one of {', '.join(sorted(self))}{register}."
                          f"{hint}")

    def names(self) -> list[str]:
        return sorted(self)


def _same(a, b) -> bool:
    if a is b:
        return True
    return isinstance(a, type) and isinstance(b, type) and \
        (a.__module__, a.__qualname__) == (b.__module__, b.__qualname__)


def _label(obj) -> str:
    name = getattr(obj, "__qualname__", None) or type(obj).__name__
    module = getattr(obj, "__module__", None)
    return f"{module}.{name}" if module else name

_CATALOG: dict[str, ModelEntry] = {e.name: e for e in ENTRIES}
_lock = threading.Lock()


def register(entry: ModelEntry) -> ModelEntry:
    if entry.family not in FAMILIES:
        raise ValueError(f"unknown family {entry.family!r} for {entry.name!r}: one of {', '.join(FAMILIES)}")
    with _lock:
        _CATALOG[entry.name] = entry
    return entry


def check_family_name(family) -> str:
    """`family` itself, or UnknownModelError suggesting the close names (e.g. "gans" -> gan)."""
    if family not in FAMILIES:
        close = difflib.get_close_matches(str(family), FAMILIES, n=2, cutoff=0.5)
        hint = f" Did you mean {' or '.join(close)}?" if close else ""
        raise UnknownModelError(f"unknown family {family!r}: one of {', '.join(FAMILIES)}.{hint}")
    return family


def list_models(family: str | None = None) -> list[ModelEntry]:
    if family is not None:
        check_family_name(family)
    return [e for e in list(_CATALOG.values()) if family is None or e.family == family]


def find(name) -> ModelEntry | None:
    return _CATALOG.get(str(name))


def get(name) -> ModelEntry:
    entry = find(name)
    if entry is None:
        close = difflib.get_close_matches(str(name), list(_CATALOG), n=3)
        hint = f" Did you mean {', '.join(close)}?" if close else ""
        raise UnknownModelError(f"unknown model {name!r}.{hint} `genzoo list` shows the catalog; a local path or a "
                                f"Hub repo id (owner/name) works too.")
    return entry


def looks_like_path_or_repo(name) -> bool:
    name = os.fspath(name)
    return os.path.exists(os.path.expanduser(name)) or "/" in name or name.startswith(("http://", "https://"))


def resolve(name_or_path, family: str) -> tuple[str, ModelEntry | None]:
    """A catalog name -> (its source, its entry); a path, repo id or URL -> (itself, None).

    Raises UnknownModelError for a name that is none of these, and for a catalog name of another family.
    """
    name_or_path = os.fspath(name_or_path)
    entry = find(name_or_path)
    if entry is not None:
        if entry.family != family:
            raise UnknownModelError(f"{entry.name!r} is a {entry.family} model, not {family}: use "
                                    f"genzoo.{entry.family}.from_pretrained({entry.name!r}) or genzoo.load({entry.name!r})")
        return entry.source, entry
    if looks_like_path_or_repo(name_or_path):
        return name_or_path, None
    get(name_or_path)  # raises with suggestions
    raise AssertionError(f"{name_or_path!r}: get() returns only catalog names")


def read_json(path) -> dict:
    """A config.json as a dict; {} when it is not a JSON object (the loader then reports what is wrong)."""
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def detect_family(path) -> str | None:
    """The family of a local checkpoint folder or file, from its config.json, or None if it cannot tell."""
    path = Path(path).expanduser()
    folder = path if path.is_dir() else path.parent
    config_path = folder / "config.json"
    if not config_path.is_file():
        # A diffusers pipeline folder: model_index.json with unet/ (DDPM/DDIM) or vae/ subfolders.
        if (folder / "model_index.json").is_file():
            if (folder / "unet" / "config.json").is_file():
                return "diffusion"
            if (folder / "vae" / "config.json").is_file():
                return "vae"
        return None
    config = read_json(config_path)
    if config.get("genzoo_family") in FAMILIES:
        return config["genzoo_family"]
    class_name = config.get("_class_name", "")
    if class_name in ("UNet2DModel",):
        return "diffusion"
    if class_name in ("AutoencoderKL",):
        return "vae"
    if config.get("model_type") == "gpt2":
        return "gpt2"
    return None


def family_of(name_or_path) -> str:
    """Family of a catalog name or a local checkpoint; raises a clear error when it cannot be told."""
    entry = find(name_or_path)
    if entry is not None:
        return entry.family
    family = detect_family(name_or_path) if os.path.exists(os.path.expanduser(os.fspath(name_or_path))) else None
    if family is None:
        if looks_like_path_or_repo(name_or_path):
            raise UnknownModelError(f"cannot tell which family {name_or_path!r} belongs to (no genzoo or diffusers "
                                    f"config.json): load it with genzoo.<family>.from_pretrained, or pass --family")
        get(name_or_path)
    return family


def load(name_or_path, **kwargs):
    """Load any catalog model (or a local genzoo checkpoint) with its family's from_pretrained."""
    family = check_family_name(kwargs.pop("family", None) or family_of(name_or_path))
    module = importlib.import_module(f"genzoo.{family}")
    return module.from_pretrained(name_or_path, **kwargs)
