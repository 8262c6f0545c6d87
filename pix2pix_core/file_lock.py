"""An exclusive lock on a file that dies with its process: `flock` on a lock file that says who holds it.

A killed holder's lock is released by the kernel (on NFS, once the server drops the dead client's locks), so
a lock file left behind never blocks the next taker; each holder removes the file as it lets go. `fcntl` is
None where it is missing (Windows): callers then go on unlocked. Used for dataset cache builds (cache.py), for
run folders (run_folder.py: one training run writes to a folder at a time) and for report staging folders
(report_stage.py). Each of them asks `attempt_lock`, which tells its three outcomes apart, and decides what each
means for it.
"""

from __future__ import annotations

import contextlib
import dataclasses
import enum
import errno
import os
import socket
import time
from pathlib import Path
from typing import Optional

try:
    import fcntl
except ImportError:  # Windows: no locks (see the module docstring)
    fcntl = None  # type: ignore[assignment]

# flock errors meaning "this file system has no working locks" (NFS without lockd, some FUSE mounts)
NO_LOCKS = {errno.ENOLCK, errno.EOPNOTSUPP, errno.ENOTSUP, errno.ENOSYS, errno.EINVAL}


class Outcome(enum.Enum):
    TAKEN = "taken"  # this process holds the lock now
    HELD = "held"  # another holder has it
    NO_LOCKS = "no locks"  # none work here: no fcntl (Windows), or a file system that refuses them (NO_LOCKS)


@dataclasses.dataclass(frozen=True)
class LockAttempt:
    """What `attempt_lock` found: the descriptor holding the lock when TAKEN; when NO_LOCKS, the file system's
    refusal for a warning ("" where fcntl is missing: there is nothing to warn about on Windows)."""

    outcome: Outcome
    fd: Optional[int] = None
    why: str = ""


def attempt_lock(lock_file: Path) -> LockAttempt:
    """Try `lock_file` once (try_lock) and say which of the three outcomes happened, for its caller to decide what
    each means. Any other OSError (no permission, a full disk, the folder gone) is raised: it says nothing about
    locks, so its caller decides as for any failed write there (a taker stops with one line, a clean-up leaves
    the thing alone); it never passes for "no locks here", which would go on unguarded."""
    if fcntl is None:
        return LockAttempt(Outcome.NO_LOCKS)
    try:
        fd = try_lock(lock_file)
    except OSError as exc:
        if exc.errno not in NO_LOCKS:
            raise
        return LockAttempt(Outcome.NO_LOCKS, why=exc.strerror or str(exc))
    return LockAttempt(Outcome.HELD) if fd is None else LockAttempt(Outcome.TAKEN, fd)


def try_lock(lock_file: Path) -> Optional[int]:
    """A descriptor holding `lock_file` exclusively, or None while another holder has it.

    Each holder removes the file as it lets go, so a lock won on a file that is no longer linked there
    guards nothing: the new file is tried instead. OSError when the file system has no working locks (NO_LOCKS):
    the file just opened is removed then, as nothing can hold it (a run folder it was left in was never removed
    after a failed run, and kept it after a finished one)."""
    while True:
        fd = os.open(lock_file, os.O_RDWR | os.O_CREAT, 0o666)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return None
        except BaseException as exc:
            os.close(fd)
            if isinstance(exc, OSError) and exc.errno in NO_LOCKS:
                with contextlib.suppress(OSError):
                    os.unlink(lock_file)
            raise
        if _is_linked(fd, lock_file):
            return fd
        os.close(fd)


def _is_linked(fd: int, lock_file: Path) -> bool:
    try:
        here, held = os.stat(lock_file), os.fstat(fd)
    except FileNotFoundError:
        return False
    return (here.st_dev, here.st_ino) == (held.st_dev, held.st_ino)


def say_holder(fd: int) -> None:
    """Write who holds the lock (pid, host, since when) into it, for the notices of those that find it taken. A
    failure (a full disk) is ignored: it must not leak the held lock."""
    try:
        os.ftruncate(fd, 0)  # a killed holder's lock file may still say who it was
        note = f"pid {os.getpid()} on {socket.gethostname()} since {time.strftime('%H:%M:%S')}\n"
        os.write(fd, note.encode())
    except OSError:
        pass


def holder(lock_file: Path) -> str:
    """Who holds a lock, as its holder wrote it (for notices only)."""
    try:
        return lock_file.read_text().strip() or "holder not known yet: it has just started"
    except OSError:
        return "unknown"


def unlock(fd: int, lock_file: Path) -> None:
    """Remove the lock file while still holding it (its folder then holds no stale lock file), then let go."""
    try:
        os.unlink(lock_file)
    except OSError:
        pass
    finally:
        os.close(fd)
