"""Name or path -> local files.

A source is one of
  * a local file or directory,
  * a Hugging Face repo id ("openai-community/gpt2", optional revision), fetched through huggingface_hub,
    which owns the cache (HF_HOME, HF_HUB_CACHE) and offline mode (HF_HUB_OFFLINE=1),
  * a plain http(s) URL, downloaded once into genzoo's cache (a folder per URL), checked against a pinned sha256 or,
    unpinned, against the digest of its first complete download.

Downloads have limits: GENZOO_DOWNLOAD_STALL (30 s without 1 KiB), GENZOO_DOWNLOAD_DEADLINE (3600 s in all) and
GENZOO_HUB_PROBE_TIMEOUT (2 s for the Hub to answer before only its cache is read).

Nothing here touches the network at import time.
"""
from __future__ import annotations

import contextlib
import contextvars
import hashlib
import http.client
import os
import re
import tempfile
import time
import urllib.error
import urllib.parse
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


def resolve_file(source, filename: str | None = None, revision: str | None = None, sha256: str | None = None,
                 force_download: bool = False) -> Path:
    """One file. `filename` names it inside a directory or a Hub repo; a URL or a file path needs none."""
    source = os.fspath(source)
    if is_url(source):
        return download_url(source, sha256=sha256, force_download=force_download)
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
        where = f"the Hugging Face cache ({_why_cache_only()})" if _cache_only() else f"Hub repo {source!r}"
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

    cache_only = _cache_only()   # no network: read the cache, never wait for huggingface_hub's retries
    try:
        return Path(hf_hub_download(repo_id, filename, revision=revision, local_files_only=cache_only,
                                    force_download=_forced.get() and not cache_only))
    except hf_errors.LocalEntryNotFoundError as e:  # (a subclass of EntryNotFoundError: catch it first)
        # Offline mode or no connection, and the file is not in the cache.
        if cache_only:
            raise _MissingFile(f"{repo_id}/{filename} is not in the Hugging Face cache and {_why_cache_only()}. "
                               f"On a machine with network run: hf download {repo_id} {filename}"
                               + (f" --revision {revision}" if revision else "")
                               + ", then copy the cache (HF_HOME) here; or pass a local folder") from e
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


# ---------------------------------------------------------------------------------------------------------------
# Reaching the Hub: probe once, then either download or read the cache only, so that a machine without network
# fails in about a second instead of after huggingface_hub's retries.

_PROBE_TTL = 60.0
_probed: dict[str, tuple[float, bool]] = {}


def _seconds(variable: str, default: float) -> float:
    """A timeout from the environment (e.g. GENZOO_DOWNLOAD_STALL=60), else `default`."""
    value = os.environ.get(variable)
    if not value:
        return default
    try:
        seconds = float(value)
    except ValueError:
        raise HubError(f"{variable}={value!r} is not a number of seconds") from None
    if not seconds > 0:
        raise HubError(f"{variable}={value!r} must be a positive number of seconds")
    return seconds


def hub_endpoint() -> str:
    from huggingface_hub import constants

    return constants.ENDPOINT


def hub_reachable() -> bool:
    """Whether the Hub answers an HTTP request within GENZOO_HUB_PROBE_TIMEOUT (2 s); remembered for a minute."""
    endpoint = hub_endpoint()
    now = time.monotonic()
    if endpoint in _probed and now - _probed[endpoint][0] < _PROBE_TTL:
        return _probed[endpoint][1]
    try:
        urllib.request.urlopen(urllib.request.Request(endpoint, method="HEAD"),
                               timeout=_seconds("GENZOO_HUB_PROBE_TIMEOUT", 2.0)).close()
        answered = True
    except urllib.error.HTTPError:
        answered = True  # an HTTP status is an answer: the server is there
    except (OSError, ValueError, http.client.HTTPException):
        answered = False
    _probed[endpoint] = (now, answered)
    return answered


def _cache_only() -> bool:
    return is_offline() or not hub_reachable()


def _why_cache_only() -> str:
    if is_offline():
        return "offline mode is set (HF_HUB_OFFLINE/GENZOO_OFFLINE)"
    return f"the Hub ({hub_endpoint()}) does not answer"


