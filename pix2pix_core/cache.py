"""An on-disk uint8 cache for datasets larger than the memory budget: decode once, read items lazily.

Layout: one folder per (dataset folder, task, direction, size) under `cache_root()`, holding one raw
C-order uint8 file per side (`source.u8`, and `target.u8` for pairs), shape (count, 3, size, size),
readable as `np.memmap(path, np.uint8, "r", shape=...)`, and `meta.json` (names, shape, the key, and what
decoding found: skipped files and the decoder's notes, said again by every run that reuses the cache).

- Keyed by the files (relative names, sizes, mtimes) and the decoding code: any change rebuilds the
  folder in place (the old one is replaced, not kept beside it).
- Written atomically: a build goes to a `*.partial-*` folder that is renamed into place only after
  every byte is written and synced, so a killed build never leaves a cache that is later trusted;
  an opened cache is also checked against its declared shape.
- Built once: a builder holds an exclusive `flock` on `<folder>.lock` beside the folder (created for the
  build, removed when it ends). Another process that needs the same cache (a second run on the same
  data, the other ranks of a DDP run) says so on stderr, waits, and opens the finished cache instead of
  decoding everything again. The wait has no timeout: a large build takes hours, a crashed builder's
  lock is released by the kernel (on NFS, once the server drops the dead client's locks), and the
  loader's stop flag or Ctrl-C ends it. Partial folders are removed only by a process holding their
  cache's lock, so a live build on another host sharing the folder is never removed, and a dead
  one's is removed by the next build. Where `fcntl` is missing (Windows) or the file system refuses
  locks, builds are not locked: each decodes everything, the atomic rename keeps the result right,
  and partial folders are judged by pid and age as before.
- Written with plain sequential writes and read with `os.pread` into a fresh buffer per item, not
  through a mapping: mapped file pages count in the process's RSS, so reading a 6 GB cache through
  `np.memmap` for one epoch would show 6 GB resident. With positional reads the kernel's page cache
  still keeps hot items in RAM, but outside the process, and reclaimable.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sys
import threading
import time
import uuid
import warnings
from pathlib import Path
from typing import Callable, Iterable, Optional, Sequence

import numpy as np

from .errors import Pix2PixError
from .file_lock import Outcome, attempt_lock, holder, say_holder, unlock

FORMAT_VERSION = 1
SIDES = ("source", "target")
_PARTIAL = ".partial-"
_LOCK = ".lock"
_POLL_S = (0.05, 1.0)  # first and longest pause between tries of a lock another builder holds
# what decodes the pictures (and cleans facade label maps): editing any invalidates every cache. dataset_layout.py
# holds PAIR_RATIOS, which decides the decoder's cached notes (aligned files not shaped like A|B pairs)
_CODE_FILES = ("data.py", "dataset_layout.py", "images.py", "palette.py", "facade_palette.json")


def cache_root(configured: str = "") -> Path:
    """Where caches live: the config's `cache_dir`, else $PIX2PIX_CACHE, else ~/.cache/pix2pix_studio."""
    chosen = configured or os.environ.get("PIX2PIX_CACHE", "")
    return Path(chosen).expanduser() if chosen else Path.home() / ".cache" / "pix2pix_studio"


def _code_digest() -> str:
    here = Path(__file__).resolve().parent
    digest = hashlib.sha256()
    for name in _CODE_FILES:
        path = here / name
        digest.update(path.read_bytes() if path.exists() else b"")
    try:
        import PIL
        digest.update(PIL.__version__.encode())
    except Exception:  # pragma: no cover - PIL is a hard dependency
        pass
    return digest.hexdigest()[:16]


def files_digest(folder: Path, files: Iterable[Path]) -> str:
    """Hash of the file list as it is on disk now: relative names, sizes and modification times."""
    digest = hashlib.sha256()
    for path in files:
        info = path.stat()
        try:
            name = str(path.relative_to(folder))
        except ValueError:
            name = str(path)
        # ctime and inode too: `cp -p`, `rsync -t` or `touch -r` restore an edited file's mtime, not these
        stamp = f"{info.st_size}\0{info.st_mtime_ns}\0{info.st_ctime_ns}\0{info.st_ino}"
        digest.update(f"{name}\0{stamp}\n".encode())
    return digest.hexdigest()


