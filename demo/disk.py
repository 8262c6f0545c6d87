"""Keeping the app's runs folder bounded: every start writes checkpoints, every upload unpacks a dataset.

Without a cap a shared app fills its disk one training run at a time. The oldest runs go first: their
training folders (checkpoints with D and the Adam moments, ~4x the model) and the disk caches of data-root
datasets (`cache/`: rebuilt when a run needs them again), then, if still over the cap, their exported
models. Never the bundled checkpoints (another folder), never the run that is going (or, once it has
ended, its model: the one the user is about to try).
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
from pathlib import Path
from typing import Collection

log = logging.getLogger("pix2pix_studio")

MIN_FREE_BYTES = 2 * 1024 ** 3  # no upload or result is written while the disk would keep less free than this
RESERVED = ("models", "uploads", "cache")  # folders of the runs folder that are not run folders
CACHE = "cache"  # the disk caches of data-root datasets (an uploaded zip's cache lives and goes with its upload)


def folder_bytes(folder: Path) -> int:
    """Bytes of the files under `folder` (links not followed)."""
    total = 0
    for root, _dirs, files in os.walk(folder):
        for name in files:
            with contextlib.suppress(OSError):
                total += os.lstat(os.path.join(root, name)).st_size
    return total


def remove_quietly(path: Path) -> None:
    """Delete a file or folder; a failure is logged, not raised (this is housekeeping)."""
    try:
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        elif path.exists() or path.is_symlink():
            path.unlink()
    except OSError as exc:
        log.warning("could not remove %s: %s", path, exc)


def free_bytes(folder: Path) -> int:
    """Free bytes on the disk that holds `folder` (or its nearest existing parent)."""
    folder = Path(folder).absolute()
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    return shutil.disk_usage(folder).free


def _by_age(paths) -> list[Path]:
    def mtime(path: Path) -> float:
        try:
            return path.stat().st_mtime
        except OSError:
            return 0.0
    return sorted(paths, key=mtime)


def prune_runs(runs_dir: Path, max_bytes: int, keep: Collection[str] = (), skip: Collection[Path] = ()) -> list[str]:
    """Remove the oldest app runs until `runs_dir` holds at most `max_bytes`; returns what was removed.

    Runs and models named in `keep` stay, and dataset caches named there as `cache/<folder>`; folders in
    `skip` (the unpacked uploads, deleted when their run ends) neither count nor go. Caches go with the
    training folders, oldest first: the app prunes when no run is loading (at a Start, at the end of a
    run), so none is being built. A file that vanishes meanwhile is skipped."""
    if not runs_dir.is_dir():
        return []
    total = folder_bytes(runs_dir) - sum(folder_bytes(folder) for folder in skip if folder.is_dir())
    removed: list[str] = []
    run_folders = [p for p in runs_dir.iterdir() if p.is_dir() and p.name not in RESERVED]
    caches = [p for p in (runs_dir / CACHE).iterdir() if p.is_dir()] if (runs_dir / CACHE).is_dir() else []
    models = list((runs_dir / "models").glob("*.safetensors")) if (runs_dir / "models").is_dir() else []
    for path in _by_age(run_folders + caches) + _by_age(models):
        if total <= max_bytes:
            break
        if path.parent == runs_dir / CACHE:
            name = f"{CACHE}/{path.name}"
        else:
            name = path.name if path.is_dir() else path.stem
        if name in keep:
            continue
        try:
            size = folder_bytes(path) if path.is_dir() else path.stat().st_size
        except OSError:  # removed meanwhile
            continue
        remove_quietly(path)
        total -= size
        removed.append(str(path.relative_to(runs_dir)))
    if removed:
        log.info("runs folder over its cap of %.1f GB: removed %s", max_bytes / 1e9, ", ".join(removed))
    return removed