def check_fetchable(repo_id: str, files, revision: str | None = None) -> None:
    """Before any download: when the Hub cannot be reached, refuse at once unless every file is cached.

    `files` names what a model needs; "a|b" means either. The error lists every missing file, as the
    `hf download` command that fetches them.
    """
    if not _cache_only():
        return
    from huggingface_hub import try_to_load_from_cache

    missing = []
    for group in files:
        names = str(group).split("|")
        if not any(isinstance(try_to_load_from_cache(repo_id, n, revision=revision), str) for n in names):
            missing.append(names[0])
    if missing:
        raise HubError(
            f"{_why_cache_only()} and the Hugging Face cache lacks {', '.join(missing)} of {repo_id!r}. On a machine "
            f"with network run: hf download {repo_id} {' '.join(missing)}"
            + (f" --revision {revision}" if revision else "")
            + ", then copy the cache (HF_HOME) here; or pass a local folder that holds these files.")


# ---------------------------------------------------------------------------------------------------------------
# Plain URLs: one folder per URL (the sha256 of the whole URL) under cache_dir()/urls, holding the file and, for an
# unpinned URL, the digest of its first complete download. A download lands in a temporary file and is renamed
# into place only once complete: as long as announced, not an HTML page, and matching its pinned digest.

_MIN_BYTES_PER_STALL = 1024   # less than this in a whole stall period is a stalled (trickling) transfer


def url_cache_path(url: str, filename: str | None = None) -> Path:
    """Where `url` is cached: urls/<sha256 of the URL, 32 hex>/<its file name>."""
    key = hashlib.sha256(url.encode()).hexdigest()[:32]
    return cache_dir() / "urls" / key / (filename or _url_file_name(url))


def _url_file_name(url: str) -> str:
    name = urllib.parse.unquote(urllib.parse.urlsplit(url).path.rstrip("/").rsplit("/", 1)[-1])
    name = re.sub(r"[^\w.-]", "_", name)[:200].lstrip(".")
    return name or "download"


def _fix_hint(url: str, target: Path) -> str:
    return (f"Fetch it again with force_download=True (CLI: any command with --redownload), or delete {target.parent} "
            f"(`rm -r {target.parent}`) and retry")


_forced = contextvars.ContextVar("genzoo_force_download", default=False)


@contextlib.contextmanager
def forced_download(enabled: bool = True):
    """Within this block every download ignores the cache and fetches again (the CLI's --redownload):
    with hub.forced_download(): model = genzoo.load("horse2zebra")."""
    token = _forced.set(enabled)
    try:
        yield
    finally:
        _forced.reset(token)


def download_url(url: str, sha256: str | None = None, filename: str | None = None,
                 force_download: bool = False) -> Path:
    """`url` as a local file: from the cache when verified, else downloaded (see the comment above)."""
    force_download = force_download or _forced.get()
    target = url_cache_path(url, filename)
    recorded = target.with_name(target.name + ".sha256")
    if target.is_file() and not force_download:
        _verify_cached(url, target, sha256, recorded)
        return target
    if is_offline():
        raise HubError(f"{url} is not cached at {target} and offline mode is set (HF_HUB_OFFLINE/GENZOO_OFFLINE); "
                       f"download it on a machine with network and put it there, or pass the local file path")
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise HubError(f"cannot create the download cache {target.parent}: {e}. Set GENZOO_CACHE to a writable "
                       f"folder") from e
    tmp = _fetch(url, target)
    try:
        got = sha256sum(tmp)
        if sha256 is not None and got != sha256:
            raise HubError(f"{url}: sha256 {got} does not match the pinned {sha256}; the file was not kept")
        if sha256 is None:
            first = _read_recorded(recorded)
            if first is not None and first != got:
                raise HubError(f"{url} now serves a different file (sha256 {got}) than its first download "
                               f"(sha256 {first}, recorded in {recorded}); the new file was not kept. If you trust "
                               f"the change, delete {target.parent} and retry")
            if first is None:
                warnings.warn(f"{url} has no pinned sha256; downloaded file has sha256 {got} (compare it with a "
                              f"trusted source). It is read with weights_only=True either way, and later uses are "
                              f"checked against this digest.", stacklevel=2)
                _write_atomic(recorded, got + "\n")
        os.replace(tmp, target)
    except OSError as e:
        raise HubError(f"could not store the download of {url} in {target.parent}: {e}") from e
    finally:
        if tmp.exists():
            tmp.unlink()
    return target


