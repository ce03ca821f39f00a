"""Name or path -> local files.

A source is one of
  * a local file or directory,
  * a Hugging Face repo id ("openai-community/gpt2", optional revision), fetched through huggingface_hub,
    which owns the cache (HF_HOME, HF_HUB_CACHE) and offline mode (HF_HUB_OFFLINE=1),
  * a plain http(s) URL, downloaded once into genzoo's cache and checked against a pinned sha256.

Nothing here touches the network at import time.
"""
from __future__ import annotations

import hashlib
import os
import re
import tempfile
import urllib.request
import warnings
from pathlib import Path

from .errors import HubError

_REPO_ID = re.compile(r"^[A-Za-z0-9][\w.-]*(/[\w.-]+)?$")


def is_offline() -> bool:
    return any(os.environ.get(v, "").lower() in ("1", "true", "yes", "on") for v in ("HF_HUB_OFFLINE", "GENZOO_OFFLINE"))


def cache_dir() -> Path:
    """Where URL downloads live: $GENZOO_CACHE, else $XDG_CACHE_HOME/genzoo, else ~/.cache/genzoo."""
    if os.environ.get("GENZOO_CACHE"):
        return Path(os.environ["GENZOO_CACHE"])
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "genzoo"


def is_url(source: str) -> bool:
    return str(source).startswith(("http://", "https://"))