def cache_dir_for(root: Path, folder: Path, params: dict) -> Path:
    """The one folder for this dataset folder + decoding parameters (a readable name and a short hash)."""
    folder = folder.resolve()
    ident = json.dumps({"folder": str(folder), **params}, sort_keys=True)
    slug = "".join(c if c.isalnum() or c in "-_" else "_" for c in f"{folder.parent.name}_{folder.name}")[:60]
    return root / f"{slug}-{hashlib.sha256(ident.encode()).hexdigest()[:12]}"


class DiskCache:
    """A finished cache folder: `len()`, `names`, and `read(index)` -> one uint8 (3, S, S) array per side."""

    def __init__(self, path: Path, meta: dict):
        self.path, self.meta = path, meta
        self.names: list[str] = meta["names"]
        self.size: int = meta["size"]
        self.sides: int = meta["sides"]
        self.skipped: list[str] = meta.get("skipped", [])
        self.notes: list[str] = meta.get("notes", [])
        self._item_bytes = 3 * self.size * self.size
        # opened now, not at the first read: another build replacing the folder meanwhile (two runs, or two
        # samples of one dataset) must not hand these names another list's pixels. Positional reads share
        # the descriptors safely with forked DataLoader workers.
        self._fds: Optional[list[int]] = [os.open(path / f"{SIDES[side]}.u8", os.O_RDONLY)
                                          for side in range(self.sides)]
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self.names)

    def _open(self) -> list[int]:
        with self._lock:
            if self._fds is None:
                raise Pix2PixError(f"dataset cache {self.path} was closed")
            return self._fds

    def read(self, index: int) -> list[np.ndarray]:
        if not 0 <= index < len(self.names):
            raise IndexError(index)
        pictures = []
        for fd in self._open():
            buffer = np.empty((3, self.size, self.size), dtype=np.uint8)
            got = os.preadv(fd, [memoryview(buffer).cast("B")], index * self._item_bytes)
            if got != self._item_bytes:
                raise Pix2PixError(f"dataset cache {self.path} is truncated; delete it to rebuild")
            pictures.append(buffer)
        return pictures

    def close(self) -> None:
        if self._fds is not None:
            for fd in self._fds:
                os.close(fd)
        self._fds = None

    def __del__(self):
        try:
            self.close()
        except Exception:
            pass

    def __getstate__(self) -> dict:
        return {"path": self.path, "meta": self.meta}

    def __setstate__(self, state: dict) -> None:
        """In a spawned worker: reopened by path, so only if the folder still holds the same build; the
        descriptors `open_cache` checked are the ones kept (reopening after the check could open a newer build)."""
        opened = open_cache(state["path"], state["meta"]["key"])
        if opened is None:
            raise Pix2PixError(f"dataset cache {state['path']} was replaced while in use; start the run again")
        self.__dict__.update(opened.__dict__)
        opened._fds = None  # the descriptors are this object's now: the discarded one must not close them


def open_cache(path: Path, key: str) -> Optional[DiskCache]:
    """The cache in `path` when it is complete and was built for `key`; None otherwise (never trusted).

    The files are opened first and checked through their descriptors, and meta.json is read again after:
    a rebuild that swaps the folder in between cannot pair one build's names with another build's pixels."""
    try:
        meta = json.loads((path / "meta.json").read_text())
        count, size = len(meta["names"]), int(meta["size"])
        int(meta["sides"])  # checked here: a meta.json without a whole number of sides is no cache
        if meta.get("version") != FORMAT_VERSION or meta.get("key") != key or not meta.get("complete"):
            return None
        cache = DiskCache(path, meta)  # opens the files
    except (OSError, ValueError, KeyError, TypeError):
        return None
    try:
        intact = all(os.fstat(fd).st_size == count * 3 * size * size for fd in cache._fds or [])
        intact = intact and json.loads((path / "meta.json").read_text()) == meta
    except (OSError, ValueError):
        intact = False
    if not intact:
        cache.close()
        return None
    return cache