def _verify_cached(url: str, target: Path, sha256: str | None, recorded: Path) -> None:
    got = sha256sum(target)
    expected = sha256 or _read_recorded(recorded)
    if expected is None:   # placed there by hand (offline use): its first use records it
        _write_atomic(recorded, got + "\n")
    elif got != expected:
        what = "pinned digest" if sha256 else f"digest recorded at its first download ({recorded.name})"
        raise HubError(f"the cached {target} (from {url}) is corrupt: its sha256 is {got}, not the {what} "
                       f"{expected}. {_fix_hint(url, target)}")


def _read_recorded(recorded: Path) -> str | None:
    try:
        text = recorded.read_text().strip()
    except (OSError, UnicodeDecodeError):
        return None
    return text if re.fullmatch(r"[0-9a-f]{64}", text) else None


def _write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.part")
    tmp.write_text(text)
    os.replace(tmp, path)


def _fetch(url: str, target: Path) -> Path:
    """Download `url` into a temporary file beside `target`; return it only when complete, else HubError."""
    stall = _seconds("GENZOO_DOWNLOAD_STALL", 30.0)
    deadline = _seconds("GENZOO_DOWNLOAD_DEADLINE", 3600.0)
    fd, name = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".part")
    tmp = Path(name)
    try:
        with os.fdopen(fd, "wb") as out, urllib.request.urlopen(url, timeout=stall) as response:
            announced = response.headers.get("Content-Length")
            announced = int(announced) if announced and announced.strip().isdigit() else None
            if response.headers.get_content_type() == "text/html":
                raise HubError(f"{url} answered with an HTML page (Content-Type text/html), not a checkpoint: is the "
                               f"URL right, or is the server showing an error page? Nothing was cached")
            received = _copy(response, out, url, announced, stall, deadline)
        if announced is not None and received != announced:
            raise HubError(f"{url}: the server closed the connection after {received} of the {announced} bytes it "
                           f"announced (truncated download); nothing was cached, retry later")
        if received == 0:
            raise HubError(f"{url}: the server sent an empty file; nothing was cached")
        with open(tmp, "rb") as f:
            head = f.read(512).lstrip().lower()
        if head.startswith((b"<!doctype html", b"<html", b"<head", b"<body")):
            raise HubError(f"{url} sent an HTML page, not a checkpoint: is the URL right, or is the server showing "
                           f"an error page? Nothing was cached")
        return tmp
    except HubError:
        tmp.unlink(missing_ok=True)
        raise
    except TimeoutError as e:
        tmp.unlink(missing_ok=True)
        raise HubError(f"{url}: no data for {stall:g} s (stalled transfer); nothing was cached. Retry later, or set "
                       f"GENZOO_DOWNLOAD_STALL to wait longer") from e
    except (OSError, ValueError, http.client.HTTPException) as e:
        tmp.unlink(missing_ok=True)
        raise HubError(f"could not download {url}: {e}. Nothing was cached; retry, or download it by hand and pass "
                       f"the local path") from e


def _copy(response, out, url: str, announced: int | None, stall: float, deadline: float) -> int:
    """Copy the body, failing a transfer that trickles (< 1 KiB per stall period) or outlives the deadline."""
    from tqdm.auto import tqdm

    start = period_start = time.monotonic()
    received = period_bytes = 0
    with tqdm(total=announced, unit="B", unit_scale=True, desc=url.rsplit("/", 1)[-1][:40]) as bar:
        while True:
            block = response.read1(1 << 16)   # what has arrived, at most 64 KiB: never waits for a full block
            if not block:
                return received
            out.write(block)
            received += len(block)
            period_bytes += len(block)
            bar.update(len(block))
            now = time.monotonic()
            if now - start > deadline:
                raise HubError(f"{url}: the download did not finish within {deadline:g} s ({received} bytes received); "
                               f"nothing was cached. Set GENZOO_DOWNLOAD_DEADLINE to allow longer")
            if now - period_start >= stall:
                if period_bytes < _MIN_BYTES_PER_STALL:
                    raise HubError(f"{url}: only {period_bytes} bytes in {now - period_start:.3g} s (stalled "
                                   f"transfer); nothing was cached. Retry later, or set GENZOO_DOWNLOAD_STALL")
                period_start, period_bytes = now, 0