def sha256sum(path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def resolve_file(source, filename: str | None = None, revision: str | None = None, sha256: str | None = None) -> Path:
    """One file. `filename` names it inside a directory or a Hub repo; a URL or a file path needs none."""
    source = os.fspath(source)
    if is_url(source):
        return download_url(source, sha256=sha256)
    path = Path(source).expanduser()
    if path.is_file():
        if filename is not None and path.name != filename:
            raise HubError(f"{path} is a file, but {filename!r} was asked for: pass the directory that holds it")
        return path
    if path.is_dir():
        if filename is None:
            raise HubError(f"{path} is a directory: say which file in it to read")
        if not (path / filename).is_file():
            raise HubError(f"{path} has no {filename!r}; it holds: {sorted(p.name for p in path.iterdir())[:20]}")
        return path / filename
    if _REPO_ID.match(source) and "/" in source:
        if filename is None:
            raise HubError(f"{source!r} looks like a Hub repo id: say which file in it to read")
        return hub_download(source, filename, revision=revision)
    raise HubError(f"{source!r} is neither an existing file or directory, nor a Hub repo id (owner/name), nor a URL")


def resolve_first(source, candidates, revision: str | None = None) -> Path:
    """The first of `candidates` (e.g. model.safetensors, pytorch_model.bin) that `source` holds."""
    source = os.fspath(source)
    path = Path(source).expanduser()
    if path.is_file():
        return path
    if path.is_dir():
        for name in candidates:
            if (path / name).is_file():
                return path / name
        raise HubError(f"{path} holds none of {list(candidates)}; it holds: {sorted(p.name for p in path.iterdir())[:20]}")
    if _REPO_ID.match(source) and "/" in source:
        misses = []
        for name in candidates:
            try:
                return hub_download(source, name, revision=revision)
            except _MissingFile as e:
                misses.append(str(e))
        where = "the Hugging Face cache (HF_HUB_OFFLINE is set)" if is_offline() else f"Hub repo {source!r}"
        raise HubError(f"{where} has none of {list(candidates)} for {source!r} (revision {revision or 'main'}). "
                       f"Details: {'; '.join(misses)}")
    if is_url(source):
        return download_url(source)
    raise HubError(f"{source!r} is neither an existing file or directory, nor a Hub repo id (owner/name), nor a URL")


def resolve_optional(source, filename: str, revision: str | None = None) -> Path | None:
    """Like resolve_file, but None when the file is absent (e.g. an optional scheduler_config.json)."""
    source = os.fspath(source)
    path = Path(source).expanduser()
    if path.is_file():
        sibling = path.parent / filename
        return sibling if sibling.is_file() else None
    if path.is_dir():
        return path / filename if (path / filename).is_file() else None
    if not (_REPO_ID.match(source) and "/" in source):
        raise HubError(f"{source!r} is neither an existing file or directory nor a Hub repo id (owner/name)")
    try:
        return hub_download(source, filename, revision=revision)
    except _MissingFile:
        return None


class _MissingFile(HubError):
    """The repo exists but has no such file (so the caller may try the next candidate)."""


def hub_download(repo_id: str, filename: str, revision: str | None = None) -> Path:
    from huggingface_hub import hf_hub_download
    from huggingface_hub import errors as hf_errors

    try:
        return Path(hf_hub_download(repo_id, filename, revision=revision))
    except hf_errors.LocalEntryNotFoundError as e:  # (a subclass of EntryNotFoundError: catch it first)
        # Offline mode or no connection, and the file is not in the cache.
        if is_offline():
            raise _MissingFile(f"{repo_id}/{filename} is not in the Hugging Face cache and HF_HUB_OFFLINE is set") from e
        raise HubError(
            f"could not download {repo_id}/{filename} (revision {revision or 'main'}) and it is not cached. "
            f"On a machine with network run: hf download {repo_id} {filename}"
            + (f" --revision {revision}" if revision else "")
            + ", then copy the cache (HF_HOME) here, or pass a local directory instead of the repo id."
        ) from e
    except hf_errors.EntryNotFoundError as e:
        raise _MissingFile(f"{repo_id} has no file {filename!r}") from e
    # GatedRepoError is a RepositoryNotFoundError: catch it first.
    except hf_errors.GatedRepoError as e:
        raise HubError(f"Hub repo {repo_id!r} is gated: accept its terms on the Hub and log in (`hf auth login`)") from e
    except hf_errors.RepositoryNotFoundError as e:
        raise HubError(f"no Hub repo {repo_id!r} (or it is private: log in with `hf auth login`)") from e
    except hf_errors.RevisionNotFoundError as e:
        raise HubError(f"Hub repo {repo_id!r} has no revision {revision!r}") from e
    except hf_errors.HFValidationError as e:
        raise HubError(f"{repo_id!r} is not a valid Hub repo id: {e}") from e
    except (hf_errors.HfHubHTTPError, OSError) as e:
        raise HubError(f"could not fetch {repo_id}/{filename} (revision {revision or 'main'}): {e}") from e


def download_url(url: str, sha256: str | None = None, filename: str | None = None) -> Path:
    """Download once into cache_dir(), verify sha256 when pinned; a bad or partial download is never kept."""
    target = cache_dir() / "urls" / (filename or url.rstrip("/").rsplit("/", 1)[-1])
    if target.is_file():
        if sha256 is None or sha256sum(target) == sha256:
            return target
        raise HubError(f"cached {target} does not match its pinned sha256 {sha256}: delete it and try again")
    if is_offline():
        raise HubError(f"{url} is not cached at {target} and offline mode is set (HF_HUB_OFFLINE/GENZOO_OFFLINE); "
                       f"download it on a machine with network and put it there, or pass the local file path")
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=target.parent, suffix=".part")
    try:
        with os.fdopen(fd, "wb") as out, urllib.request.urlopen(url, timeout=60) as response:
            from tqdm.auto import tqdm

            total = int(response.headers.get("Content-Length") or 0) or None
            with tqdm(total=total, unit="B", unit_scale=True, desc=target.name) as bar:
                for block in iter(lambda: response.read(1 << 20), b""):
                    out.write(block)
                    bar.update(len(block))
        got = sha256sum(tmp)
        if sha256 is not None and got != sha256:
            raise HubError(f"{url}: sha256 {got} does not match the pinned {sha256}; the file was not kept")
        if sha256 is None:
            warnings.warn(f"{url} has no pinned sha256; downloaded file has sha256 {got} (compare it with a trusted "
                          f"source). It is read with weights_only=True either way.", stacklevel=2)
        os.replace(tmp, target)
    except OSError as e:
        raise HubError(f"could not download {url}: {e}. Download it by hand and pass the local path.") from e
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return target
