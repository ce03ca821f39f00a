"""The catalog: model name -> family, where its files live, and how to read them.

Each family declares its entries in `genzoo/<family>/catalog.py` by calling `register(...)`; those modules import
nothing heavy, so `genzoo list` is fast. Three kinds of source:
  * `repo`: a Hugging Face Hub repo id (+ revision), fetched and cached by huggingface_hub;
  * `url`: a plain URL with a pinned sha256 (junyanz's CycleGAN checkpoints live on a web server);
  * `embedded`: a folder under weights/ that ships with genzoo (trained by genzoo's own scripts), always offline.
"""
from __future__ import annotations

import difflib
import importlib
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path

from .errors import UnknownModelError

FAMILIES = ("gpt2", "gan", "cyclegan", "vae", "diffusion")


@dataclass(frozen=True)
class ModelEntry:
    name: str
    family: str
    description: str = ""
    repo: str | None = None          # Hugging Face repo id
    revision: str | None = None      # pinned commit or branch for `repo`
    url: str | None = None           # plain URL (one file)
    sha256: str | None = None        # pinned digest for `url`
    embedded: bool = False           # lives in weights/<name>/
    files: tuple = ()                # the files that matter, for `genzoo list` and pre-download
    params: int | None = None        # parameter count, for `genzoo list`
    config: dict = field(default_factory=dict)  # family-specific hints (e.g. the generator's n_blocks)

    @property
    def source(self) -> str:
        """What the family's from_pretrained reads: a weights/ folder, a repo id or a URL."""
        if self.embedded:
            return str(embedded_dir() / self.name)
        return self.repo or self.url

    @property
    def where(self) -> str:
        if self.embedded:
            return "embedded (weights/)"
        if self.repo:
            return f"hf:{self.repo}" + (f"@{self.revision}" if self.revision else "")
        return self.url

    @property
    def offline(self) -> bool:
        return self.embedded


_CATALOG: dict[str, ModelEntry] = {}
_loaded = False


def register(entry: ModelEntry) -> ModelEntry:
    if entry.family not in FAMILIES:
        raise ValueError(f"unknown family {entry.family!r} for {entry.name!r}")
    _CATALOG[entry.name] = entry
    return entry


def _load_catalogs() -> None:
    global _loaded
    if _loaded:
        return
    _loaded = True
    for family in FAMILIES:
        try:
            importlib.import_module(f"genzoo.{family}.catalog")
        except ModuleNotFoundError as e:
            if e.name not in (f"genzoo.{family}", f"genzoo.{family}.catalog"):
                raise


def list_models(family: str | None = None) -> list[ModelEntry]:
    _load_catalogs()
    return [e for e in _CATALOG.values() if family is None or e.family == family]


def find(name) -> ModelEntry | None:
    _load_catalogs()
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
    raise AssertionError("unreachable")


def embedded_dir() -> Path:
    """weights/ of a source checkout, $GENZOO_WEIGHTS, or the copy installed under <prefix>/share/genzoo/weights."""
    if os.environ.get("GENZOO_WEIGHTS"):
        return Path(os.environ["GENZOO_WEIGHTS"])
    checkout = Path(__file__).resolve().parent.parent / "weights"
    if checkout.is_dir():
        return checkout
    return Path(sys.prefix) / "share" / "genzoo" / "weights"


def detect_family(path) -> str | None:
    """The family of a local checkpoint folder or file, from its config.json, or None if it cannot tell."""
    from .checkpoint import CONFIG_NAME, read_config

    path = Path(path).expanduser()
    folder = path if path.is_dir() else path.parent
    config_path = folder / CONFIG_NAME
    if not config_path.is_file():
        # A diffusers pipeline folder: model_index.json with unet/ (DDPM/DDIM) or vae/ subfolders.
        if (folder / "model_index.json").is_file():
            if (folder / "unet" / CONFIG_NAME).is_file():
                return "diffusion"
            if (folder / "vae" / CONFIG_NAME).is_file():
                return "vae"
        return None
    config = read_config(config_path)
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
    family = kwargs.pop("family", None) or family_of(name_or_path)
    module = importlib.import_module(f"genzoo.{family}")
    return module.from_pretrained(name_or_path, **kwargs)
