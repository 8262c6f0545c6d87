"""attempt_lock tells its callers (cache builds, run folders, report stages) which of three things happened."""

from __future__ import annotations

import errno

import pytest

from pix2pix_core import file_lock
from pix2pix_core.file_lock import Outcome, attempt_lock, unlock

fcntl = pytest.importorskip("fcntl")


def test_taken_then_held_then_taken_again(tmp_path):
    lock_file = tmp_path / "x.lock"
    first = attempt_lock(lock_file)
    assert first.outcome is Outcome.TAKEN and first.fd is not None
    assert attempt_lock(lock_file) == file_lock.LockAttempt(Outcome.HELD)  # a flock is per open file, not process
    unlock(first.fd, lock_file)
    again = attempt_lock(lock_file)
    assert again.outcome is Outcome.TAKEN
    unlock(again.fd, lock_file)
    assert list(tmp_path.iterdir()) == []


def test_a_file_system_without_locks_says_why_and_keeps_no_lock_file(tmp_path, monkeypatch):
    monkeypatch.setattr(fcntl, "flock", lambda fd, op: (_ for _ in ()).throw(OSError(errno.ENOLCK, "No locks")))
    assert attempt_lock(tmp_path / "x.lock") == file_lock.LockAttempt(Outcome.NO_LOCKS, why="No locks")
    assert list(tmp_path.iterdir()) == []


def test_without_fcntl_there_are_no_locks_and_nothing_to_warn_about(tmp_path, monkeypatch):
    monkeypatch.setattr(file_lock, "fcntl", None)
    assert attempt_lock(tmp_path / "x.lock") == file_lock.LockAttempt(Outcome.NO_LOCKS, why="")


@pytest.mark.parametrize("code", [errno.ENOSPC, errno.EACCES])
def test_any_other_error_is_raised_not_taken_for_no_locks(tmp_path, monkeypatch, code):
    """A full disk or no permission says nothing about locks: it must not pass for 'go on unguarded'."""
    monkeypatch.setattr(fcntl, "flock", lambda fd, op: (_ for _ in ()).throw(OSError(code, "nope")))
    with pytest.raises(OSError) as raised:
        attempt_lock(tmp_path / "x.lock")
    assert raised.value.errno == code
    with pytest.raises(FileNotFoundError):
        attempt_lock(tmp_path / "gone" / "x.lock")