def cache_key(files_hash: str, params: dict) -> str:
    text = json.dumps({"files": files_hash, "code": _code_digest(), "version": FORMAT_VERSION, **params},
                      sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()


def _lock_file(path: Path) -> Path:
    """The build lock of the cache at `path`: beside the folder, since the folder itself is renamed away."""
    return path.parent / f"{path.name}{_LOCK}"


def _lock_build(path: Path, while_waiting: Optional[Callable[[], None]]) -> Optional[int]:
    """Wait for the build lock of `path`: a descriptor holding it, or None where locks don't work here.

    No timeout: the holder is building (possibly for hours) or its lock dies with it. `while_waiting` is
    called between tries; raising from it gives up (the loader's stop flag)."""
    lock_file, pause, told = _lock_file(path), _POLL_S[0], False
    while True:
        attempt = attempt_lock(lock_file)  # another OSError is raised: the caller says the cache cannot be written
        if attempt.outcome is Outcome.NO_LOCKS:
            if attempt.why:
                warnings.warn(f"file locks do not work in {path.parent} ({attempt.why}): processes building one "
                              "dataset cache at once each decode it all", stacklevel=3)
            return None
        if attempt.outcome is Outcome.TAKEN:
            say_holder(attempt.fd)  # for another builder's notice only
            return attempt.fd
        if not told:
            print(f"waiting for another process building the dataset cache {path} ({holder(lock_file)}); "
                  "its cache is opened when it is done", file=sys.stderr, flush=True)
            told = True
        if while_waiting is not None:
            while_waiting()
        time.sleep(pause)
        pause = min(2 * pause, _POLL_S[1])


def _remove_stale_partials(root: Path, held: Optional[Path], max_age_s: float = 6 * 3600) -> None:
    """Partial folders left by killed builds (and, with them, a killed builder's lock file).

    With locks (`held`: the cache whose lock this process holds) a partial folder is stale exactly when
    its cache's lock is free, whichever host made it: pids and ages mean nothing across hosts sharing
    the folder. Folders named with our own pid are kept then, as another thread of this process may be
    building (and on NFS, where flock is a POSIX lock, it would not exclude us). Without locks, by pid
    and age as before."""
    groups: dict[str, list[Path]] = {}
    for entry in root.glob(f"*{_PARTIAL}*"):
        if _partial_pid(entry) is not None:
            groups.setdefault(entry.name.split(_PARTIAL, 1)[0], []).append(entry)
    for name, entries in groups.items():
        if held is None:
            _remove_old_or_orphaned(entries, max_age_s)
            continue
        entries = [e for e in entries if _partial_pid(e) != os.getpid()]
        if entries and name == held.name:
            _remove_all(entries)
        elif entries:
            _remove_if_unlocked(root / name, entries)


def _partial_pid(entry: Path) -> Optional[int]:
    try:
        return int(entry.name.split(_PARTIAL, 1)[1].split("-", 1)[0])
    except (IndexError, ValueError):
        return None


def _remove_all(entries: list[Path]) -> None:
    for entry in entries:
        shutil.rmtree(entry, ignore_errors=True)


def _remove_if_unlocked(path: Path, entries: list[Path]) -> None:
    """Another cache's leftovers, only while no builder (on any host) holds that cache's lock."""
    try:
        attempt = attempt_lock(_lock_file(path))
    except OSError:  # cannot look (no permission): left as it is
        return
    if attempt.outcome is Outcome.TAKEN:
        try:
            _remove_all(entries)
        finally:
            unlock(attempt.fd, _lock_file(path))


def _remove_old_or_orphaned(entries: list[Path], max_age_s: float) -> None:
    """Without locks: the owner's pid is gone here, or the folder is hours old."""
    now = time.time()
    for entry in entries:
        try:
            if not _pid_alive(_partial_pid(entry)) or now - entry.stat().st_mtime > max_age_s:
                shutil.rmtree(entry, ignore_errors=True)
        except OSError:
            continue


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True
    return True


def build_cache(path: Path, key: str, records: Iterable[tuple[str, Sequence[np.ndarray]]], count_max: int,
                sides: int, size: int, skipped: Optional[list[str]] = None,
                while_waiting: Optional[Callable[[], None]] = None, notes: Optional[list[str]] = None) -> DiskCache:
    """Stream `records` (name, one uint8 (3, size, size) array per side) into a new cache at `path`.

    Only one record is held at a time here. The folder appears at `path` only once complete; an
    exception (a stop, a full disk) or a kill leaves at most a `*.partial-*` folder, never trusted.
    `skipped` and `notes` (what the decoder found about files it used) are read after `records` is exhausted
    (the decoder fills them as it goes) and kept in meta.json: a run reusing the cache decodes nothing.

    Holds the cache's build lock throughout: when another process is building it, this waits (calling
    `while_waiting` between tries) and returns that build's cache without reading `records`; so does a
    complete cache for `key` already at `path`.
    """
    root = path.parent
    root.mkdir(parents=True, exist_ok=True)
    fd = _lock_build(path, while_waiting)
    try:
        cache = open_cache(path, key)
        if cache is not None:
            return cache
        _remove_stale_partials(root, path if fd is not None else None)
        return _build(path, key, records, count_max, sides, size, skipped, notes)
    finally:
        if fd is not None:
            unlock(fd, _lock_file(path))


def _build(path: Path, key: str, records: Iterable[tuple[str, Sequence[np.ndarray]]], count_max: int,
           sides: int, size: int, skipped: Optional[list[str]], notes: Optional[list[str]] = None) -> DiskCache:
    """build_cache's work, once the cache is known to be missing (and, with locks, this process's to make)."""
    root = path.parent
    needed = count_max * sides * 3 * size * size
    free = shutil.disk_usage(root).free
    if needed + 256 * 2**20 > free:
        raise Pix2PixError(f"the dataset cache needs {needed / 2**30:.1f} GB in {root} but only "
                           f"{free / 2**30:.1f} GB are free; point PIX2PIX_CACHE (or cache_dir) at a bigger disk")
    partial = root / f"{path.name}{_PARTIAL}{os.getpid()}-{uuid.uuid4().hex[:8]}"
    partial.mkdir()
    handles = []
    try:
        handles = [open(partial / f"{SIDES[s]}.u8", "wb") for s in range(sides)]
        names = []
        for name, pictures in records:
            if len(pictures) != sides:
                raise ValueError(f"expected {sides} picture(s) per record, got {len(pictures)}")
            for handle, picture in zip(handles, pictures):
                if picture.shape != (3, size, size) or picture.dtype != np.uint8:
                    raise ValueError(f"cache record {name}: {picture.shape} {picture.dtype}, expected (3, {size}, {size}) uint8")
                handle.write(np.ascontiguousarray(picture).data)
            names.append(name)
        for handle in handles:
            handle.flush()
            os.fsync(handle.fileno())
            handle.close()
        meta = {"version": FORMAT_VERSION, "key": key, "complete": True, "size": size, "sides": sides,
                "names": names, "skipped": list(skipped or []), "notes": list(notes or [])}
        meta_tmp = partial / "meta.json.tmp"
        with open(meta_tmp, "w") as handle:
            json.dump(meta, handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(meta_tmp, partial / "meta.json")
        _install(partial, path, key)
    except BaseException:
        for handle in handles:
            try:  # closing flushes the buffer, which fails again on a full disk: never skip the removal
                handle.close()
            except OSError:
                pass
        shutil.rmtree(partial, ignore_errors=True)
        raise
    cache = open_cache(path, key)
    if cache is None:  # pragma: no cover - only if another process replaced it with something broken
        raise Pix2PixError(f"dataset cache {path} could not be read back after building it")
    return cache


def _install(partial: Path, path: Path, key: str) -> None:
    """Rename the finished folder into place, replacing an older cache (open readers keep their files).

    When another process (two runs started together on one dataset) installed a complete cache for the
    same key while this one was building, theirs stays and this copy is dropped: replacing it would pull
    the folder from under that process before it opened its files. An older cache is deleted only after
    the new one is in place, so the path is missing for two renames, not for the deletion of gigabytes.
    """
    if open_cache(path, key) is not None:
        shutil.rmtree(partial, ignore_errors=True)
        return
    trash = path.parent / f"{path.name}{_PARTIAL}{os.getpid()}-old-{uuid.uuid4().hex[:8]}"
    if path.exists():
        try:
            os.rename(path, trash)
        except OSError:
            pass
    try:
        os.rename(partial, path)
    except OSError:
        # another process installed the same cache a moment ago: keep theirs
        shutil.rmtree(partial, ignore_errors=True)
    shutil.rmtree(trash, ignore_errors=True)
    fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
