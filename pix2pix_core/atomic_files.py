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
