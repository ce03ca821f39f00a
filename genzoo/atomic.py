"""Write a whole folder as one version: a process killed at any moment leaves the previous folder or the new one.

    write_folder_atomic("runs/x/checkpoint", {
        "model.safetensors": lambda path: save_file(tensors, str(path)),
        "config.json":       lambda path: path.write_text(json.dumps(config)),
        "train_state.pt":    lambda path: torch.save(state, path),
    })

How: every file is written into a hidden sibling folder (`.checkpoint.new-<pid>-<random>`), flushed to disk, and
the sibling is then exchanged with the target in one rename (Linux renameat2 RENAME_EXCHANGE). Files of the old
folder that the new version does not write (samples, logs, a tokenizer) are hard-linked into the new one first, so
they survive. Where the exchange is not supported the swap takes two renames (old folder aside, new one in) and
`recover_folder` puts the old folder back if a kill fell between them; every write calls it first, and removes the
staging folders of processes that died mid-write. Readers never see those hidden siblings.

No torch here: the training code, the CLI and the kill tests use it cheaply.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import errno
import os
import re
import shutil
import tempfile
from pathlib import Path
from typing import Callable

from .errors import CheckpointError

_RENAME_EXCHANGE = 2
_AT_FDCWD = -100


def write_folder_atomic(directory, files: dict[str, Callable[[Path], None]], keep_others: bool = True) -> Path:
    """Write `files` (name -> a function that writes that file at the path it is given) as the new content of
    `directory`, atomically as a whole. `keep_others`: entries of the old folder not in `files` are kept."""
    directory = Path(os.path.realpath(os.fspath(directory)))
    for name in files:
        _check_name(name)
    if directory.exists() and not directory.is_dir():
        raise CheckpointError(f"{directory} exists and is not a folder: pass a folder path to save into")
    try:
        directory.parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise CheckpointError(f"cannot create {directory.parent}: {e}") from e
    recover_folder(directory)
    staging = Path(tempfile.mkdtemp(dir=directory.parent, prefix=f".{directory.name}.new-{os.getpid()}-"))
    try:
        for name, write in files.items():
            target = staging / name
            target.parent.mkdir(parents=True, exist_ok=True)
            write(target)
            _fsync(target)
        if directory.is_dir():
            if keep_others:
                _link_others(directory, staging, {Path(n).parts[0] for n in files})
            _fsync(staging)
            _swap(staging, directory)      # `staging` now names the previous version
            shutil.rmtree(staging, ignore_errors=True)
        else:
            _fsync(staging)
            os.rename(staging, directory)
        _fsync(directory.parent)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return directory


def recover_folder(directory) -> None:
    """Undo what an interrupted write left: put back a previous version moved aside by a two-rename swap (when
    the folder itself is missing), and delete the staging folders of processes that no longer run."""
    directory = Path(os.path.realpath(os.fspath(directory)))
    if not directory.parent.is_dir():
        return
    pattern = re.compile(re.escape(f".{directory.name}.") + r"(new|old)-(\d+)-")
    leftovers = []
    for sibling in directory.parent.iterdir():
        match = pattern.match(sibling.name)
        if match and sibling.is_dir() and not _alive(int(match.group(2))):
            leftovers.append((match.group(1), sibling))
    for kind, sibling in leftovers:
        if kind == "old" and not directory.exists():
            os.rename(sibling, directory)
        else:
            shutil.rmtree(sibling, ignore_errors=True)


def _check_name(name: str) -> None:
    path = Path(name)
    if path.is_absolute() or not path.parts or ".." in path.parts:
        raise CheckpointError(f"{name!r} is not a file name inside the folder")


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _link_others(old: Path, new: Path, written: set) -> None:
    """Hard-link (or copy, where links are not supported) what `old` holds beyond the written files into `new`."""
    for entry in old.iterdir():
        if entry.name in written:
            continue
        if entry.is_dir() and not entry.is_symlink():
            shutil.copytree(entry, new / entry.name, symlinks=True, copy_function=_link_or_copy)
        else:
            _link_or_copy(entry, new / entry.name)


def _link_or_copy(source, target) -> None:
    if os.path.islink(source):
        os.symlink(os.readlink(source), target)
        return
    try:
        os.link(source, target)
    except OSError:
        shutil.copy2(source, target)


def _fsync(path: Path) -> None:
    """Flush a file's data (or a folder's entries) to disk, so a power cut does not undo a finished rename."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass   # some file systems cannot fsync folders
    finally:
        os.close(fd)


def _swap(new: Path, current: Path) -> None:
    """Exchange two folders' names: in one step where the system can, else in two (see recover_folder)."""
    if _rename_exchange(new, current):
        return
    aside = Path(tempfile.mkdtemp(dir=current.parent, prefix=f".{current.name}.old-{os.getpid()}-"))
    os.rmdir(aside)
    os.rename(current, aside)
    os.rename(new, current)
    os.rename(aside, new)


_libc = None


def _rename_exchange(a: Path, b: Path) -> bool:
    global _libc
    if not hasattr(os, "uname") or os.uname().sysname != "Linux":
        return False
    if _libc is None:
        _libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
    renameat2 = getattr(_libc, "renameat2", None)
    if renameat2 is None:
        return False
    result = renameat2(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE)
    if result == 0:
        return True
    err = ctypes.get_errno()
    if err in (errno.ENOSYS, errno.EINVAL, errno.ENOTSUP, errno.EOPNOTSUPP):
        return False
    raise OSError(err, f"cannot swap {a} and {b}: {os.strerror(err)}")
