"""Files replaced whole or not at all: written to a temp file beside the final name, then renamed over it.

A kill, a full disk or an exception mid-write leaves the previous file (or none) under the final name, so a
reader never sees half an image, half a metrics.json or a cut loss history. Checkpoints add fsyncs on top
(`checkpoint.atomic_save`: safetensors writes by file name, and a power cut must not lose a checkpoint).
"""
from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path
from typing import BinaryIO, Iterator, Optional, Union

PARTIAL_SUFFIX = ".partial"  # .NAME.XXXX.partial: what a kill between the write and the rename leaves behind


def _read_umask() -> int:
    """The process umask, read once at import (os.umask can only be read by setting it)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


UMASK = _read_umask()
ORDINARY = 0o666 & ~UMASK  # what open() would have made; mkstemp makes 0600 files


@contextlib.contextmanager
def replaced_atomically(path: Union[str, os.PathLike], mode: Optional[int] = ORDINARY) -> Iterator[BinaryIO]:
    """A binary handle for `path`'s new content: on a clean exit it replaces `path` in one rename, on an
    exception the temp file is removed and `path` is as it was (the exception goes on; OSError as is).
    `mode` None keeps the temp file's 0600: a file only its owner should read."""
    path = Path(path)
    fd, partial = tempfile.mkstemp(prefix=f".{path.name}.", suffix=PARTIAL_SUFFIX, dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            yield handle
        if mode is not None:
            os.chmod(partial, mode)
        os.replace(partial, path)
    except BaseException:
        Path(partial).unlink(missing_ok=True)
        raise


def remove_partial_files(folder: Union[str, os.PathLike], pattern: str = f".*{PARTIAL_SUFFIX}") -> list[Path]:
    """Delete the temp files a kill (SIGKILL, a power cut) left in `folder` between a write and its rename
    (`pattern`: those of `replaced_atomically`, or of another atomic writer): never a whole file. For a folder
    only one process writes into (a run folder)."""
    folder = Path(folder)
    stale = sorted(p for p in folder.glob(pattern) if p.is_file() and not p.is_symlink()) if folder.is_dir() else []
    for path in stale:
        path.unlink(missing_ok=True)
    return stale


def fsync_folder(folder: Path) -> None:
    """Make a rename inside `folder` survive a power cut (where the platform allows it)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:  # not possible on every platform (Windows); the rename is still atomic
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def output_problem(path: Union[str, os.PathLike], folder: bool, suffix: str = "") -> Optional[str]:
    """Why `path` cannot become the file (`folder` False; `suffix`: its kind's, for the example name) or the
    folder a command writes, in words a user can act on, or None. These are the mistakes OSError words badly
    (a path below a file is "File exists" or "Not a directory", a folder given for a file "Is a directory"),
    and only once the work is done."""
    path = Path(path)
    try:
        if folder and path.exists() and not path.is_dir():
            return f"{path} is a file, not a folder: give a folder"
        if not folder and path.is_dir():
            return f"{path} is a folder: give a file name, e.g. {path / ('NAME' + suffix)}"
        for parent in path.parents:
            if parent.exists():
                return None if parent.is_dir() else f"{parent} is a file, not a folder: give another path"
    except OSError:  # cannot look (a folder of another user's): the write then says why, as it did
        return None
    return None


def missing_folders(folder: Union[str, os.PathLike]) -> list[Path]:
    """The folders of `folder`'s path that do not exist yet, innermost first: what a mkdir(parents=True)
    of it creates, and what a command that fails may take away again (`remove_empty`). Read on the path as the
    system resolves it (links, ".."): `new/../mine` is the existing mine/, though no spelling through the missing
    new/ exists yet. A folder such a mkdir makes off that path (new/) is not listed: it stays."""
    missing = []
    real = Path(os.path.realpath(folder))
    for path in (real, *real.parents):
        try:
            if path.exists() or path.is_symlink():
                break
        except OSError:  # cannot look (no permission): not known to be missing, so never taken for made here
            break
        missing.append(path)
    return missing


def remove_empty(folders: list[Path]) -> None:
    """Remove `folders` (innermost first) while they are empty: one that holds anything stays, with its parents."""
    for folder in folders:
        try:
            folder.rmdir()
        except OSError:
            return
